//! Human-friendly units used throughout routes.yaml: durations (`250ms`, `5s`, `1m`)
//! and byte sizes (`512KB`, `10MiB`, or a plain integer of bytes).

use gateway_plugins::policy::units::{Size, UnitError};
use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::{Duration, SystemTime};

/// A duration written as a number followed by a unit: `ms`, `s`, `m`, `h` (combinations
/// such as `1m30s` work too). A bare number is refused: the unit is never guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }
    pub const fn millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }
    pub fn get(self) -> Duration {
        self.0
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `250ms`, `5s` or `1m`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                humantime::parse_duration(v.trim()).map(Dur).map_err(|e| {
                    E::custom(format!(
                        "invalid duration `{v}`: {e} (write e.g. `250ms`, `5s`, `1m`)"
                    ))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration `{v}` has no unit (write e.g. `{v}s` or `{v}ms`)"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration `{v}` has no unit (write e.g. `{v}s` or `{v}ms`)"
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration `{v}` has no unit (write e.g. `{v}s`)"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> String {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            string: Some(Box::new(schemars::schema::StringValidation {
                pattern: Some(r"^\s*([0-9]+\s*(ns|us|ms|s|sec|m|min|h|d)\s*)+$".into()),
                ..Default::default()
            })),
            metadata: Some(Box::new(schemars::schema::Metadata {
                description: Some("A duration: `250ms`, `5s`, `1m`, `1m30s`".into()),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

/// A size in bytes: a plain integer, or a number with `B`, `KB`, `MB`, `GB` (powers of
/// 1000) or `KiB`, `MiB`, `GiB` (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `512KB`, `10MiB`, `1GB` or a number of bytes (the plugins' parser).
    pub fn parse(s: &str) -> Result<Self, UnitError> {
        Size::parse(s).map(|b| ByteSize(b.0))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Size::deserialize(d).map(|b| ByteSize(b.0))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> String {
        "ByteSize".into()
    }
    /// The plugins' size schema (same parser, same description), under this name.
    fn json_schema(gen: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        Size::json_schema(gen)
    }
}

/// Why a deprecation date is refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{input}` is not a date (write `2026-12-31` or an RFC 3339 date-time): {source}")]
pub struct DateError {
    pub input: String,
    #[source]
    pub source: humantime::TimestampError,
}

/// `2026-01-01` or an RFC 3339 date-time.
pub fn parse_date(s: &str) -> Result<SystemTime, DateError> {
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339(&full).map_err(|source| DateError {
        input: s.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        let d: Dur = serde_yaml::from_str("250ms").unwrap();
        assert_eq!(d.get(), Duration::from_millis(250));
        let d: Dur = serde_yaml::from_str("1m").unwrap();
        assert_eq!(d.get(), Duration::from_secs(60));
        let e = serde_yaml::from_str::<Dur>("5").unwrap_err().to_string();
        assert!(e.contains("has no unit"), "{e}");
        assert!(serde_yaml::from_str::<Dur>("5 parsecs").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("10MiB").unwrap().0, 10 << 20);
        assert_eq!(ByteSize::parse("2KB").unwrap().0, 2000);
        assert_eq!(ByteSize::parse("17").unwrap().0, 17);
        assert!(ByteSize::parse("3 furlongs").is_err());
    }
}
