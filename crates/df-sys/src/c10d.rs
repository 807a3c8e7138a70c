//! libtorch's c10d engine: the `TCPStore` rendezvous and `ProcessGroupGloo` (and, with the
//! `nccl` feature, `ProcessGroupNCCL`) that `torch.distributed` and DDP run on, bound as
//! one safe type, [`Group`]. `df-dist` builds the user-facing API (settings from the
//! environment, averaging, buckets) on top.
//!
//! Each collective is synchronous: it is enqueued on the group and waited for; Gloo's
//! operations fail after the group's timeout (a peer gone, a peer that never arrives),
//! and the wait itself is bounded at twice that. Errors name the rank and the operation.
//!
//! Several groups may live in one process, each driven from its own thread (ranks as
//! threads in tests, one group per worker): the shim hands collectives to libtorch one at
//! a time, because libtorch 2.11's process-wide flight recorder is not safe when two
//! groups enqueue at once (see `shim/c10d.cpp`); they still run and are waited for
//! concurrently.

use std::ffi::{c_int, CString};
use std::ptr::NonNull;
use std::time::Duration;

use tch::{Device, Tensor};

use crate::{check, Error, Result};

/// An opaque group of the shim.
#[repr(C)]
pub(crate) struct RawGroup {
    _private: [u8; 0],
}

mod ffi {
    use std::ffi::{c_char, c_int};

    use super::RawGroup;

    extern "C" {
        #[allow(clippy::too_many_arguments)]
        pub fn df_pg_gloo_new(
            master_addr: *const c_char,
            port: c_int,
            rank: c_int,
            world_size: c_int,
            timeout_ms: i64,
            device_kind: c_int,
            device: *const c_char,
            threads: c_int,
            out: *mut *mut RawGroup,
        ) -> *mut c_char;
        #[cfg(feature = "nccl")]
        pub fn df_pg_nccl_new(
            master_addr: *const c_char,
            port: c_int,
            rank: c_int,
            world_size: c_int,
            timeout_ms: i64,
            device: c_int,
            out: *mut *mut RawGroup,
        ) -> *mut c_char;
        pub fn df_pg_free(group: *mut RawGroup);
        pub fn df_pg_allreduce(
            group: *mut RawGroup,
            tensor: *mut torch_sys::C_tensor,
            op: c_int,
        ) -> *mut c_char;
        pub fn df_pg_broadcast(
            group: *mut RawGroup,
            tensor: *mut torch_sys::C_tensor,
            root: c_int,
        ) -> *mut c_char;
        pub fn df_pg_allgather(
            group: *mut RawGroup,
            input: *mut torch_sys::C_tensor,
            outputs: *mut *mut torch_sys::C_tensor,
            n_outputs: c_int,
        ) -> *mut c_char;
        pub fn df_pg_barrier(group: *mut RawGroup) -> *mut c_char;
    }
}

/// Which network device Gloo binds to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GlooDevice {
    /// The address this machine's host name resolves to, or loopback when it resolves to
    /// none (libtorch's `createDefaultDevice`, what `torch.distributed` uses).
    #[default]
    Default,
    /// The address of a host name (`127.0.0.1` for a single machine).
    Hostname(String),
    /// A network interface by name (`eth0`; what `GLOO_SOCKET_IFNAME` selects).
    Interface(String),
}

/// Everything a Gloo group needs; nothing is read from the environment here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlooSettings {
    /// Host of rank 0's `TCPStore` (the rendezvous).
    pub master_addr: String,
    /// Its port (rank 0 listens there).
    pub master_port: u16,
    /// This process's rank, `0..world_size`.
    pub rank: usize,
    /// How many processes.
    pub world_size: usize,
    /// How long the rendezvous and each collective may take before failing.
    pub timeout: Duration,
    /// The network device.
    pub device: GlooDevice,
    /// Gloo's worker threads (libtorch's default is 2).
    pub threads: usize,
}

/// A reduction of [`Group::all_reduce`]. (Gloo has no average: sum, then divide.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Element-wise sum.
    Sum,
    /// Element-wise maximum.
    Max,
    /// Element-wise minimum.
    Min,
    /// Element-wise product.
    Product,
}

impl ReduceOp {
    fn code(self) -> c_int {
        match self {
            Self::Sum => 0,
            Self::Max => 1,
            Self::Min => 2,
            Self::Product => 3,
        }
    }
}

/// A c10d process group: Gloo (CPU tensors) or NCCL (CUDA tensors, the `nccl` feature).
/// Dropping it closes it.
///
/// Not `Send`/`Sync`: one thread drives a group, as one process drives a rank.
#[derive(Debug)]
pub struct Group {
    raw: NonNull<RawGroup>,
    rank: usize,
    world_size: usize,
    /// The device its tensors must be on: the CPU (Gloo) or the rank's GPU (NCCL).
    device: Device,
}

fn invalid(option: &'static str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        option,
        reason: reason.into(),
    }
}

fn small_int(option: &'static str, value: usize) -> Result<c_int> {
    c_int::try_from(value).map_err(|_| invalid(option, format!("{value} is too large")))
}

fn check_world(rank: usize, world_size: usize, timeout: Duration) -> Result<()> {
    if world_size == 0 {
        return Err(invalid("world_size", "must be at least 1"));
    }
    if rank >= world_size {
        return Err(invalid(
            "rank",
            format!("{rank} is outside a world of {world_size}"),
        ));
    }
    if timeout.is_zero() {
        return Err(invalid("timeout", "must be positive"));
    }
    Ok(())
}

impl Group {
    /// Joins (rank 0: opens) the rendezvous at `master_addr:master_port` and connects the
    /// `world_size` ranks: returns when all have joined, or fails after the timeout.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a rank outside the world, a zero world or timeout, a host
    /// name with a NUL byte; [`Error::Torch`] naming the rank when the rendezvous or the
    /// connection fails (address in use, peers missing past the timeout, no such
    /// interface).
    pub fn gloo(settings: &GlooSettings) -> Result<Self> {
        let s = settings;
        check_world(s.rank, s.world_size, s.timeout)?;
        let timeout_ms =
            i64::try_from(s.timeout.as_millis()).map_err(|_| invalid("timeout", "is too long"))?;
        let addr = CString::new(s.master_addr.as_str())
            .map_err(|_| invalid("master_addr", "contains a NUL byte"))?;
        let (kind, device) = match &s.device {
            GlooDevice::Default => (0, String::new()),
            GlooDevice::Hostname(h) => (1, h.clone()),
            GlooDevice::Interface(i) => (2, i.clone()),
        };
        let device = CString::new(device).map_err(|_| invalid("device", "contains a NUL byte"))?;
        let rank = small_int("rank", s.rank)?;
        let world = small_int("world_size", s.world_size)?;
        let threads = small_int("threads", s.threads)?;
        let mut raw: *mut RawGroup = std::ptr::null_mut();
        // SAFETY: the strings are NUL-terminated and live across the call; the shim
        // writes one pointer through `&mut raw` (null on failure) and returns null or an
        // owned message, which `check` frees.
        let message = unsafe {
            ffi::df_pg_gloo_new(
                addr.as_ptr(),
                c_int::from(s.master_port),
                rank,
                world,
                timeout_ms,
                kind,
                device.as_ptr(),
                threads,
                &mut raw,
            )
        };
        check(
            || {
                format!(
                    "rank {} of {}: joining the group at {}:{}",
                    s.rank, s.world_size, s.master_addr, s.master_port
                )
            },
            message,
        )?;
        let raw = NonNull::new(raw).ok_or_else(|| Error::Torch {
            operation: format!("rank {}: joining the group", s.rank),
            message: "the shim returned no group".into(),
        })?;
        Ok(Self {
            raw,
            rank: s.rank,
            world_size: s.world_size,
            device: Device::Cpu,
        })
    }

    /// Joins the rendezvous at `master_addr:master_port` as rank `rank` of `world_size`
    /// with libtorch's `ProcessGroupNCCL` on `cuda:device` (the rank's `LOCAL_RANK`). NCCL
    /// refuses two ranks on one GPU. Its watchdog ends the process when a collective
    /// exceeds the timeout (by design, as in PyTorch): what a user sees then is NCCL's
    /// message on stderr and the process exiting, not an error here.
    ///
    /// # Errors
    /// As [`Group::gloo`]; libtorch's error when there is no such GPU.
    #[cfg(feature = "nccl")]
    pub fn nccl(
        master_addr: &str,
        master_port: u16,
        rank: usize,
        world_size: usize,
        timeout: Duration,
        device: usize,
    ) -> Result<Self> {
        check_world(rank, world_size, timeout)?;
        let timeout_ms =
            i64::try_from(timeout.as_millis()).map_err(|_| invalid("timeout", "is too long"))?;
        let addr =
            CString::new(master_addr).map_err(|_| invalid("master_addr", "contains a NUL byte"))?;
        let (r, w, d) = (
            small_int("rank", rank)?,
            small_int("world_size", world_size)?,
            small_int("device", device)?,
        );
        let mut raw: *mut RawGroup = std::ptr::null_mut();
        // SAFETY: as in `gloo`: a NUL-terminated string alive across the call, one
        // pointer written through `&mut raw`, an owned message or null returned.
        let message = unsafe {
            ffi::df_pg_nccl_new(
                addr.as_ptr(),
                c_int::from(master_port),
                r,
                w,
                timeout_ms,
                d,
                &mut raw,
            )
        };
        check(
            || {
                format!("rank {rank} of {world_size}: joining the NCCL group at {master_addr}:{master_port}")
            },
            message,
        )?;
        let raw = NonNull::new(raw).ok_or_else(|| Error::Torch {
            operation: format!("rank {rank}: joining the NCCL group"),
            message: "the shim returned no group".into(),
        })?;
        Ok(Self {
            raw,
            rank,
            world_size,
            device: Device::Cuda(device),
        })
    }

    /// The device the group's tensors must be on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    fn operation(&self, what: &str) -> impl FnOnce() -> String + '_ {
        let what = what.to_string();
        move || format!("rank {} of {}: {what}", self.rank, self.world_size)
    }

    /// Refuses what the backend would refuse less clearly: an undefined tensor, one on
    /// another device than the group's, a non-contiguous one.
    fn check_tensor(&self, what: &str, t: &Tensor) -> Result<()> {
        let fail = |reason: String| Error::Torch {
            operation: format!("rank {} of {}: {what}", self.rank, self.world_size),
            message: reason,
        };
        if !t.defined() {
            return Err(fail("the tensor is undefined".into()));
        }
        if t.device() != self.device {
            return Err(fail(match self.device {
                Device::Cpu => format!(
                    "the Gloo group takes CPU tensors, this one is on {:?}",
                    t.device()
                ),
                d => format!(
                    "the NCCL group takes tensors on {d:?}, this one is on {:?}",
                    t.device()
                ),
            }));
        }
        if !t.is_contiguous() {
            return Err(fail("the tensor is not contiguous".into()));
        }
        Ok(())
    }

    /// Reduces `tensor` in place across the ranks: every rank ends with the result.
    ///
    /// # Errors
    /// [`Error::Torch`] naming the rank and operation: a peer gone or late past the
    /// timeout, tensors of different sizes across ranks, a tensor Gloo cannot take.
    pub fn all_reduce(&self, tensor: &mut Tensor, op: ReduceOp) -> Result<()> {
        self.check_tensor("all_reduce", tensor)?;
        // SAFETY: `self.raw` is a live group (freed only in Drop); the tensor pointer is
        // tch's `at::Tensor*`, valid for the call and written in place by the shim.
        let message =
            unsafe { ffi::df_pg_allreduce(self.raw.as_ptr(), tensor.as_mut_ptr(), op.code()) };
        check(self.operation("all_reduce"), message)
    }

    /// Copies rank `root`'s `tensor` into every rank's `tensor`, in place.
    ///
    /// # Errors
    /// As [`Group::all_reduce`]; [`Error::Invalid`] for a root outside the world.
    pub fn broadcast(&self, tensor: &mut Tensor, root: usize) -> Result<()> {
        if root >= self.world_size {
            return Err(invalid(
                "root",
                format!("{root} is outside a world of {}", self.world_size),
            ));
        }
        self.check_tensor("broadcast", tensor)?;
        let root = small_int("root", root)?;
        // SAFETY: as in `all_reduce`.
        let message = unsafe { ffi::df_pg_broadcast(self.raw.as_ptr(), tensor.as_mut_ptr(), root) };
        check(self.operation("broadcast"), message)
    }

    /// Every rank's `input` (same shape and kind on every rank), in rank order.
    ///
    /// # Errors
    /// As [`Group::all_reduce`].
    pub fn all_gather(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        self.check_tensor("all_gather", input)?;
        let mut input = input.shallow_clone();
        let mut outputs: Vec<Tensor> = (0..self.world_size).map(|_| input.empty_like()).collect();
        let mut pointers: Vec<*mut torch_sys::C_tensor> =
            outputs.iter_mut().map(|t| t.as_mut_ptr()).collect();
        let n = small_int("world_size", pointers.len())?;
        // SAFETY: as in `all_reduce`; `pointers` holds `world_size` valid tensor pointers
        // (owned by `outputs`, alive across the call), which the shim fills in place.
        let message = unsafe {
            ffi::df_pg_allgather(
                self.raw.as_ptr(),
                input.as_mut_ptr(),
                pointers.as_mut_ptr(),
                n,
            )
        };
        check(self.operation("all_gather"), message)?;
        Ok(outputs)
    }

    /// Waits until every rank has reached this call.
    ///
    /// # Errors
    /// As [`Group::all_reduce`].
    pub fn barrier(&self) -> Result<()> {
        // SAFETY: `self.raw` is a live group.
        let message = unsafe { ffi::df_pg_barrier(self.raw.as_ptr()) };
        check(self.operation("barrier"), message)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `df_pg_gloo_new`, is freed exactly once, here, and is
        // not used afterwards.
        unsafe { ffi::df_pg_free(self.raw.as_ptr()) }
    }
}
