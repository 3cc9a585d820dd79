//! Weighted least connections: the eligible target with the fewest outstanding
//! requests per unit of weight (`in_flight / weight`); ties broken at random. O(n).

use super::{BackendSelection, Candidates, XorShift};

#[derive(Debug, Default)]
pub struct LeastConn;

impl BackendSelection for LeastConn {
    fn select(&self, c: &Candidates<'_>) -> Option<usize> {
        let mut rng: Option<XorShift> = None;
        let mut best: Option<(usize, u64, u64)> = None; // index, in_flight, weight
        let mut ties = 0u64;
        for (i, t) in c.iter() {
            let (f, w) = (t.state.in_flight(), u64::from(t.weight));
            let Some((_, bf, bw)) = best else {
                best = Some((i, f, w));
                continue;
            };
            // f / w  vs  bf / bw, without division
            let (lhs, rhs) = (
                u128::from(f) * u128::from(bw),
                u128::from(bf) * u128::from(w),
            );
            if lhs < rhs {
                best = Some((i, f, w));
                ties = 0;
            } else if lhs == rhs {
                ties += 1;
                if rng.get_or_insert_with(XorShift::seeded).below(ties + 1) == 0 {
                    best = Some((i, f, w));
                }
            }
        }
        best.map(|(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::balance::tests::{counts, targets};
    use crate::upstream::Pick;

    #[test]
    fn prefers_fewer_in_flight_per_weight() {
        let t = targets(&[1, 1, 2]);
        let hold = |i: usize, n: usize| -> Vec<Pick> {
            (0..n)
                .map(|_| crate::upstream::pool::test_pick(&t[i]))
                .collect()
        };
        let _a = hold(0, 3);
        let _b = hold(1, 1);
        let _c = hold(2, 4); // 4 / 2 = 2 per weight
        assert_eq!(LeastConn.select(&Candidates::all(&t)), Some(1));
        let _d = hold(1, 2); // 3 / 1
        assert_eq!(LeastConn.select(&Candidates::all(&t)), Some(2));
    }

    #[test]
    fn ties_are_broken_at_random() {
        let t = targets(&[1, 1, 1, 1]);
        let c = counts(&LeastConn, &t, 4000);
        assert!(c.iter().all(|&n| n > 800), "{c:?}");
    }
}
