//! Durations (`250ms`, `1m`) and byte sizes (`512KB`, `10MiB`) in plugin settings,
//! spelled as in the rest of routes.yaml.

use schemars::gen::SchemaGenerator;
use schemars::schema::{InstanceType, Schema, SchemaObject};
use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// Why a duration or a size is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnitError {
    #[error("duration `{input}` has no unit (write `{number}s`, `{number}ms`...)")]
    NoUnit { input: String, number: String },
    #[error("`{input}` is not a duration ({source})")]
    Duration {
        input: String,
        #[source]
        source: humantime::DurationError,
    },
    #[error("invalid size `{0}` (write e.g. `512KB`, `10MiB` or a number of bytes)")]
    Size(String),
    #[error("unknown size unit `{unit}` in `{input}` (use B, KB, MB, GB, KiB, MiB, GiB)")]
    SizeUnit { unit: String, input: String },
    #[error("size `{0}` is too large")]
    TooLarge(String),
}

/// A duration with a unit (`500ms`, `10s`, `1m`, `1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub Duration);

impl Period {
    pub fn parse(s: &str) -> Result<Self, UnitError> {
        let t = s.trim();
        if t.chars().all(|c| c.is_ascii_digit()) {
            return Err(UnitError::NoUnit {
                input: s.to_string(),
                number: t.to_string(),
            });
        }
        humantime::parse_duration(t)
            .map(Period)
            .map_err(|source| UnitError::Duration {
                input: s.to_string(),
                source,
            })
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Period::parse(&s).map_err(de::Error::custom)
    }
}

impl JsonSchema for Period {
    fn schema_name() -> String {
        "PluginDuration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            ..Default::default()
        };
        s.metadata().description = Some("A duration with a unit: `500ms`, `10s`, `1m`".into());
        s.into()
    }
}

/// A number of bytes: an integer, or `512KB`, `10MiB`, `1GB`. The one size parser of
/// routes.yaml: the gateway's own `ByteSize` uses it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    pub fn parse(s: &str) -> Result<Self, UnitError> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (n, unit) = t.split_at(split);
        let n: u64 = n.parse().map_err(|_| UnitError::Size(s.to_string()))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" | "k" => 1000,
            "mb" | "m" => 1000 * 1000,
            "gb" | "g" => 1000 * 1000 * 1000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            other => {
                return Err(UnitError::SizeUnit {
                    unit: other.to_string(),
                    input: s.to_string(),
                })
            }
        };
        n.checked_mul(mult)
            .map(Size)
            .ok_or_else(|| UnitError::TooLarge(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as `10MiB` or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Size::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("size `{v}` must not be negative")))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Size {
    fn schema_name() -> String {
        "PluginByteSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = SchemaObject {
            instance_type: Some(vec![InstanceType::String, InstanceType::Integer].into()),
            ..Default::default()
        };
        s.metadata().description =
            Some("A size: bytes as an integer, or `512KB`, `10MiB`, `1GB`".into());
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_sizes() {
        assert_eq!(Period::parse("1m").unwrap().0, Duration::from_secs(60));
        assert_eq!(
            Period::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        let e = Period::parse("5").unwrap_err();
        assert!(matches!(e, UnitError::NoUnit { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "duration `5` has no unit (write `5s`, `5ms`...)"
        );
        assert_eq!(Size::parse("10MiB").unwrap().0, 10 << 20);
        assert_eq!(Size::parse("2KB").unwrap().0, 2000);
        assert!(Size::parse("3 furlongs").is_err());
    }
}
