//! Reading a `linux.seccomp` object from JSON with errors that name the field
//! at fault (`syscalls[3].action`), where plain deserialization would only say
//! "unknown variant" somewhere in the document.

use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use serde_json::Value;

use super::SeccompError;

/// Parses a `linux.seccomp` object (for example a profile file's content).
pub fn parse_profile(json: &str) -> Result<LinuxSeccomp, SeccompError> {
    let value: Value = serde_json::from_str(json).map_err(SeccompError::Malformed)?;
    check(&value)?;
    serde_json::from_value(value).map_err(SeccompError::Malformed)
}

fn check(profile: &Value) -> Result<(), SeccompError> {
    check_enum::<LinuxSeccompAction>(profile.get("defaultAction"), "defaultAction")?;
    for (k, arch) in array(profile, "architectures").enumerate() {
        check_enum::<Arch>(Some(arch), &format!("architectures[{k}]"))?;
    }
    for (k, flag) in array(profile, "flags").enumerate() {
        check_enum::<LinuxSeccompFilterFlag>(Some(flag), &format!("flags[{k}]"))?;
    }
    for (i, entry) in array(profile, "syscalls").enumerate() {
        let field = format!("syscalls[{i}].action");
        check_enum::<LinuxSeccompAction>(entry.get("action"), &field)?;
        for (j, arg) in array(entry, "args").enumerate() {
            let field = format!("syscalls[{i}].args[{j}].op");
            check_enum::<LinuxSeccompOperator>(arg.get("op"), &field)?;
        }
    }
    Ok(())
}

/// The elements of `value[key]` if it is an array (other shapes are left
/// to deserialization to report).
fn array<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Checks that a mandatory enum field is present and names a variant of `T`.
fn check_enum<T: FromStr>(value: Option<&Value>, field: &str) -> Result<(), SeccompError> {
    match value {
        None | Some(Value::Null) => Err(SeccompError::MissingField {
            field: field.to_string(),
        }),
        Some(Value::String(s)) if s.is_empty() => Err(SeccompError::MissingField {
            field: field.to_string(),
        }),
        Some(Value::String(s)) if T::from_str(s).is_ok() => Ok(()),
        Some(other) => Err(SeccompError::InvalidField {
            field: field.to_string(),
            value: other.to_string(),
        }),
    }
}
