//! Weighted random: each eligible target with probability weight / total. O(log n)
//! while the draws land on eligible targets; a full scan otherwise.

use super::{BackendSelection, Candidates, WeightTable};
use crate::upstream::Target;
use rand::Rng;

#[derive(Debug)]
pub struct WeightedRandom {
    table: WeightTable,
}

impl WeightedRandom {
    pub fn new(targets: &[Target]) -> Self {
        Self {
            table: WeightTable::new(targets),
        }
    }
}

impl BackendSelection for WeightedRandom {
    fn select(&self, c: &Candidates<'_>) -> Option<usize> {
        let mut rng = rand::rng();
        for _ in 0..8 {
            let i = self.table.sample(&mut rng)?;
            if c.admits(i) {
                return Some(i);
            }
        }
        // many targets out: draw among the eligible ones only
        let total: u64 = c.iter().map(|(_, t)| u64::from(t.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut r = rng.random_range(0..total);
        for (i, t) in c.iter() {
            let w = u64::from(t.weight);
            if r < w {
                return Some(i);
            }
            r -= w;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::balance::tests::targets;

    #[test]
    fn fallback_draws_by_weight_among_eligible() {
        let mut w = vec![100; 50];
        w.extend([1, 3]);
        let t = targets(&w);
        let sel = WeightedRandom::new(&t);
        let mut c = [0usize; 2];
        for _ in 0..8000 {
            let i = sel
                .select(&Candidates::new(&t, None, &|i| i >= 50))
                .expect("eligible");
            c[i - 50] += 1;
        }
        let share = c[1] as f64 / 8000.0;
        assert!((share - 0.75).abs() < 0.04, "{share}");
    }
}
