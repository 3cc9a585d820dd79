//! Smooth weighted round robin (nginx's): each pick adds every eligible target's weight
//! to its current score, takes the highest, and subtracts the total from it. Weights 3
//! and 1 give A A B A, never a burst.

use super::{BackendSelection, Candidates};
use crate::upstream::Target;
use std::sync::Mutex;

pub struct SmoothWeightedRoundRobin {
    current: Mutex<Vec<i64>>,
}

impl SmoothWeightedRoundRobin {
    pub fn new(targets: &[Target]) -> Self {
        Self {
            current: Mutex::new(vec![0; targets.len()]),
        }
    }
}

impl BackendSelection for SmoothWeightedRoundRobin {
    fn select(&self, c: &Candidates<'_>) -> Option<usize> {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if cur.len() != c.targets.len() {
            cur.resize(c.targets.len(), 0);
        }
        smooth_pick(&mut cur, |i| c.admits(i).then(|| c.targets[i].weight))
    }
}

/// One pick of nginx's smooth weighted round robin over `current` (a score per
/// candidate): `weight(i)` is candidate `i`'s weight, `None` when it is not eligible.
/// Shared by the pool balancer and a route's `split` sides.
pub fn smooth_pick(current: &mut [i64], weight: impl Fn(usize) -> Option<u32>) -> Option<usize> {
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for i in 0..current.len() {
        let Some(w) = weight(i) else {
            continue;
        };
        let w = i64::from(w);
        current[i] += w;
        total += w;
        if best.is_none_or(|b| current[i] > current[b]) {
            best = Some(i);
        }
    }
    let b = best?;
    current[b] -= total;
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::balance::tests::{counts, targets};

    #[test]
    fn three_to_one_is_a_a_b_a() {
        let t = targets(&[3, 1]);
        let sel = SmoothWeightedRoundRobin::new(&t);
        let seq: Vec<usize> = (0..8)
            .map(|_| sel.select(&Candidates::all(&t)).expect("t"))
            .collect();
        assert_eq!(seq, [0, 0, 1, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn shares_within_two_percent_and_smooth() {
        let w = [5, 3, 2, 1];
        let t = targets(&w);
        let sel = SmoothWeightedRoundRobin::new(&t);
        let c = counts(&sel, &t, 10_000);
        for (i, &n) in c.iter().enumerate() {
            let want = 10_000.0 * f64::from(w[i]) / 11.0;
            assert!((n as f64 - want).abs() <= want * 0.02, "{i}: {n} vs {want}");
        }
        // never more than one extra pick in a row beyond the weight-1 pattern: for
        // 3:1 no target is picked 4 times in a row, B never twice.
        let t = targets(&[3, 1]);
        let sel = SmoothWeightedRoundRobin::new(&t);
        let seq: Vec<usize> = (0..10_000)
            .map(|_| sel.select(&Candidates::all(&t)).expect("t"))
            .collect();
        let mut run = 1;
        for w in seq.windows(2) {
            run = if w[0] == w[1] { run + 1 } else { 1 };
            assert!(run <= 3 && !(w[0] == 1 && w[1] == 1));
        }
        let a = seq.iter().filter(|&&i| i == 0).count();
        assert!((a as f64 - 7500.0).abs() <= 150.0);
    }
}
