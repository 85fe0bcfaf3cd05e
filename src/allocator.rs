//! The process allocator: mimalloc, with its default purging of freed memory.
//!
//! glibc's allocator spent a tenth of the stateful benchmark in `malloc`; mimalloc's
//! thread-local free lists cut that (see docs/benchmarks.md).
//!
//! mimalloc hands memory that stayed free for a second back to the kernel (its purge delay).
//! The fifth session turned that off (purge delay -1) for 7% more orders/s in short saga
//! runs, which page-faulted less. Long runs showed the price: memtables are allocated by the
//! stream threads and freed by fjall's flush thread, and with nothing ever purged the resident
//! memory grew by about 100 MiB/s once the memtables started turning over (3.9 GiB after 56 s
//! at 5,000 orders/s), where the default holds it at 230 – 460 MiB (peak 544 MiB). Since
//! record batches the default costs nothing measurable in the short runs either
//! (docs/benchmarks.md).
//!
//! Built with mimalloc's `no_thp` feature: it no longer asks the kernel for transparent huge
//! pages (`MADV_HUGEPAGE`). With them, every page fault after a purge zeroed a whole 2 MiB
//! page: 18% of the saga benchmark's CPU was the kernel's `clear_page_erms`, and without them
//! system time fell by a third (docs/benchmarks.md). On a machine whose THP setting is
//! `always` rather than `madvise`, `MIMALLOC_ALLOW_THP=0` turns them off for the process.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
