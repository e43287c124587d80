//! Kubernetes resource quantities (`500m`, `128Mi`, `1.5`, `2e3`, `1G`)
//! as exact integers of nano-units, rounded up like `resource.Quantity`'s
//! `Value()` and `MilliValue()`.

use std::fmt;

/// A parsed quantity, in units of 10^-9 (rounded up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i128);

/// Why a quantity string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format,
    #[error("quantity is too large")]
    TooLarge,
}

const NANO: i128 = 1_000_000_000;

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// Parses `text` as `resource.ParseQuantity` does.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_len);
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(QuantityError::Format);
        }
        let digits = format!("{int_part}{frac_part}");
        let mut mantissa: i128 = 0;
        for d in digits.bytes() {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(d - b'0')))
                .ok_or(QuantityError::TooLarge)?;
        }
        let frac_digits = i32::try_from(frac_part.len()).map_err(|_| QuantityError::TooLarge)?;
        let (exp10, exp2) = suffix_exponents(suffix)?;
        // value = mantissa * 10^(exp10 - frac_digits) * 2^exp2; in nanos: +9.
        let mut scaled = mantissa
            .checked_mul(1i128.checked_shl(exp2).ok_or(QuantityError::TooLarge)?)
            .ok_or(QuantityError::TooLarge)?;
        let exp = exp10 - frac_digits + 9;
        if exp >= 0 {
            let factor = 10i128
                .checked_pow(u32::try_from(exp).map_err(|_| QuantityError::TooLarge)?)
                .ok_or(QuantityError::TooLarge)?;
            scaled = scaled.checked_mul(factor).ok_or(QuantityError::TooLarge)?;
        } else {
            let divisor = 10i128.checked_pow(exp.unsigned_abs()).unwrap_or(i128::MAX);
            scaled = div_ceil(scaled, divisor);
        }
        Ok(Amount(if negative { -scaled } else { scaled }))
    }

    /// From a whole number of units.
    pub fn from_units(units: i64) -> Self {
        Amount(i128::from(units) * NANO)
    }

    /// From thousandths of a unit (millicores).
    pub fn from_milli(milli: i64) -> Self {
        Amount(i128::from(milli) * 1_000_000)
    }

    /// Whole units, rounded up (`Quantity.Value()`), saturating at i64.
    pub fn value(self) -> i64 {
        saturate(div_ceil(self.0, NANO))
    }

    /// Thousandths, rounded up (`Quantity.MilliValue()`), saturating at i64.
    pub fn milli_value(self) -> i64 {
        saturate(div_ceil(self.0, 1_000_000))
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `ceil(self / divisor)` as an integer (kubelet's resourceFieldRef
    /// conversion); `None` for a zero divisor.
    pub fn ceil_div(self, divisor: Amount) -> Option<i64> {
        (divisor.0 != 0).then(|| saturate(div_ceil(self.0, divisor.0)))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % NANO == 0 {
            write!(f, "{}", self.0 / NANO)
        } else if self.0 % 1_000_000 == 0 {
            write!(f, "{}m", self.0 / 1_000_000)
        } else {
            write!(f, "{}n", self.0)
        }
    }
}

fn suffix_exponents(suffix: &str) -> Result<(i32, u32), QuantityError> {
    let binary = |shift| Ok((0, shift));
    match suffix {
        "" => Ok((0, 0)),
        "n" => Ok((-9, 0)),
        "u" => Ok((-6, 0)),
        "m" => Ok((-3, 0)),
        "k" => Ok((3, 0)),
        "M" => Ok((6, 0)),
        "G" => Ok((9, 0)),
        "T" => Ok((12, 0)),
        "P" => Ok((15, 0)),
        "E" => Ok((18, 0)),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..].parse().map_err(|_| QuantityError::Format)?;
            if !(-100..=100).contains(&exp) {
                return Err(QuantityError::TooLarge);
            }
            Ok((exp, 0))
        }
        _ => Err(QuantityError::Format),
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if (a % b != 0) && ((a < 0) == (b < 0)) {
        q + 1
    } else {
        q
    }
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Amount {
        Amount::parse(s).unwrap()
    }

    #[test]
    fn suffixes() {
        assert_eq!(q("500m").milli_value(), 500);
        assert_eq!(q("1").milli_value(), 1000);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("0.1").milli_value(), 100);
        assert_eq!(q(".5").milli_value(), 500);
        assert_eq!(q("128Mi").value(), 128 << 20);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("1G").value(), 1_000_000_000);
        assert_eq!(q("1k").value(), 1000);
        assert_eq!(q("2e3").value(), 2000);
        assert_eq!(q("1E").value(), 1_000_000_000_000_000_000);
        assert_eq!(q("1.5Gi").value(), 3 << 29);
        assert_eq!(q("100u").milli_value(), 1, "rounds up");
        assert_eq!(q("1n").value(), 1, "rounds up");
        assert_eq!(q("-1").value(), -1);
        assert_eq!(q("+2").value(), 2);
    }

    #[test]
    fn bad_quantities() {
        for s in ["", "abc", "1.2.3", "1Kb", "1K", "m", "1e", ".", "1 Gi"] {
            assert!(Amount::parse(s).is_err(), "{s}");
        }
        assert_eq!(Amount::parse("1e99").unwrap_err(), QuantityError::TooLarge);
    }

    #[test]
    fn compare_and_divide() {
        assert!(q("1") > q("999m"));
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1Gi").ceil_div(q("1Mi")), Some(1024));
        assert_eq!(q("1500m").ceil_div(q("1")), Some(2));
        assert_eq!(q("1").ceil_div(Amount::ZERO), None);
        assert_eq!(q("250m").to_string(), "250m");
        assert_eq!(q("2").to_string(), "2");
    }
}
