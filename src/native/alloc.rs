//! The native programs' allocator: mimalloc, through its plain `malloc` path whenever the
//! alignment asked for is at most a word, which every block of that path has. The simulation
//! allocates millions of small, short-lived buffers; the `mimalloc` crate's own allocator sends
//! each of them through `mi_malloc_aligned`, which takes up to twice as many instructions per
//! call.
//!
//! Sound as long as mimalloc is built without its `debug` features: those may build it with
//! guarded blocks, which its plain path can place off even a word's alignment.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment every block `mi_malloc` returns has, whatever its size: a word (8 octets on
/// 64-bit targets). Blocks larger than a word are aligned to 16 there, but a layout asking for
/// 16 takes the aligned path all the same; few do.
const MALLOC_ALIGNMENT: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator (see the module).
pub struct Mimalloc;

// SAFETY: every call is forwarded to mimalloc, which returns blocks of at least the size asked
// for, or null, aligned to `MALLOC_ALIGNMENT` on the plain path and to the layout's alignment
// on the aligned one. A block is reallocated with the alignment it was allocated with (the
// `GlobalAlloc` contract), so by the same path; both reallocations keep the contents and, when
// they fail, leave the block as it was. `mi_free` releases blocks of either path. The callers
// guarantee that pointers given back came from this allocator. mimalloc's C code does not
// unwind.
unsafe impl GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        let block = unsafe {
            if layout.align() <= MALLOC_ALIGNMENT {
                libmimalloc_sys::mi_malloc(layout.size())
            } else {
                libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align())
            }
        };
        debug_assert!((block as usize).is_multiple_of(layout.align()));
        block.cast()
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        let block = unsafe {
            if layout.align() <= MALLOC_ALIGNMENT {
                libmimalloc_sys::mi_zalloc(layout.size())
            } else {
                libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align())
            }
        };
        debug_assert!((block as usize).is_multiple_of(layout.align()));
        block.cast()
    }

    unsafe fn dealloc(&self, pointer: *mut u8, _layout: Layout) {
        // SAFETY: see the impl.
        unsafe { libmimalloc_sys::mi_free(pointer.cast::<c_void>()) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see the impl.
        let block = unsafe {
            if layout.align() <= MALLOC_ALIGNMENT {
                libmimalloc_sys::mi_realloc(pointer.cast::<c_void>(), new_size)
            } else {
                libmimalloc_sys::mi_realloc_aligned(
                    pointer.cast::<c_void>(),
                    new_size,
                    layout.align(),
                )
            }
        };
        debug_assert!((block as usize).is_multiple_of(layout.align()));
        block.cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_and_contents_asked_for() {
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 2, 7, 16, 24, 100, 5000, 300_000] {
                let layout = Layout::from_size_align(size, align).expect("a valid layout");
                // SAFETY: the layout has a non-zero size; every block is freed with its layout.
                unsafe {
                    let block = Mimalloc.alloc_zeroed(layout);
                    assert!(!block.is_null());
                    assert_eq!(block as usize % align, 0, "size {size}, align {align}");
                    assert!((0..size).all(|i| *block.add(i) == 0));
                    block.write_bytes(0xa5, size);
                    let grown = Mimalloc.realloc(block, layout, size * 2);
                    assert!(!grown.is_null());
                    assert_eq!(grown as usize % align, 0, "grown {size}, align {align}");
                    assert!((0..size).all(|i| *grown.add(i) == 0xa5));
                    Mimalloc.dealloc(grown, Layout::from_size_align(size * 2, align).unwrap());
                    let plain = Mimalloc.alloc(layout);
                    assert!(!plain.is_null());
                    assert_eq!(plain as usize % align, 0, "plain {size}, align {align}");
                    Mimalloc.dealloc(plain, layout);
                }
            }
        }
    }
}
