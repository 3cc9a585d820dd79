//! routes.yaml `split:` (a route field, instead of `upstream:`): the route's requests
//! shared between pools by weight (canary, blue/green), with the rollout's rules:
//! pins by header or cookie, sticky clients, the side in a response header.
//!
//! Two spellings: the sides alone,
//! `split: [{ upstream: blue, weight: 90 }, { upstream: green, weight: 10 }]`, or a
//! mapping with `sides:` and the rules (`pin`, `sticky`, `side_header`).

use super::Errors;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Weighted sides, alone or with rollout rules.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SplitConfig {
    /// The sides only: `[{ upstream: blue, weight: 90 }, { upstream: green, weight: 10 }]`.
    Sides(Vec<SplitSide>),
    /// The sides and the rollout rules.
    Rules(SplitRules),
}

/// One side of a split: a pool and its share.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SplitSide {
    /// The pool of this side (its own balancing, health, breakers and retries).
    pub upstream: String,
    /// Relative share, an integer ≥ 0 (0: no new requests but pinned ones); the sum of
    /// the weights must be above 0.
    pub weight: u32,
}

/// The sides and the rollout rules of a split.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitRules {
    /// The sides (as the list form).
    pub sides: Vec<SplitSide>,
    /// Rules that send a request to one side whatever the weights (testers, a
    /// canary header); the first that matches wins.
    #[serde(default)]
    pub pin: Vec<PinRule>,
    /// Keeps a client on one side: the hash of its consumer, header or cookie picks the
    /// side in proportion to the weights, the same on every replica.
    pub sticky: Option<StickyConfig>,
    /// Response header naming the side that served the request (e.g. `X-Split-Side`).
    pub side_header: Option<String>,
}

/// A pin: requests with this header (or cookie) go to `upstream`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRule {
    /// Request header to look at (one of `header`, `cookie`).
    pub header: Option<String>,
    /// Cookie to look at (one of `header`, `cookie`).
    pub cookie: Option<String>,
    /// The value that pins (exact); absent: any value.
    pub value: Option<String>,
    /// The side pinned to (one of the sides' upstreams).
    pub upstream: String,
}

/// What identifies a client for sticky assignment, tried in this order: the consumer
/// (set by an authentication plugin), the header, the cookie. A request with none of
/// them is placed by weight.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StickyConfig {
    /// The authenticated consumer's name.
    #[serde(default)]
    pub consumer: bool,
    /// A request header naming the client (`x-user-id`).
    pub header: Option<String>,
    /// A cookie naming the client. When the request has none, the gateway places it by
    /// weight and sets the cookie (a random id, `Path=/; HttpOnly; SameSite=Lax`) so
    /// that the client stays on that side from then on; `set_cookie: false` leaves an
    /// application's own cookie alone.
    pub cookie: Option<String>,
    /// With `cookie`: set it when absent (default true).
    #[serde(default = "yes")]
    pub set_cookie: bool,
}

fn yes() -> bool {
    true
}

impl SplitConfig {
    pub fn sides(&self) -> &[SplitSide] {
        match self {
            SplitConfig::Sides(s) => s,
            SplitConfig::Rules(r) => &r.sides,
        }
    }

    pub fn pins(&self) -> &[PinRule] {
        match self {
            SplitConfig::Sides(_) => &[],
            SplitConfig::Rules(r) => &r.pin,
        }
    }

    pub fn sticky(&self) -> Option<&StickyConfig> {
        match self {
            SplitConfig::Sides(_) => None,
            SplitConfig::Rules(r) => r.sticky.as_ref(),
        }
    }

    pub fn side_header(&self) -> Option<&str> {
        match self {
            SplitConfig::Sides(_) => None,
            SplitConfig::Rules(r) => r.side_header.as_deref(),
        }
    }

    /// The config path of the sides list under the route's `p`.
    fn sides_path(&self, p: &str) -> String {
        match self {
            SplitConfig::Sides(_) => format!("{p}.split"),
            SplitConfig::Rules(_) => format!("{p}.split.sides"),
        }
    }
}

/// A list is the sides; a mapping is [`SplitRules`]. Each keeps its own error paths.
impl<'de> Deserialize<'de> for SplitConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SplitConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of `{ upstream, weight }` sides, or a mapping with `sides`")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                a: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::<SplitSide>::deserialize(serde::de::value::SeqAccessDeserializer::new(a))
                    .map(SplitConfig::Sides)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                a: A,
            ) -> Result<Self::Value, A::Error> {
                SplitRules::deserialize(serde::de::value::MapAccessDeserializer::new(a))
                    .map(SplitConfig::Rules)
            }
        }
        d.deserialize_any(V)
    }
}

fn header_ok(h: &str) -> bool {
    http::HeaderName::from_bytes(h.as_bytes()).is_ok()
}

fn cookie_name_ok(c: &str) -> bool {
    !c.is_empty()
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks route `p`'s split against the table's pools.
pub(super) fn validate(p: &str, s: &SplitConfig, c: &super::Config, errs: &mut Errors) {
    let sp = s.sides_path(p);
    let sides = s.sides();
    if sides.is_empty() {
        errs.push(
            &sp,
            "a split needs at least one side `{ upstream, weight }`",
        );
    }
    for (i, side) in sides.iter().enumerate() {
        if !c.upstreams.contains_key(&side.upstream) {
            errs.push(
                format!("{sp}[{i}].upstream"),
                format!("unknown upstream `{}`", side.upstream),
            );
        }
        if let Some(j) = sides[..i].iter().position(|o| o.upstream == side.upstream) {
            errs.push(
                format!("{sp}[{i}].upstream"),
                format!("`{}` is already side {j} of this split", side.upstream),
            );
        }
    }
    if !sides.is_empty() && sides.iter().map(|s| u64::from(s.weight)).sum::<u64>() == 0 {
        errs.push(&sp, "every side has weight 0: nothing could be served");
    }
    for (i, pin) in s.pins().iter().enumerate() {
        let pp = format!("{p}.split.pin[{i}]");
        match (&pin.header, &pin.cookie) {
            (Some(h), None) if !header_ok(h) => errs.push(
                format!("{pp}.header"),
                format!("`{h}` is not a header name"),
            ),
            (None, Some(k)) if !cookie_name_ok(k) => errs.push(
                format!("{pp}.cookie"),
                format!("`{k}` is not a cookie name"),
            ),
            (Some(_), None) | (None, Some(_)) => {}
            _ => errs.push(&pp, "give one of `header`, `cookie`"),
        }
        if !sides.iter().any(|s| s.upstream == pin.upstream) {
            errs.push(
                format!("{pp}.upstream"),
                format!("`{}` is not a side of this split", pin.upstream),
            );
        }
    }
    if let Some(st) = s.sticky() {
        let pp = format!("{p}.split.sticky");
        if !st.consumer && st.header.is_none() && st.cookie.is_none() {
            errs.push(&pp, "give `consumer: true`, `header` or `cookie`");
        }
        if let Some(h) = st.header.as_deref().filter(|h| !header_ok(h)) {
            errs.push(
                format!("{pp}.header"),
                format!("`{h}` is not a header name"),
            );
        }
        if let Some(k) = st.cookie.as_deref().filter(|k| !cookie_name_ok(k)) {
            errs.push(
                format!("{pp}.cookie"),
                format!("`{k}` is not a cookie name"),
            );
        }
    }
    if let Some(h) = s.side_header().filter(|h| !header_ok(h)) {
        errs.push(
            format!("{p}.split.side_header"),
            format!("`{h}` is not a header name"),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    fn errors(yaml: &str) -> Vec<String> {
        match crate::config::parse(yaml, "t.yaml", &|_| None) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    const HEAD: &str = "version: 1\nupstreams:\n  blue: { targets: [{ addr: \"127.0.0.1:1\" }] }\n  green: { targets: [{ addr: \"127.0.0.1:2\" }] }\nroutes:\n  - name: r\n    match: { path_prefix: /x }\n";

    #[test]
    fn both_spellings_parse() {
        let list = format!("{HEAD}    split:\n      - {{ upstream: blue, weight: 90 }}\n      - {{ upstream: green, weight: 10 }}\n");
        let c = crate::config::parse(&list, "t.yaml", &|_| None).unwrap();
        let s = c.routes[0].split.as_ref().unwrap();
        assert_eq!(s.sides().len(), 2);
        assert_eq!(s.sides()[1].weight, 10);
        let rules = format!("{HEAD}    split:\n      sides:\n        - {{ upstream: blue, weight: 1 }}\n        - {{ upstream: green, weight: 0 }}\n      pin:\n        - {{ header: x-canary, value: \"1\", upstream: green }}\n      sticky: {{ consumer: true, cookie: side }}\n      side_header: X-Split-Side\n");
        let c = crate::config::parse(&rules, "t.yaml", &|_| None).unwrap();
        let s = c.routes[0].split.as_ref().unwrap();
        assert_eq!(s.pins()[0].upstream, "green");
        assert!(s.sticky().unwrap().set_cookie);
        assert_eq!(s.side_header(), Some("X-Split-Side"));
    }

    #[test]
    fn errors_are_located() {
        let neg = format!("{HEAD}    split:\n      - {{ upstream: blue, weight: 90 }}\n      - {{ upstream: green, weight: -1 }}\n");
        let e = errors(&neg);
        assert!(e[0].starts_with("line 10, column"), "{e:?}");
        assert!(e[0].contains("routes[0].split[1].weight"), "{e:?}");
        let zero = format!("{HEAD}    split:\n      - {{ upstream: blue, weight: 0 }}\n      - {{ upstream: nope, weight: 0 }}\n");
        let e = errors(&zero).join("\n");
        assert!(
            e.contains("line 8, column 5: routes[0].split: every side has weight 0"),
            "{e}"
        );
        assert!(
            e.contains("line 10, column 11: routes[0].split[1].upstream: unknown upstream `nope`"),
            "{e}"
        );
        let both =
            format!("{HEAD}    upstream: blue\n    split: [{{ upstream: blue, weight: 1 }}]\n");
        assert!(errors(&both).join("\n").contains("give only one of"));
        let pin = format!("{HEAD}    split:\n      sides: [{{ upstream: blue, weight: 1 }}]\n      pin: [{{ header: x, upstream: green }}]\n      sticky: {{}}\n");
        let e = errors(&pin).join("\n");
        assert!(
            e.contains("routes[0].split.pin[0].upstream: `green` is not a side"),
            "{e}"
        );
        assert!(e.contains("routes[0].split.sticky: give"), "{e}");
    }
}
