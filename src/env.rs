//! Numbers the gateway reads from its environment (`GATEWAY_WORKERS`, `PORT`,
//! `JOB_TTL_SECONDS`...): the default when a variable is unset or blank, an error naming
//! it when it is set to something that is not a number (the gateway then refuses to
//! start rather than run on a default the operator did not ask for).

use std::str::FromStr;

/// A variable set to something that is not a number.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?} is not a valid number")]
pub struct BadNumber {
    pub name: &'static str,
    pub value: String,
}

/// The number in `name`, or `default` when it is unset or blank.
pub fn number<T: FromStr>(name: &'static str, default: T) -> Result<T, BadNumber> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| BadNumber {
            name,
            value: v.clone(),
        }),
        _ => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unset_blank_set_and_bad() {
        assert_eq!(number("GW_ENV_TEST_UNSET", 7u32).unwrap(), 7);
        std::env::set_var("GW_ENV_TEST_BLANK", "  ");
        assert_eq!(number("GW_ENV_TEST_BLANK", 7u32).unwrap(), 7);
        std::env::set_var("GW_ENV_TEST_SET", " 12 ");
        assert_eq!(number("GW_ENV_TEST_SET", 7u32).unwrap(), 12);
        std::env::set_var("GW_ENV_TEST_BAD", "12s");
        let e = number("GW_ENV_TEST_BAD", 7u32).unwrap_err();
        assert_eq!(
            e.to_string(),
            "GW_ENV_TEST_BAD=\"12s\" is not a valid number"
        );
    }
}
