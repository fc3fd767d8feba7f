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

use std::ffi::CStr;
use std::os::raw::c_long;

use libmimalloc_sys::{mi_option_set, mi_option_t};

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
