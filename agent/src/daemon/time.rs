//! CRI timestamps: nanoseconds since the Unix epoch, and the monitor's RFC
//! 3339 strings (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, UTC) turned into them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Nanoseconds since the epoch of a UTC RFC 3339 time as the monitor writes
/// it (fractional seconds optional); `None` if it does not parse.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || frac.len() > 9 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().ok()? * 10i64.pow(9 - frac.len() as u32)
    };
    let secs = days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(secs * 1_000_000_000 + nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::time::rfc3339_nano;
    use std::time::Duration;

    #[test]
    fn parses_what_the_monitor_writes() {
        for (secs, nanos) in [(0, 0), (951_782_400, 5), (1_795_000_000, 123_456_789)] {
            let t = UNIX_EPOCH + Duration::new(secs, nanos);
            assert_eq!(
                parse_rfc3339(&rfc3339_nano(t)),
                Some(secs as i64 * 1_000_000_000 + nanos as i64)
            );
        }
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:01Z"),
            Some(951_868_801_000_000_000)
        );
        assert_eq!(parse_rfc3339("2000-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
