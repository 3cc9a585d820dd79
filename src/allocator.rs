//! The process's allocator: mimalloc, asked the way its C API is fastest.
//!
//! The `mimalloc` crate's `GlobalAlloc` sends every allocation to `mi_malloc_aligned`,
//! whatever its alignment. mimalloc's aligned entry has a fast path only for a small
//! block whose next free slot happens to be aligned; every other request (any block
//! over 1 KiB, a page whose free list must be refilled) takes its generic aligned
//! path, which over-allocates by the alignment and costs ~190 instructions. In
//! callgrind that was 23 of the ~75 allocations of a proxied request and ~9% of the
//! serving thread's instructions. `mi_malloc` returns blocks aligned to 16 bytes
//! (`MI_MAX_ALIGN_SIZE`), so only layouts that need more go to the aligned entry,
//! as the system allocator's `GlobalAlloc` does with `malloc` and `posix_memalign`.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use libmimalloc_sys as mi;

/// What `mi_malloc` guarantees for any size (mimalloc's `MI_MAX_ALIGN_SIZE`).
const MALLOC_ALIGN: usize = 16;

/// mimalloc as the global allocator (see the module's doc).
pub struct Mimalloc;

/// Whether `mi_malloc` alone satisfies `layout`: the alignment is within what every
/// block has, and not above the size (a 1-byte block of alignment 16 could share a
/// smaller size class's alignment).
#[inline]
fn plain(layout: &Layout) -> bool {
    layout.align() <= MALLOC_ALIGN && layout.align() <= layout.size()
}

// SAFETY: every method forwards to mimalloc's C API, which returns null on failure
// (as `GlobalAlloc` requires) and memory aligned as asked: `mi_malloc`, `mi_zalloc`
// and `mi_realloc` to `MALLOC_ALIGN`, used only where `plain` holds, the `_aligned`
// entries otherwise. `mi_free` frees memory from any of them.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(&layout) {
            mi::mi_malloc(layout.size()).cast()
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(&layout) {
            mi::mi_zalloc(layout.size()).cast()
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN && layout.align() <= new_size {
            mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_asked_for() {
        let a = Mimalloc;
        for align in [1usize, 2, 8, 16, 32, 64, 128, 4096] {
            for size in [1usize, 7, 16, 100, 1024, 1025, 5000, 70_000, 1 << 20] {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: a non-zero layout; the block is written within its size,
                // grown, checked and freed once.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    p.write_bytes(0xAB, size);
                    let q = a.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "realloc size {size} align {align}");
                    assert_eq!(*q.add(size - 1), 0xAB);
                    a.dealloc(q, Layout::from_size_align(size * 3, align).expect("layout"));
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
