//! The process allocator: mimalloc, with freed memory kept for reuse instead of handed back to
//! the kernel.
//!
//! glibc's allocator spent a tenth of the stateful benchmark in `malloc`; mimalloc's
//! thread-local free lists cut that (see docs/benchmarks.md). By default mimalloc also *purges*
//! memory that has stayed free for a while (1 s; `madvise`), and the
//! stream threads' batch-sized buffers come and go in bursts, so the next batch page-faulted
//! the memory in again and the kernel zeroed it. Keeping freed memory (purge delay -1) cut the
//! saga benchmark's page faults from 23,000 to 650 per run, for about 7% more orders/s and about
//! 55 MiB more resident memory at its peak. `MIMALLOC_PURGE_DELAY` in the environment still
//! decides when it is set (1000 restores mimalloc's default).

// The one exception to the workspace's `unsafe_code = "forbid"` (see this crate's Cargo.toml):
// two calls into mimalloc's C API, which the `mimalloc` crate links but does not wrap.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_long};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (include/mimalloc.h).
const MI_OPTION_PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    fn mi_option_set_default(option: c_int, value: c_long);
    #[cfg(test)]
    fn mi_option_set(option: c_int, value: c_long);
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
}

/// Keeps freed memory for reuse, unless the purge delay was given explicitly: mimalloc's
/// `set_default` leaves alone a value it read from its environment variables (in any of their
/// spellings). Called first thing in `main`.
pub fn keep_freed_memory() {
    // SAFETY: mi_option_set_default writes a long in mimalloc's option table; the option index
    // is in range for the linked mimalloc v3.
    unsafe { mi_option_set_default(MI_OPTION_PURGE_DELAY, -1) };
}

/// The purge delay mimalloc uses now, in milliseconds (-1: never).
#[cfg(test)]
fn purge_delay_ms() -> c_long {
    // SAFETY: reads mimalloc's option table; the index is in range.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_is_kept_unless_the_delay_was_set_explicitly() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // The linked mimalloc's default purge delay (src/options.c): proves the option
            // index is the right one.
            assert_eq!(
                purge_delay_ms(),
                1000,
                "option {MI_OPTION_PURGE_DELAY} is not the purge delay"
            );
            keep_freed_memory();
            assert_eq!(purge_delay_ms(), -1);
        }
        // A value set explicitly (as from the environment) wins.
        // SAFETY: as in keep_freed_memory.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
        keep_freed_memory();
        assert_eq!(purge_delay_ms(), 10, "an explicit value is left alone");
        // SAFETY: as above; back to what the binary runs with.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}
