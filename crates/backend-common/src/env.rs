//! Typed access to environment variables.
//!
//! Every reader returns the default when the variable is unset or empty, and a
//! [`ConfigError`] naming the variable when it is set to something unparsable:
//! a misconfigured service refuses to start instead of silently using a default.

use std::fmt;
use std::str::FromStr;

/// A variable was set to a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Name of the environment variable.
    pub var: String,
    /// The offending value.
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}={:?}: {}", self.var, self.value, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// The value of `name`, or `None` when unset, empty or not valid UTF-8.
pub fn string(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses `name` with [`FromStr`]; `default` when unset or empty.
pub fn parse_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match string(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError {
            var: name.to_owned(),
            value: raw.clone(),
            reason: e.to_string(),
        }),
    }
}

/// Parses a boolean: `true/false`, `1/0`, `yes/no`, `on/off` (any case);
/// `default` when unset or empty.
pub fn bool_or(name: &str, default: bool) -> Result<bool, ConfigError> {
    match string(name) {
        None => Ok(default),
        Some(raw) => parse_bool(&raw).ok_or_else(|| ConfigError {
            var: name.to_owned(),
            value: raw.clone(),
            reason: "expected true/false, 1/0, yes/no or on/off".to_owned(),
        }),
    }
}

/// Parses a number of seconds (fractions allowed, e.g. `0.5`, must be `>= 0`);
/// `default` when unset or empty.
pub fn seconds_or(
    name: &str,
    default: std::time::Duration,
) -> Result<std::time::Duration, ConfigError> {
    match string(name) {
        None => Ok(default),
        Some(raw) => {
            let refuse = |reason: &str| ConfigError {
                var: name.to_owned(),
                value: raw.clone(),
                reason: reason.to_owned(),
            };
            let secs: f64 = raw
                .trim()
                .parse()
                .map_err(|_| refuse("expected a number of seconds"))?;
            std::time::Duration::try_from_secs_f64(secs)
                .map_err(|_| refuse("expected a finite number of seconds >= 0"))
        }
    }
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bool;

    #[test]
    fn booleans_accept_the_usual_spellings() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool(" on "), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("nope"), None);
    }
}
