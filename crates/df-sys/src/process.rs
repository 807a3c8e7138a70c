//! The few process controls a launcher of ranks needs and `std` does not have: catching a
//! termination signal (SIGTERM, SIGINT, SIGHUP) so that it can be forwarded to the ranks,
//! sending a signal to a child, and making a child die with its launcher
//! (`PR_SET_PDEATHSIG`), so that no rank is left running as an orphan holding a run's lock.
//!
//! Linux only; elsewhere the calls report that they are unsupported.

use std::sync::atomic::{AtomicI32, Ordering};

/// SIGHUP.
pub const SIGHUP: i32 = 1;
/// SIGINT (Ctrl-C).
pub const SIGINT: i32 = 2;
/// SIGKILL.
pub const SIGKILL: i32 = 9;
/// SIGTERM.
pub const SIGTERM: i32 = 15;

/// The last termination signal caught, 0 for none.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::{c_int, c_ulong};

    /// `sighandler_t`: a handler's address, or SIG_DFL (0) / SIG_IGN (1) / SIG_ERR (-1).
    pub(super) type Handler = usize;
    pub(super) const SIG_ERR: Handler = usize::MAX;
    pub(super) const PR_SET_PDEATHSIG: c_int = 1;

    extern "C" {
        pub(super) fn signal(signum: c_int, handler: Handler) -> Handler;
        pub(super) fn kill(pid: c_int, sig: c_int) -> c_int;
        pub(super) fn prctl(option: c_int, arg2: c_ulong, ...) -> c_int;
        pub(super) fn getppid() -> c_int;
    }
}

#[cfg(target_os = "linux")]
extern "C" fn on_signal(sig: std::ffi::c_int) {
    // Async-signal-safe: one atomic store, nothing else.
    CAUGHT.store(sig, Ordering::SeqCst);
}

/// Catches SIGTERM, SIGINT and SIGHUP for the whole process from now on: instead of
/// ending it, each is recorded for [`caught_signal`] to report. For a launcher, which then
/// forwards the signal to its children and waits for them.
///
/// # Errors
/// [`std::io::Error`] when a handler cannot be installed, or `Unsupported` off Linux.
pub fn catch_termination_signals() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            let handler: extern "C" fn(std::ffi::c_int) = on_signal;
            // SAFETY: `on_signal` is an `extern "C" fn(c_int)` that only stores into an
            // atomic, which is async-signal-safe; glibc's `signal` installs it with BSD
            // semantics (SA_RESTART, not reset after delivery). The address passed is a
            // valid function pointer for the whole program's life.
            let previous = unsafe { sys::signal(sig, handler as sys::Handler) };
            if previous == sys::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// The termination signal caught since [`catch_termination_signals`], if any.
pub fn caught_signal() -> Option<i32> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Sends `sig` to the process `pid` (a child this process started).
///
/// # Errors
/// The OS error (no such process, not permitted), or `Unsupported` off Linux.
pub fn send_signal(pid: u32, sig: i32) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let pid = i32::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
        if pid <= 0 {
            return Err(std::io::Error::other("not a single process id"));
        }
        // SAFETY: kill(2) takes two integers and touches no memory of ours; a positive pid
        // names one process (never a group or every process).
        if unsafe { sys::kill(pid, sig) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pid, sig);
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

/// Makes the kernel send SIGTERM to this process when the thread that started it ends
/// (`PR_SET_PDEATHSIG`), and checks that its parent is still `launcher`: if the launcher
/// already died before this call, the signal would never come, so that is an error.
///
/// # Errors
/// `NotFound` when the parent is no longer `launcher`; the OS error of `prctl`;
/// `Unsupported` off Linux.
pub fn die_with_parent(launcher: u32) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_PDEATHSIG, sig) takes integers only and changes this
        // process's own attribute; the variadic arguments are passed as c_ulong, as the
        // kernel reads them.
        let set = unsafe {
            sys::prctl(
                sys::PR_SET_PDEATHSIG,
                SIGTERM as std::ffi::c_ulong,
                0 as std::ffi::c_ulong,
                0 as std::ffi::c_ulong,
                0 as std::ffi::c_ulong,
            )
        };
        if set != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: getppid(2) takes nothing and cannot fail.
        let parent = unsafe { sys::getppid() };
        if u32::try_from(parent).ok() != Some(launcher) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the launcher (pid {launcher}) is gone; this process's parent is {parent}"),
            ));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = launcher;
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}
