//! Least request, power of two choices: two targets drawn at random by weight, the one
//! with fewer outstanding requests per unit of weight wins. O(1) expected.

use super::{p2c, BackendSelection, Candidates, WeightTable};
use crate::upstream::Target;

#[derive(Debug)]
pub struct LeastRequest {
    table: WeightTable,
}

impl LeastRequest {
    pub fn new(targets: &[Target]) -> Self {
        Self {
            table: WeightTable::new(targets),
        }
    }
}

impl BackendSelection for LeastRequest {
    fn select(&self, c: &Candidates<'_>) -> Option<usize> {
        p2c(&self.table, c, &|t| {
            t.state.in_flight() as f64 / f64::from(t.weight.max(1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::balance::tests::targets;

    #[test]
    fn busy_target_loses_every_duel() {
        let t = targets(&[1, 1]);
        let _held: Vec<_> = (0..5)
            .map(|_| crate::upstream::pool::test_pick(&t[0]))
            .collect();
        let sel = LeastRequest::new(&t);
        for _ in 0..100 {
            assert_eq!(sel.select(&Candidates::all(&t)), Some(1));
        }
    }
}
