//! The native programs' allocator: mimalloc, through its plain `malloc` path whenever that
//! already gives the alignment asked for. The simulation allocates millions of small, short-lived
//! buffers; the `mimalloc` crate's own allocator sends every one of them through
//! `mi_malloc_aligned`, which costs about three times as many instructions per call.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment every block `mi_malloc` returns has, whatever its size: a word. Larger blocks
/// are often aligned to 16 (`MI_MAX_ALIGN_SIZE`), but a block of a few octets is only aligned
/// to 8.
const MALLOC_ALIGNMENT: usize = std::mem::size_of::<usize>();

pub struct Allocator;

// SAFETY: every call is forwarded to mimalloc, which returns blocks of at least the size asked
// for, aligned to `MALLOC_ALIGNMENT` on the plain path and to the layout's alignment on the
// aligned one; `mi_free` releases blocks from either path.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= MALLOC_ALIGNMENT {
                libmimalloc_sys::mi_malloc(layout.size()) as *mut u8
            } else {
                libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= MALLOC_ALIGNMENT {
                libmimalloc_sys::mi_zalloc(layout.size()) as *mut u8
            } else {
                libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, _layout: Layout) {
        // SAFETY: see the impl.
        unsafe { libmimalloc_sys::mi_free(pointer as *mut c_void) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= MALLOC_ALIGNMENT {
                libmimalloc_sys::mi_realloc(pointer as *mut c_void, new_size) as *mut u8
            } else {
                libmimalloc_sys::mi_realloc_aligned(
                    pointer as *mut c_void,
                    new_size,
                    layout.align(),
                ) as *mut u8
            }
        }
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
                    let block = Allocator.alloc_zeroed(layout);
                    assert!(!block.is_null());
                    assert_eq!(block as usize % align, 0, "size {size}, align {align}");
                    assert!((0..size).all(|i| *block.add(i) == 0));
                    block.write_bytes(0xa5, size);
                    let grown = Allocator.realloc(block, layout, size * 2);
                    assert_eq!(grown as usize % align, 0, "grown {size}, align {align}");
                    assert!((0..size).all(|i| *grown.add(i) == 0xa5));
                    Allocator.dealloc(grown, Layout::from_size_align(size * 2, align).unwrap());
                }
            }
        }
    }
}
