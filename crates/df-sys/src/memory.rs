//! The C library allocator's policy for freed memory, where libtorch's CPU tensors live.
//!
//! libtorch allocates every CPU tensor with `posix_memalign` and frees it when the last
//! handle drops; a training step allocates and frees its activations and gradients anew.
//! With glibc's defaults, blocks above the (dynamic, at most 32 MiB) mmap threshold are
//! mapped and unmapped each time, and freed space at the top of a heap beyond the trim
//! threshold is handed back to the kernel: the next step then page-faults the same memory
//! in again, zeroed by the kernel. On the LFW MesoInception4 epoch (`benches/epoch.sh`)
//! that kernel work was about a fifth of the samples under `perf`.
//!
//! [`retain_freed_memory`] tells glibc to keep what is freed (blocks up to 32 MiB from the
//! heaps, no trimming), as PyTorch's CUDA caching allocator keeps device memory: the
//! process's resident size then stays near its peak. [`release_freed_memory`] hands the free pages
//! back (`malloc_trim`), for when the loop is over. Both are process-wide. On a C library
//! other than glibc they do nothing and say so.

/// What [`retain_freed_memory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retain {
    /// The policy is now in effect.
    Applied,
    /// An earlier call applied it.
    AlreadyApplied,
    /// `GLIBC_TUNABLES` sets malloc tunables: the user's settings are left as they are.
    UserTunables,
    /// Not glibc: nothing was changed.
    Unsupported,
}

/// Allocator figures (glibc's `mallinfo2`), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Memory held in the heaps (obtained with `brk`/`sbrk` and arena heaps).
    pub heap: u64,
    /// Free bytes inside the heaps (kept for reuse).
    pub heap_free: u64,
    /// Blocks mapped on their own (`mmap`), one per large allocation alive.
    pub mapped_blocks: u64,
    /// Bytes in those blocks.
    pub mapped: u64,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;
    use std::sync::Mutex;

    use super::{Retain, Stats};

    // <malloc.h>
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    /// glibc's largest accepted mmap threshold on 64-bit (`HEAP_MAX_SIZE / 2`).
    const MMAP_THRESHOLD: c_int = 32 << 20;

    #[repr(C)]
    struct Mallinfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn malloc_trim(pad: usize) -> c_int;
        fn mallinfo2() -> Mallinfo2;
    }

    static APPLIED: Mutex<bool> = Mutex::new(false);

    pub(super) fn retain() -> Retain {
        let mut applied = APPLIED.lock().unwrap_or_else(|e| e.into_inner());
        if *applied {
            return Retain::AlreadyApplied;
        }
        if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.")) {
            return Retain::UserTunables;
        }
        // SAFETY: mallopt takes two integers and only updates glibc's allocator
        // parameters under its own lock; it touches no memory of ours. The mmap threshold
        // at its maximum serves blocks up to 32 MiB from the heaps (larger ones are still
        // mapped on their own); M_TRIM_THRESHOLD = INT_MAX keeps freed heap space instead
        // of trimming it.
        let ok = unsafe {
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && mallopt(M_TRIM_THRESHOLD, c_int::MAX) == 1
        };
        if ok {
            *applied = true;
            Retain::Applied
        } else {
            Retain::Unsupported
        }
    }

    pub(super) fn retained() -> bool {
        *APPLIED.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn release() -> bool {
        // SAFETY: malloc_trim only returns free pages of glibc's own heaps to the kernel
        // (under the arenas' locks); blocks in use are untouched.
        unsafe { malloc_trim(0) == 1 }
    }

    pub(super) fn stats() -> Option<Stats> {
        // SAFETY: mallinfo2 (glibc ≥ 2.33) returns a plain struct of counters by value,
        // read under the arenas' locks; the struct above matches <malloc.h>'s layout.
        let m = unsafe { mallinfo2() };
        Some(Stats {
            heap: m.arena as u64,
            heap_free: m.fordblks as u64,
            mapped_blocks: m.hblks as u64,
            mapped: m.hblkhd as u64,
        })
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    use super::{Retain, Stats};

    pub(super) fn retain() -> Retain {
        Retain::Unsupported
    }

    pub(super) fn retained() -> bool {
        false
    }

    pub(super) fn release() -> bool {
        false
    }

    pub(super) fn stats() -> Option<Stats> {
        None
    }
}

/// Keeps freed memory in the process for reuse (glibc: `mallopt(M_MMAP_THRESHOLD, 32 MiB)`,
/// `mallopt(M_TRIM_THRESHOLD, INT_MAX)`), so that a loop allocating the same tensors step
/// after step stops page-faulting them in. Process-wide and lasting; applied once. Left
/// alone when `GLIBC_TUNABLES` already sets malloc tunables.
pub fn retain_freed_memory() -> Retain {
    glibc::retain()
}

/// Whether [`retain_freed_memory`] has applied the policy in this process.
pub fn retained() -> bool {
    glibc::retained()
}

/// Returns the free pages of the allocator's heaps to the kernel (`malloc_trim(0)`);
/// `true` when some memory was released.
pub fn release_freed_memory() -> bool {
    glibc::release()
}

/// The allocator's figures, or `None` where the C library is not glibc.
pub fn stats() -> Option<Stats> {
    glibc::stats()
}
