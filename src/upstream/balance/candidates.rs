//! What a selector chooses among ([`Candidates`]): the pool's targets, which of them a
//! request may use now, and its hash key.

use crate::upstream::Target;

/// The targets a selector chooses among for one request: the set the selector was built
/// for, the request's consistent-hashing key (when the pool hashes), and which targets
/// the request may use now (available, not tried yet...). A target with weight 0
/// (draining) is never a candidate.
pub struct Candidates<'a> {
    /// The pool's targets, in the order the selector was built for.
    pub targets: &'a [Target],
    /// The request's consistent-hashing key.
    pub hash: Option<u64>,
    eligible: &'a dyn Fn(usize) -> bool,
}

fn any(_: usize) -> bool {
    true
}

impl<'a> Candidates<'a> {
    /// `targets`, of which those with weight > 0 for which `eligible(i)` is true may be
    /// chosen.
    pub fn new(
        targets: &'a [Target],
        hash: Option<u64>,
        eligible: &'a dyn Fn(usize) -> bool,
    ) -> Self {
        Candidates {
            targets,
            hash,
            eligible,
        }
    }

    /// Every target with weight > 0, without a hash key.
    pub fn all(targets: &'a [Target]) -> Self {
        Candidates::new(targets, None, &any)
    }

    /// Whether target `i` may be chosen (weight > 0 and eligible).
    pub fn admits(&self, i: usize) -> bool {
        self.targets.get(i).is_some_and(|t| t.weight > 0) && (self.eligible)(i)
    }

    /// The targets that may be chosen, with their index.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &'a Target)> + '_ {
        self.targets
            .iter()
            .enumerate()
            .filter(|&(i, t)| t.weight > 0 && (self.eligible)(i))
    }
}
