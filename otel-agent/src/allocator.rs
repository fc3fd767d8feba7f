//! Settings for mimalloc, the binary's global allocator (see `main.rs`).
//!
//! By default mimalloc keeps freed memory resident: it purges freed pages only
//! after a delay (1 s) and only when the freeing thread allocates again, and on
//! Linux it commits its arenas eagerly, so a purge merely marks pages
//! `MADV_FREE` and they stay in the RSS until the machine runs short. An agent
//! on every node should give memory back at once: the start-up burst (the
//! kernel's BTF, the eBPF object) and every load spike. The cost is agent CPU
//! (pages freed and faulted in again): BENCHMARKS.md, "Footprint" and its
//! measured alternatives; with `MIMALLOC_PURGE_DELAY=1000` in the environment
//! the trade goes the other way.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::{c_void, CStr};
use std::os::raw::c_long;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_option_set, mi_option_t, mi_realloc,
    mi_realloc_aligned, mi_zalloc, mi_zalloc_aligned,
};

/// The global allocator: mimalloc, through `mi_malloc` for the alignments
/// all its blocks have and `mi_malloc_aligned` only beyond them. The
/// `mimalloc` crate's allocator calls `mi_malloc_aligned` for every
/// allocation, whose fast path needs a small power-of-two block and which
/// over-allocates other sizes: ~95 instructions per allocation and free
/// (bench/instructions.sh, callgrind; ~40 allocations per exchange).
pub struct MiMalloc;

/// The alignment of every block of at least this size `mi_malloc` returns:
/// `MI_MAX_ALIGN_SIZE`, `sizeof(max_align_t)` (16 bytes on x86_64 and
/// aarch64). A page's first block is aligned to it and the bins past one
/// word are multiples of it; a block of one word (8 bytes) is aligned to
/// its size only.
const MALLOC_ALIGN: usize = 16;

/// Whether `mi_malloc` of `size` bytes is aligned to `align` (a power of
/// two): up to `MALLOC_ALIGN`, when the size is at least the alignment.
#[inline]
fn malloc_aligns(size: usize, align: usize) -> bool {
    align <= MALLOC_ALIGN && align <= size
}

// SAFETY: every method hands the layout's size (and, past `MALLOC_ALIGN`,
// its alignment) to the matching mimalloc function, which returns memory of
// at least that size and alignment or null, as `GlobalAlloc` requires;
// `mi_malloc` is used only where its blocks are aligned as asked
// (`malloc_aligns`). Memory from any of them
// is freed by `mi_free` and resized by `mi_realloc*`.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl; a valid layout's alignment is a power of two.
        unsafe {
            if malloc_aligns(layout.size(), layout.align()) {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`, zeroed.
        unsafe {
            if malloc_aligns(layout.size(), layout.align()) {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new
        // block is aligned as `alloc` would align one of `new_size`.
        unsafe {
            if malloc_aligns(new_size, layout.align()) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

/// `mi_option_arena_eager_commit` (`mi_option_e` in mimalloc.h; ids are kept
/// stable across versions, deprecated ones keep their slots).
const ARENA_EAGER_COMMIT: mi_option_t = 4;
/// `mi_option_purge_delay`, in milliseconds (0: purge at once).
const PURGE_DELAY: mi_option_t = 15;

/// Make mimalloc return freed memory to the OS promptly, unless the
/// environment sets these options itself (`MIMALLOC_ARENA_EAGER_COMMIT`,
/// `MIMALLOC_PURGE_DELAY`). Must run before mimalloc initializes (see
/// `main.rs`), so it does not allocate.
pub fn return_memory_promptly() {
    set_unless_in_env(ARENA_EAGER_COMMIT, c"MIMALLOC_ARENA_EAGER_COMMIT", 0);
    set_unless_in_env(PURGE_DELAY, c"MIMALLOC_PURGE_DELAY", 0);
}

fn set_unless_in_env(option: mi_option_t, env: &CStr, value: c_long) {
    // SAFETY: getenv reads the environment without allocating (nothing
    // modifies it this early); mi_option_set is a plain setter of the C
    // library, valid at any time, and the ids are the ones mimalloc.h defines.
    unsafe {
        if libc::getenv(env.as_ptr()).is_null() {
            mi_option_set(option, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use libmimalloc_sys::mi_option_get;

    use super::*;

    /// Every size up to 8 KiB and beyond, at every alignment up to 4 KiB:
    /// blocks aligned as asked, writable over their size, zeroed when asked,
    /// their contents kept when resized.
    #[test]
    fn blocks_have_the_layouts_asked_for() {
        let a = MiMalloc;
        let sizes = (1..=256)
            .chain((257..=8192).step_by(37))
            .chain([65_536, 1 << 20]);
        for size in sizes {
            for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
                let layout = Layout::from_size_align(size, align).expect("a layout");
                // SAFETY: a valid non-zero layout; each block is freed once,
                // with the layout it has.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    p.write_bytes(0xa5, size);
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, layout);
                    let bigger = size * 2 + 40;
                    let r = a.realloc(p, layout, bigger);
                    assert_eq!(r as usize % align, 0, "realloc {size} align {align}");
                    assert!(std::slice::from_raw_parts(r, size)
                        .iter()
                        .all(|&b| b == 0xa5));
                    let bigger = Layout::from_size_align(bigger, align).expect("a layout");
                    let smaller = (size / 3).max(1);
                    let s = a.realloc(r, bigger, smaller);
                    assert_eq!(s as usize % align, 0, "shrink {size} align {align}");
                    assert!(std::slice::from_raw_parts(s, smaller)
                        .iter()
                        .all(|&b| b == 0xa5));
                    a.dealloc(
                        s,
                        Layout::from_size_align(smaller, align).expect("a layout"),
                    );
                }
            }
        }
    }

    /// The current (arena eager commit, purge delay) settings.
    fn settings() -> (c_long, c_long) {
        // SAFETY: plain option getters of the C library.
        unsafe {
            (
                mi_option_get(ARENA_EAGER_COMMIT),
                mi_option_get(PURGE_DELAY),
            )
        }
    }

    #[test]
    fn options_take_effect() {
        return_memory_promptly();
        assert_eq!(settings(), (0, 0));
    }
}
