//! Durations in settings (`30s`, `5m`), parsed with their option path.

use crate::SettingsError;
use std::time::Duration;

/// Parses a human duration (`30s`, `15m`, `1h`; a bare `0` is zero) for the option at
/// `path`.
pub(crate) fn parse_duration(path: &str, text: &str) -> Result<Duration, SettingsError> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t)
        .map_err(|e| SettingsError::at(path, format!("`{t}` is not a duration ({e})")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("x", "30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("x", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("leeway", "soon").unwrap_err().path, "leeway");
        assert_eq!(parse_duration("cache_ttl", " 0 ").unwrap(), Duration::ZERO);
    }
}
