//! [`Lent`]: a request part lent to an instance's store for one call.
//!
//! The store's data must be `'static`, so it cannot hold the caller's `&mut`
//! borrows. [`crate::wasm::vm`] keeps the borrow for the whole call and stores a
//! pointer to it here, set just before it enters the filter and cleared just after
//! (every entry into a filter goes through `Vm::run`, which sets or clears every part:
//! a part left over by a call that unwound is never read). Moving a request head in
//! and out instead (a `mem::swap` of some 300 bytes, twice per part per call) cost a
//! filter about 1.8k instructions per request.
//!
//! The `unsafe` of the wasm host lives here alone.

use std::ptr::NonNull;

/// A pointer to a value the caller lends for the call running now (`None` outside it,
/// or when the call has no such part), and whether it was lent mutably.
pub struct Lent<T>(Option<NonNull<T>>, bool);

// SAFETY: a `Lent` is only set while the thread that lent the value is inside the call
// (it holds the `&mut` borrow, and the store's slot lock, for the whole call) and is
// cleared before that borrow ends, so the value is only reached from that thread,
// through the store, while it is lent. The store moves between threads only between
// calls, when every `Lent` is `None`.
unsafe impl<T: Send> Send for Lent<T> {}
// SAFETY: as above; shared access goes through `&Lent`, giving `&T`.
unsafe impl<T: Sync> Sync for Lent<T> {}

impl<T> Default for Lent<T> {
    fn default() -> Self {
        Self(None, false)
    }
}

impl<T> Lent<T> {
    /// Lends `v` (or nothing) for the call about to run.
    pub fn set(&mut self, v: Option<&mut T>) {
        self.0 = v.map(NonNull::from);
        self.1 = true;
    }

    /// Lends `v` read-only: [`Lent::get_mut`] gives nothing.
    pub fn set_shared(&mut self, v: &T) {
        self.0 = Some(NonNull::from(v));
        self.1 = false;
    }

    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// The lent value.
    pub fn get(&self) -> Option<&T> {
        // SAFETY: set from a live `&mut T` whose borrow outlasts the call (see the type's
        // docs); the result's lifetime is bound to `&self`, within the call.
        self.0.map(|p| unsafe { &*p.as_ptr() })
    }

    /// The lent value, mutably (`None` when it was lent read-only).
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if !self.1 {
            return None;
        }
        // SAFETY: as `get`, and the pointer came from a `&mut T` (`set`); `&mut self`
        // makes this the only access through the store, and the lender does not touch
        // the value while the call runs.
        self.0.map(|p| unsafe { &mut *p.as_ptr() })
    }
}
