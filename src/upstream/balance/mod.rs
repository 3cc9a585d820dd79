//! Target selection algorithms behind one small trait, one file per algorithm. A
//! selector is built for one target set (it is rebuilt whenever the set changes) and
//! sees availability only through the `eligible` callback. Every selector skips
//! targets with weight 0 (draining).

mod candidates;
mod least_conn;
mod least_request;
mod maglev;
mod peak_ewma;
mod random;
mod wrr;

pub use candidates::Candidates;
pub use least_conn::LeastConn;
pub use least_request::LeastRequest;
pub use maglev::Maglev;
pub use peak_ewma::PeakEwmaP2c;
pub use random::WeightedRandom;
pub use wrr::{smooth_pick, SmoothWeightedRoundRobin};

use super::Target;
use crate::config::{Balance, UpstreamConfig};
use rand::Rng;

/// Chooses one target among a pool's targets.
pub trait BackendSelection: Send + Sync {
    /// Index into `c.targets` of the chosen one, among those `c` admits; `None` when
    /// none is.
    fn select(&self, c: &Candidates<'_>) -> Option<usize>;
}

/// The selector configured for a pool (`balance:`), built for its current targets.
pub fn for_config(config: &UpstreamConfig, targets: &[Target]) -> Box<dyn BackendSelection> {
    for_balance(config.balance, targets)
}

/// The selector for one algorithm.
pub fn for_balance(balance: Balance, targets: &[Target]) -> Box<dyn BackendSelection> {
    match balance {
        Balance::RoundRobin => Box::new(SmoothWeightedRoundRobin::new(targets)),
        Balance::LeastConn => Box::new(LeastConn),
        Balance::Random => Box::new(WeightedRandom::new(targets)),
        Balance::LeastRequest => Box::new(LeastRequest::new(targets)),
        Balance::PeakEwma => Box::new(PeakEwmaP2c::new(targets)),
        Balance::ConsistentHash => Box::new(Maglev::new(targets)),
    }
}

/// Cumulative weights for O(log n) weighted sampling.
#[derive(Debug, Clone, Default)]
pub(crate) struct WeightTable {
    prefix: Vec<u64>,
}

impl WeightTable {
    pub(crate) fn new(targets: &[Target]) -> Self {
        let mut acc = 0u64;
        let prefix = targets
            .iter()
            .map(|t| {
                acc += u64::from(t.weight);
                acc
            })
            .collect();
        Self { prefix }
    }

    fn total(&self) -> u64 {
        self.prefix.last().copied().unwrap_or(0)
    }

    /// A random index, drawn in proportion to weight (never a weight-0 target).
    pub(crate) fn sample(&self, rng: &mut impl Rng) -> Option<usize> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let r = rng.random_range(0..total);
        Some(self.prefix.partition_point(|&p| p <= r))
    }
}

/// A tiny xorshift generator for tie-breaking inside one selection.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn seeded() -> Self {
        Self(rand::rng().random::<u64>() | 1)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0 % n
        }
    }
}

/// Power of two choices: draws two distinct eligible targets by weight and keeps the
/// one with the lower `cost` (ties at random). When sampling keeps hitting ineligible
/// targets, falls back to the lowest cost of a full scan.
pub(crate) fn p2c(
    table: &WeightTable,
    c: &Candidates<'_>,
    cost: &dyn Fn(&Target) -> f64,
) -> Option<usize> {
    let mut rng = rand::rng();
    let mut picks: [Option<usize>; 2] = [None, None];
    for _ in 0..16 {
        let i = table.sample(&mut rng)?;
        if picks[0] == Some(i) || !c.admits(i) {
            continue;
        }
        if picks[0].is_none() {
            picks[0] = Some(i);
        } else {
            picks[1] = Some(i);
            break;
        }
    }
    let cost_of = |i: usize| c.targets.get(i).map_or(f64::INFINITY, cost);
    match picks {
        [Some(a), Some(b)] => {
            let (ca, cb) = (cost_of(a), cost_of(b));
            Some(if ca < cb || (ca == cb && rng.random::<bool>()) {
                a
            } else {
                b
            })
        }
        // no second distinct eligible target drawn (few targets, or most ineligible):
        // compare them all rather than hand the one drawn a win it did not earn
        _ => scan_min(c, cost),
    }
}

fn scan_min(c: &Candidates<'_>, cost: &dyn Fn(&Target) -> f64) -> Option<usize> {
    let mut rng = XorShift::seeded();
    let mut best: Option<(usize, f64)> = None;
    let mut ties = 0u64;
    for (i, t) in c.iter() {
        let c = cost(t);
        match best {
            Some((_, b)) if c > b => {}
            Some((_, b)) if c == b => {
                ties += 1;
                if rng.below(ties + 1) == 0 {
                    best = Some((i, c));
                }
            }
            _ => {
                best = Some((i, c));
                ties = 0;
            }
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::upstream::TargetState;
    use std::net::SocketAddr;
    use std::sync::Arc;

    pub(crate) fn targets(weights: &[u32]) -> Vec<Target> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let addr = SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 80));
                Target {
                    addr,
                    weight: w,
                    state: Arc::new(TargetState::new(addr)),
                }
            })
            .collect()
    }

    pub(crate) fn counts(sel: &dyn BackendSelection, t: &[Target], n: usize) -> Vec<usize> {
        let mut c = vec![0; t.len()];
        for _ in 0..n {
            let i = sel.select(&Candidates::all(t)).expect("a target");
            c[i] += 1;
        }
        c
    }

    #[test]
    fn every_algorithm_respects_weights_zero_and_eligibility() {
        for b in [
            Balance::RoundRobin,
            Balance::LeastConn,
            Balance::Random,
            Balance::LeastRequest,
            Balance::PeakEwma,
            Balance::ConsistentHash,
        ] {
            let t = targets(&[1, 0, 2]);
            let sel = for_balance(b, &t);
            for k in 0..200u64 {
                let i = sel
                    .select(&Candidates::new(&t, Some(k), &|i| i != 2))
                    .expect("target 0");
                assert_eq!(i, 0, "{b:?}");
                assert_ne!(
                    sel.select(&Candidates::new(&t, Some(k), &|_| true)),
                    Some(1),
                    "{b:?}"
                );
            }
            assert_eq!(
                sel.select(&Candidates::new(&t, Some(1), &|i| i == 1)),
                None,
                "{b:?}"
            );
            let empty = for_balance(b, &[]);
            assert_eq!(
                empty.select(&Candidates::new(&[], Some(1), &|_| true)),
                None,
                "{b:?}"
            );
        }
    }

    #[test]
    fn weighted_sampling_follows_weights() {
        let t = targets(&[1, 3]);
        let c = counts(&WeightedRandom::new(&t), &t, 20_000);
        let share = c[1] as f64 / 20_000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
    }
}
