//! Peak-EWMA, power of two choices: two targets drawn at random by weight, the one with
//! the lower `latency_ewma × (in_flight + 1) / weight` wins. Targets without a latency
//! sample yet cost as if they answered in 1 ms, so they get tried.

use super::{p2c, BackendSelection, Candidates, WeightTable};
use crate::upstream::Target;

/// Latency assumed for a target before its first response, in nanoseconds.
const DEFAULT_NS: f64 = 1_000_000.0;

#[derive(Debug)]
pub struct PeakEwmaP2c {
    table: WeightTable,
}

impl PeakEwmaP2c {
    pub fn new(targets: &[Target]) -> Self {
        Self {
            table: WeightTable::new(targets),
        }
    }
}

impl BackendSelection for PeakEwmaP2c {
    fn select(&self, c: &Candidates<'_>) -> Option<usize> {
        p2c(&self.table, c, &|t| {
            let l = t.state.latency_ewma_ns();
            let l = if l > 0.0 { l } else { DEFAULT_NS };
            l * (t.state.in_flight() as f64 + 1.0) / f64::from(t.weight.max(1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::balance::tests::targets;
    use std::time::Duration;

    #[test]
    fn slow_target_loses_every_duel() {
        let t = targets(&[1, 1]);
        t[0].state.ewma.record(Duration::from_millis(200));
        t[1].state.ewma.record(Duration::from_millis(5));
        let sel = PeakEwmaP2c::new(&t);
        for _ in 0..100 {
            assert_eq!(sel.select(&Candidates::all(&t)), Some(1));
        }
    }
}
