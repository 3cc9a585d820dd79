//! Consistent hashing with Maglev (Eisenbud et al., NSDI 2016), weight-aware: each
//! target fills lookup-table slots along its own permutation of the table, in turns;
//! in each turn a target fills as many slots as its weight earned (credit += weight;
//! one slot per `max_weight` of credit), so slot shares follow weights. Weight 0 keeps
//! a target out of the table. Removing one of N equal targets moves about 1/N of keys.
//!
//! A key maps to `table[key % M]`; when that target is not eligible the lookup walks on
//! to the following slots until it finds one that is.

use super::{BackendSelection, Candidates, XorShift};
use crate::upstream::Target;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Lookup table size (prime, per the paper ≥ 100 × targets for ≤ 1% imbalance at 650).
pub const TABLE_SIZE: usize = 65_537;

#[derive(Debug)]
pub struct Maglev {
    /// Target index per slot; empty when no target has weight.
    table: Vec<u32>,
    /// Targets in the table (distinct), for bounding the walk.
    members: usize,
}

/// Stable hash (SipHash with fixed keys) of a target's address string.
fn addr_hash(t: &Target, seed: u64) -> u64 {
    let mut h = DefaultHasher::new();
    seed.hash(&mut h);
    t.addr.to_string().hash(&mut h);
    h.finish()
}

impl Maglev {
    pub fn new(targets: &[Target]) -> Self {
        Self::with_size(targets, TABLE_SIZE)
    }

    /// A table of `m` slots (`m` should be prime; a table smaller than the number of
    /// weighted targets leaves some out).
    pub fn with_size(targets: &[Target], m: usize) -> Self {
        let live: Vec<usize> = (0..targets.len())
            .filter(|&i| targets[i].weight > 0)
            .collect();
        if live.is_empty() || m < 2 {
            return Self {
                table: Vec::new(),
                members: 0,
            };
        }
        let mu = m as u64;
        let perm: Vec<(u64, u64)> = live
            .iter()
            .map(|&i| {
                let offset = addr_hash(&targets[i], 0x6d61676c) % mu;
                let skip = addr_hash(&targets[i], 0x65763031) % (mu - 1) + 1;
                (offset, skip)
            })
            .collect();
        let max_w = live
            .iter()
            .map(|&i| u64::from(targets[i].weight))
            .max()
            .unwrap_or(1);
        let mut next = vec![0u64; live.len()];
        let mut credit = vec![0u64; live.len()];
        let mut table = vec![u32::MAX; m];
        let mut filled = 0usize;
        'outer: loop {
            for (k, &i) in live.iter().enumerate() {
                credit[k] += u64::from(targets[i].weight);
                while credit[k] >= max_w {
                    credit[k] -= max_w;
                    let (offset, skip) = perm[k];
                    let slot = loop {
                        let c = ((offset + next[k] * skip) % mu) as usize;
                        next[k] += 1;
                        if table[c] == u32::MAX {
                            break c;
                        }
                    };
                    table[slot] = i as u32;
                    filled += 1;
                    if filled == m {
                        break 'outer;
                    }
                }
            }
        }
        let mut seen = vec![false; targets.len()];
        for &s in &table {
            seen[s as usize] = true;
        }
        let members = seen.iter().filter(|&&s| s).count();
        Self { table, members }
    }
}

impl BackendSelection for Maglev {
    fn select(&self, c: &Candidates<'_>) -> Option<usize> {
        let m = self.table.len();
        if m == 0 {
            return None;
        }
        // no key: any slot, i.e. weighted random
        let key = c.hash.unwrap_or_else(|| XorShift::seeded().below(u64::MAX));
        let start = (key % m as u64) as usize;
        let mut refused: Vec<usize> = Vec::new();
        for step in 0..m {
            let i = self.table[(start + step) % m] as usize;
            if refused.contains(&i) {
                continue;
            }
            if c.admits(i) {
                return Some(i);
            }
            refused.push(i);
            if refused.len() >= self.members {
                return None;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::balance::tests::targets;

    fn owners(sel: &Maglev, t: &[Target], keys: u64) -> Vec<std::net::SocketAddr> {
        (0..keys)
            .map(|k| {
                let h = crate::upstream::hash_key(&k.to_le_bytes());
                t[sel
                    .select(&Candidates::new(t, Some(h), &|_| true))
                    .expect("target")]
                .addr
            })
            .collect()
    }

    #[test]
    fn stable_and_moves_about_one_nth_on_removal() {
        let n = 10;
        let t = targets(&vec![1; n]);
        let a = Maglev::new(&t);
        let before = owners(&a, &t, 20_000);
        assert_eq!(
            before,
            owners(&Maglev::new(&t), &t, 20_000),
            "deterministic"
        );
        let removed = t[3].addr;
        let rest: Vec<Target> = t.iter().filter(|x| x.addr != removed).cloned().collect();
        let after = owners(&Maglev::new(&rest), &rest, 20_000);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count() as f64 / 20_000.0;
        let one_nth = 1.0 / n as f64;
        assert!(
            moved > 0.5 * one_nth && moved < 1.5 * one_nth,
            "moved {moved}"
        );
        // keys of the removed target all moved; others mostly stayed
        assert!(after.iter().all(|a| *a != removed));
    }

    #[test]
    fn weights_shape_the_table_and_ineligible_walks_on() {
        let t = targets(&[1, 3, 0]);
        let sel = Maglev::with_size(&t, 10_007);
        let share1 = sel.table.iter().filter(|&&i| i == 1).count() as f64 / 10_007.0;
        assert!((share1 - 0.75).abs() < 0.01, "{share1}");
        assert!(sel.table.iter().all(|&i| i != 2));
        for k in 0..500u64 {
            assert_eq!(
                sel.select(&Candidates::new(&t, Some(k), &|i| i != 1)),
                Some(0)
            );
        }
        assert_eq!(sel.select(&Candidates::new(&t, Some(7), &|_| false)), None);
    }
}
