//! A split route's choice of side for each request (routes.yaml `split:`): a pin rule
//! that matches, else the sticky client's hash, else smooth weighted round robin
//! (nginx's: over any window the sides alternate in proportion, with no bursts). A side
//! with no available target (health, ejection, breakers) gives its share to the
//! others. Each side is its own [`Pool`]: its balancing, health, breakers and retries.

use super::Pool;
use crate::config::SplitConfig;
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One side: a pool and its weight.
pub struct Side {
    /// The pool's name: the side's label (access log, metrics, `side_header`).
    pub name: String,
    pub pool: Arc<Pool>,
    pub weight: u32,
    /// `name` as a header value.
    pub label: HeaderValue,
}

enum PinOn {
    Header(HeaderName),
    Cookie(String),
}

struct Pin {
    on: PinOn,
    value: Option<String>,
    side: usize,
}

struct Sticky {
    consumer: bool,
    header: Option<HeaderName>,
    cookie: Option<String>,
    set_cookie: bool,
}

/// How a side was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Weight,
    Pin,
    Sticky,
}

/// The side of one request.
#[derive(Debug)]
pub struct Choice {
    pub side: usize,
    pub reason: Reason,
    /// A sticky cookie to set on the answer (the client had none).
    pub set_cookie: Option<HeaderValue>,
}

/// A compiled split; see the module docs.
pub struct Split {
    pub sides: Vec<Side>,
    /// The smooth WRR's current weights, one per side.
    current: Mutex<Vec<i64>>,
    pins: Vec<Pin>,
    sticky: Option<Sticky>,
    /// `side_header`: the response header naming the side.
    pub side_header: Option<HeaderName>,
}

/// Positions on the sticky scale: a client's hash falls on one of these, and the sides
/// take consecutive ranges in proportion to their weights (in the table's order, so that
/// raising the last side's weight only moves clients towards it).
const SCALE: u64 = 1 << 20;

impl Split {
    /// The split of a validated route; `None` when a side's pool failed to build
    /// (already reported).
    pub fn build(cfg: &SplitConfig, pools: &BTreeMap<String, Arc<Pool>>) -> Option<Self> {
        let mut sides = Vec::with_capacity(cfg.sides().len());
        for s in cfg.sides() {
            sides.push(Side {
                name: s.upstream.clone(),
                pool: pools.get(&s.upstream)?.clone(),
                weight: s.weight,
                label: HeaderValue::from_str(&s.upstream).ok()?,
            });
        }
        let index = |name: &str| sides.iter().position(|s| s.name == name);
        let mut pins = Vec::with_capacity(cfg.pins().len());
        for p in cfg.pins() {
            let on = match (&p.header, &p.cookie) {
                (Some(h), _) => PinOn::Header(HeaderName::from_bytes(h.as_bytes()).ok()?),
                (None, Some(c)) => PinOn::Cookie(c.clone()),
                (None, None) => return None,
            };
            pins.push(Pin {
                on,
                value: p.value.clone(),
                side: index(&p.upstream)?,
            });
        }
        let sticky = match cfg.sticky() {
            None => None,
            Some(s) => Some(Sticky {
                consumer: s.consumer,
                header: match &s.header {
                    Some(h) => Some(HeaderName::from_bytes(h.as_bytes()).ok()?),
                    None => None,
                },
                cookie: s.cookie.clone(),
                set_cookie: s.set_cookie,
            }),
        };
        let side_header = match cfg.side_header() {
            Some(h) => Some(HeaderName::from_bytes(h.as_bytes()).ok()?),
            None => None,
        };
        Some(Self {
            current: Mutex::new(vec![0; sides.len()]),
            sides,
            pins,
            sticky,
            side_header,
        })
    }

    /// The side of a request with these headers, made by `consumer` (the identity an
    /// authentication plugin set).
    pub fn choose(&self, headers: &HeaderMap, consumer: Option<&str>) -> Choice {
        for p in &self.pins {
            let got = match &p.on {
                PinOn::Header(h) => headers.get(h).and_then(|v| v.to_str().ok()),
                PinOn::Cookie(c) => cookie(headers, c),
            };
            let hit = got.is_some_and(|v| p.value.as_deref().is_none_or(|want| want == v));
            if hit && self.available(p.side) {
                return Choice {
                    side: p.side,
                    reason: Reason::Pin,
                    set_cookie: None,
                };
            }
        }
        let mut set_cookie = None;
        if let Some(st) = &self.sticky {
            let key = consumer
                .filter(|_| st.consumer)
                .map(|c| c.to_string())
                .or_else(|| {
                    let h = st.header.as_ref()?;
                    headers.get(h)?.to_str().ok().map(str::to_string)
                })
                .or_else(|| cookie(headers, st.cookie.as_deref()?).map(str::to_string));
            let key = match (key, &st.cookie) {
                (Some(k), _) => Some(k),
                (None, Some(name)) if st.set_cookie => {
                    let id = hex::encode(rand::random::<[u8; 16]>());
                    set_cookie = HeaderValue::from_str(&format!(
                        "{name}={id}; Path=/; HttpOnly; SameSite=Lax"
                    ))
                    .ok();
                    Some(id)
                }
                (None, _) => None,
            };
            if let Some(side) = key.and_then(|k| self.by_hash(&k)) {
                if self.available(side) {
                    return Choice {
                        side,
                        reason: Reason::Sticky,
                        set_cookie,
                    };
                }
            }
        }
        Choice {
            side: self.next_weighted(),
            reason: Reason::Weight,
            set_cookie,
        }
    }

    /// Another side than `not` that can take a request now (its share when `not` has
    /// no available target left), by weight.
    pub fn other_than(&self, not: usize) -> Option<usize> {
        self.wrr(|i| i != not && self.sides[i].weight > 0 && self.available(i))
    }

    fn available(&self, i: usize) -> bool {
        self.sides[i].pool.has_available_target()
    }

    /// The side whose range holds the key's hash (weights > 0 only).
    fn by_hash(&self, key: &str) -> Option<usize> {
        let digest = Sha256::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let point = u64::from_be_bytes(first) % SCALE;
        let total: u64 = self.sides.iter().map(|s| u64::from(s.weight)).sum();
        if total == 0 {
            return None;
        }
        let target = point * total / SCALE;
        let mut acc = 0u64;
        for (i, s) in self.sides.iter().enumerate() {
            acc += u64::from(s.weight);
            if target < acc {
                return Some(i);
            }
        }
        None
    }

    /// Smooth WRR over the sides with weight that can take a request; when none can,
    /// over every side with weight (its pool then answers 503).
    fn next_weighted(&self) -> usize {
        self.wrr(|i| self.sides[i].weight > 0 && self.available(i))
            .or_else(|| self.wrr(|i| self.sides[i].weight > 0))
            .unwrap_or(0)
    }

    /// nginx's smooth weighted round robin over the sides `eligible` admits.
    fn wrr(&self, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        super::balance::smooth_pick(&mut cur, |i| eligible(i).then_some(self.sides[i].weight))
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::upstream::Registry;

    fn split(yaml: &str) -> Split {
        let cfg: SplitConfig = serde_yaml::from_str(yaml).unwrap();
        let reg = Registry::new();
        let mut pools = BTreeMap::new();
        for (i, s) in cfg.sides().iter().enumerate() {
            let c = crate::upstream::registry::tests::cfg(&[&format!("127.0.0.1:{}", i + 1)]);
            pools.insert(s.upstream.clone(), reg.build_pool(&s.upstream, &c).unwrap());
        }
        Split::build(&cfg, &pools).unwrap()
    }

    #[test]
    fn smooth_wrr_has_no_bursts() {
        let s = split(
            "[{ upstream: a, weight: 5 }, { upstream: b, weight: 1 }, { upstream: c, weight: 1 }]",
        );
        let seq: String = (0..7)
            .map(|_| ["a", "b", "c"][s.choose(&HeaderMap::new(), None).side])
            .collect();
        // nginx's documented sequence for 5/1/1
        assert_eq!(seq, "aabacaa");
        let s = split("[{ upstream: a, weight: 1 }, { upstream: b, weight: 1 }]");
        let seq: Vec<usize> = (0..10)
            .map(|_| s.choose(&HeaderMap::new(), None).side)
            .collect();
        assert!(seq.windows(2).all(|w| w[0] != w[1]), "{seq:?}");
    }

    #[test]
    fn pins_and_sticky_keys() {
        let s = split("{ sides: [{ upstream: a, weight: 1 }, { upstream: b, weight: 0 }], pin: [{ header: x-canary, value: '1', upstream: b }, { cookie: canary, upstream: b }], sticky: { header: x-user } }");
        let mut h = HeaderMap::new();
        h.insert("x-canary", HeaderValue::from_static("1"));
        assert_eq!(s.choose(&h, None).reason, Reason::Pin);
        assert_eq!(s.choose(&h, None).side, 1);
        h.insert("x-canary", HeaderValue::from_static("0"));
        assert_eq!(s.choose(&h, None).side, 0);
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_static("x=1; canary=yes"));
        assert_eq!(s.choose(&h, None).side, 1);
        let mut h = HeaderMap::new();
        h.insert("x-user", HeaderValue::from_static("alice"));
        let c = s.choose(&h, None);
        assert_eq!((c.side, c.reason), (0, Reason::Sticky));
    }

    #[test]
    fn sticky_hash_follows_weights_and_sets_a_cookie() {
        let s = split("{ sides: [{ upstream: a, weight: 3 }, { upstream: b, weight: 1 }], sticky: { consumer: true, cookie: side } }");
        let on_b = (0..4000)
            .filter(|i| s.choose(&HeaderMap::new(), Some(&format!("user{i}"))).side == 1)
            .count();
        assert!((900..1100).contains(&on_b), "{on_b}");
        let first = s.choose(&HeaderMap::new(), Some("alice")).side;
        assert!((0..20).all(|_| s.choose(&HeaderMap::new(), Some("alice")).side == first));
        let c = s.choose(&HeaderMap::new(), None);
        let v = c.set_cookie.unwrap();
        let v = v.to_str().unwrap();
        assert!(
            v.starts_with("side=") && v.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
            "{v}"
        );
        let id = v.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_str(id).unwrap());
        let again = s.choose(&h, None);
        assert_eq!((again.side, again.set_cookie.is_none()), (c.side, true));
    }
}
