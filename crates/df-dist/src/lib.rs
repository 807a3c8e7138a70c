//! df-dist: data-parallel training on libtorch's own distributed engine.
//!
//! The process groups are libtorch's c10d (the `TCPStore` rendezvous and
//! `ProcessGroupGloo` that `torch.distributed` and DDP run on), reached through df-sys's
//! shim; this crate is safe Rust on top: [`DistConfig`] (explicit, or from the variables
//! `torchrun`, Slurm wrappers and Kubernetes' PyTorchJob set), [`ProcessGroup`] (its
//! collectives, with `Mean` for Gloo, which has none, and gathers of uneven lengths), and
//! the pieces of DDP in [`ddp`]: variables broadcast from rank 0, gradients averaged in
//! size-limited buckets.
//!
//! Every failure is an [`Error`] naming the rank and the operation: a peer gone or late
//! past the timeout gives an error after at most the timeout, never a hang.
//!
//! ```no_run
//! # mod deepfake { pub mod dist { pub use df_dist::*; } }
//! use deepfake::dist::{DistConfig, ProcessGroup, Reduce};
//! use tch::Tensor;
//!
//! # fn main() -> Result<(), deepfake::dist::Error> {
//! // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT as torchrun sets them.
//! let config = DistConfig::from_env()?.expect("started by torchrun");
//! let group = ProcessGroup::new(&config)?;
//! let mut t = Tensor::from_slice(&[group.rank() as f32]);
//! group.all_reduce(&mut t, Reduce::Mean)?;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use df_sys::c10d::{GlooDevice, GlooSettings, Group, ReduceOp};
use tch::Tensor;

pub mod ddp;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or invalid (an environment variable, an option).
    #[error("{setting}: {reason}")]
    Config {
        /// The variable or option (`WORLD_SIZE`, `master_port` ...).
        setting: String,
        /// Why.
        reason: String,
    },
    /// A collective or the rendezvous failed (libtorch's message, with the rank and the
    /// operation).
    #[error(transparent)]
    Torch(#[from] df_sys::Error),
    /// A tensor operation around a collective failed.
    #[error("rank {rank}: {operation}: {source}")]
    Tensor {
        /// This process's rank.
        rank: usize,
        /// What was being done.
        operation: String,
        /// libtorch's error.
        source: tch::TchError,
    },
    /// The launcher was asked to stop (SIGTERM, SIGINT, SIGHUP): it forwarded the signal
    /// to its ranks and waited for them.
    #[error("stopped by signal {signal}; the ranks were sent it and have ended")]
    Signalled {
        /// The signal's number.
        signal: i32,
    },
}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

fn config(setting: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Config {
        setting: setting.into(),
        reason: reason.into(),
    }
}

/// The communication backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Gloo: CPU tensors, any machine (TCP).
    #[default]
    Gloo,
    /// NCCL: CUDA tensors (not built in this version: an error says so).
    Nccl,
}

impl Backend {
    /// `gloo` or `nccl`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `backend` for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "gloo" => Ok(Self::Gloo),
            "nccl" => Ok(Self::Nccl),
            other => Err(config(
                "backend",
                format!("`{other}` is not a backend (gloo or nccl)"),
            )),
        }
    }
}

/// The default timeout of the rendezvous and of each collective: torch.distributed's
/// (30 minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The longest timeout accepted (7 days): libtorch holds it in milliseconds in a signed
/// 64-bit count that larger values overflow (`DF_DIST_TIMEOUT=9223372036854` became an
/// instant "timed out").
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Everything a process needs to join a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistConfig {
    /// This process's rank, `0..world_size` (rank 0 hosts the rendezvous and writes files).
    pub rank: usize,
    /// How many processes.
    pub world_size: usize,
    /// This process's rank on its machine (picks `cuda:LOCAL_RANK` on GPUs).
    pub local_rank: usize,
    /// The number of processes on this machine (for intra-op thread counts).
    pub local_world_size: usize,
    /// Host of rank 0.
    pub master_addr: String,
    /// Port of rank 0's rendezvous.
    pub master_port: u16,
    /// The backend.
    pub backend: Backend,
    /// How long the rendezvous and each collective may take.
    pub timeout: Duration,
    /// The network interface Gloo binds to (`GLOO_SOCKET_IFNAME`); `None`: loopback for a
    /// loopback master address, else the address the host name resolves to.
    pub interface: Option<String>,
}

impl DistConfig {
    /// `world_size` processes on this machine over loopback, as `torchrun --standalone`:
    /// rank `rank`, rendezvous on `127.0.0.1:port`.
    pub fn local(rank: usize, world_size: usize, port: u16) -> Self {
        Self {
            rank,
            world_size,
            local_rank: rank,
            local_world_size: world_size,
            master_addr: "127.0.0.1".into(),
            master_port: port,
            backend: Backend::Gloo,
            timeout: DEFAULT_TIMEOUT,
            interface: None,
        }
    }

    /// Sets the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads the variables `torchrun` sets (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
    /// `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`; `GLOO_SOCKET_IFNAME`;
    /// `DF_DIST_TIMEOUT` in seconds; `DF_DIST_BACKEND`, `gloo` or `nccl`): `None` when `WORLD_SIZE` is unset (not a
    /// distributed launch).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable that is missing or not a number.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`DistConfig::from_env`] over any source of variables.
    ///
    /// # Errors
    /// As [`DistConfig::from_env`].
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(world) = var("WORLD_SIZE") else {
            return Ok(None);
        };
        let number = |name: &str, text: &str| -> Result<usize> {
            text.trim()
                .parse::<usize>()
                .map_err(|_| config(name, format!("`{text}` is not a non-negative whole number")))
        };
        let required = |name: &str| {
            var(name).ok_or_else(|| {
                config(
                    name,
                    "is not set (WORLD_SIZE is: a distributed launch sets both)",
                )
            })
        };
        let world_size = number("WORLD_SIZE", &world)?;
        let rank = number("RANK", &required("RANK")?)?;
        let local_rank = match var("LOCAL_RANK") {
            Some(v) => number("LOCAL_RANK", &v)?,
            None => rank,
        };
        let local_world_size = match var("LOCAL_WORLD_SIZE") {
            Some(v) => number("LOCAL_WORLD_SIZE", &v)?,
            None => world_size,
        };
        let master_addr = required("MASTER_ADDR")?;
        let port_text = required("MASTER_PORT")?;
        let master_port = port_text
            .trim()
            .parse::<u16>()
            .map_err(|_| config("MASTER_PORT", format!("`{port_text}` is not a port number")))?;
        let backend = match var("DF_DIST_BACKEND") {
            Some(b) => Backend::parse(b.trim()).map_err(|_| {
                config(
                    "DF_DIST_BACKEND",
                    format!("`{b}` is not a backend (gloo or nccl)"),
                )
            })?,
            None => Backend::Gloo,
        };
        let timeout = match var("DF_DIST_TIMEOUT") {
            Some(v) => {
                let secs = number("DF_DIST_TIMEOUT", &v)? as u64;
                if secs > MAX_TIMEOUT.as_secs() {
                    return Err(config(
                        "DF_DIST_TIMEOUT",
                        format!(
                            "{secs} s is more than the longest accepted, {} s (7 days)",
                            MAX_TIMEOUT.as_secs()
                        ),
                    ));
                }
                Duration::from_secs(secs)
            }
            None => DEFAULT_TIMEOUT,
        };
        let config = Self {
            rank,
            world_size,
            local_rank,
            local_world_size,
            master_addr,
            master_port,
            backend,
            timeout,
            interface: var("GLOO_SOCKET_IFNAME").filter(|s| !s.is_empty()),
        };
        config.check()?;
        Ok(Some(config))
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting: a zero world or timeout, a rank outside the
    /// world, an empty master address.
    pub fn check(&self) -> Result<()> {
        if self.world_size == 0 {
            return Err(config("world_size", "must be at least 1"));
        }
        if self.rank >= self.world_size {
            return Err(config(
                "rank",
                format!("{} is outside a world of {}", self.rank, self.world_size),
            ));
        }
        if self.local_world_size == 0 || self.local_rank >= self.local_world_size {
            return Err(config(
                "local_rank",
                format!(
                    "{} is outside a local world of {}",
                    self.local_rank, self.local_world_size
                ),
            ));
        }
        if self.master_addr.trim().is_empty() {
            return Err(config("master_addr", "is empty"));
        }
        if self.timeout.is_zero() {
            return Err(config("timeout", "must be positive"));
        }
        if self.timeout > MAX_TIMEOUT {
            return Err(config(
                "timeout",
                format!(
                    "{} s is more than the longest accepted, {} s (7 days)",
                    self.timeout.as_secs(),
                    MAX_TIMEOUT.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

/// A reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// Element-wise sum.
    Sum,
    /// Element-wise mean (sum, then divided by the world size: Gloo has no average).
    Mean,
    /// Element-wise maximum.
    Max,
    /// Element-wise minimum.
    Min,
}

/// A process group: this process's membership of a c10d group. Dropping it leaves it.
#[derive(Debug)]
pub struct ProcessGroup {
    inner: Group,
    config: DistConfig,
}

fn is_loopback(addr: &str) -> bool {
    addr == "localhost" || addr.starts_with("127.") || addr == "::1"
}

impl ProcessGroup {
    /// Joins the group `config` describes: returns once all `world_size` processes have
    /// joined, or fails after the timeout.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings or the NCCL backend (not built);
    /// [`Error::Torch`] naming the rank when the rendezvous fails (address in use, peers
    /// missing past the timeout, no such interface).
    pub fn new(config: &DistConfig) -> Result<Self> {
        config.check()?;
        if config.backend == Backend::Nccl {
            return Self::nccl(config);
        }
        let device = match (&config.interface, is_loopback(&config.master_addr)) {
            (Some(name), _) => GlooDevice::Interface(name.clone()),
            (None, true) => GlooDevice::Hostname("127.0.0.1".into()),
            (None, false) => GlooDevice::Default,
        };
        let inner = Group::gloo(&GlooSettings {
            master_addr: config.master_addr.clone(),
            master_port: config.master_port,
            rank: config.rank,
            world_size: config.world_size,
            timeout: config.timeout,
            device,
            threads: 2,
        })?;
        Ok(Self {
            inner,
            config: config.clone(),
        })
    }

    #[cfg(feature = "nccl")]
    fn nccl(config: &DistConfig) -> Result<Self> {
        let inner = Group::nccl(
            &config.master_addr,
            config.master_port,
            config.rank,
            config.world_size,
            config.timeout,
            config.local_rank,
        )?;
        Ok(Self {
            inner,
            config: config.clone(),
        })
    }

    #[cfg(not(feature = "nccl"))]
    fn nccl(_: &DistConfig) -> Result<Self> {
        Err(config_error_nccl())
    }

    /// The device the group's tensors live on: the CPU (Gloo) or `cuda:LOCAL_RANK`
    /// (NCCL).
    pub fn device(&self) -> tch::Device {
        self.inner.device()
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.config.rank
    }

    /// The number of processes.
    pub fn world_size(&self) -> usize {
        self.config.world_size
    }

    /// Whether this is rank 0 (the one that writes files).
    pub fn is_main(&self) -> bool {
        self.config.rank == 0
    }

    /// The settings the group was made with.
    pub fn config(&self) -> &DistConfig {
        &self.config
    }

    fn tensor_error(&self, operation: &str) -> impl FnOnce(tch::TchError) -> Error + '_ {
        let operation = operation.to_string();
        move |source| Error::Tensor {
            rank: self.config.rank,
            operation,
            source,
        }
    }

    /// Reduces `tensor` in place: every rank ends with the result. A non-contiguous tensor
    /// goes through a contiguous copy.
    ///
    /// # Errors
    /// A peer gone or late past the timeout, tensors of different sizes across ranks; a
    /// mean of an integer tensor.
    pub fn all_reduce(&self, tensor: &mut Tensor, op: Reduce) -> Result<()> {
        let raw = match op {
            Reduce::Sum | Reduce::Mean => ReduceOp::Sum,
            Reduce::Max => ReduceOp::Max,
            Reduce::Min => ReduceOp::Min,
        };
        if op == Reduce::Mean && !tensor.is_floating_point() {
            return Err(config(
                "all_reduce",
                format!("a mean of a {:?} tensor", tensor.kind()),
            ));
        }
        let contiguous = tensor.is_contiguous();
        let mut work = if contiguous {
            tensor.shallow_clone()
        } else {
            tensor.contiguous()
        };
        self.inner.all_reduce(&mut work, raw)?;
        if op == Reduce::Mean && self.world_size() > 1 {
            let _ = work
                .f_div_scalar_(self.world_size() as f64)
                .map_err(self.tensor_error("all_reduce (mean)"))?;
        }
        if !contiguous {
            tch::no_grad(|| tensor.f_copy_(&work)).map_err(self.tensor_error("all_reduce"))?;
        }
        Ok(())
    }

    /// Copies rank `root`'s `tensor` into every rank's, in place.
    ///
    /// # Errors
    /// As [`ProcessGroup::all_reduce`]; a root outside the world.
    pub fn broadcast(&self, tensor: &mut Tensor, root: usize) -> Result<()> {
        if tensor.is_contiguous() {
            return Ok(self.inner.broadcast(tensor, root)?);
        }
        let mut work = tensor.contiguous();
        self.inner.broadcast(&mut work, root)?;
        tch::no_grad(|| tensor.f_copy_(&work)).map_err(self.tensor_error("broadcast"))?;
        Ok(())
    }

    /// Every rank's `tensor` (same shape and kind everywhere), in rank order.
    ///
    /// # Errors
    /// As [`ProcessGroup::all_reduce`].
    pub fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        Ok(self.inner.all_gather(&tensor.contiguous())?)
    }

    /// Every rank's 1-D `tensor`, whose lengths may differ across ranks, concatenated in
    /// rank order (validation scores of unequal shards).
    ///
    /// # Errors
    /// As [`ProcessGroup::all_reduce`]; a tensor that is not 1-D.
    pub fn all_gather_uneven(&self, tensor: &Tensor) -> Result<Tensor> {
        if tensor.dim() != 1 {
            return Err(config(
                "all_gather_uneven",
                format!("takes a 1-D tensor, not {:?}", tensor.size()),
            ));
        }
        let n = tensor.size()[0];
        let lengths = self.all_gather(&Tensor::from_slice(&[n]).to_device(self.device()))?;
        let lengths: Vec<i64> = lengths.iter().map(|t| t.int64_value(&[0])).collect();
        let longest = lengths.iter().copied().max().unwrap_or(0);
        let padded = if n < longest {
            Tensor::f_cat(
                &[
                    tensor.contiguous(),
                    tensor.new_zeros([longest - n], (tensor.kind(), tensor.device())),
                ],
                0,
            )
            .map_err(|e| config("all_gather_uneven", e.to_string()))?
        } else {
            tensor.contiguous()
        };
        let parts = self.all_gather(&padded)?;
        let kept: Vec<Tensor> = parts
            .iter()
            .zip(&lengths)
            .map(|(p, &len)| p.narrow(0, 0, len))
            .collect();
        Tensor::f_cat(&kept, 0).map_err(|e| config("all_gather_uneven", e.to_string()))
    }

    /// Waits until every rank has reached it.
    ///
    /// # Errors
    /// As [`ProcessGroup::all_reduce`].
    pub fn barrier(&self) -> Result<()> {
        Ok(self.inner.barrier()?)
    }

    /// Whether `value` is true on every rank (a decision all ranks must take together:
    /// stop on divergence, stop early).
    ///
    /// # Errors
    /// As [`ProcessGroup::all_reduce`].
    pub fn all_agree(&self, value: bool) -> Result<bool> {
        let mut t = Tensor::from_slice(&[i64::from(value)]).to_device(self.device());
        self.all_reduce(&mut t, Reduce::Min)?;
        Ok(t.int64_value(&[0]) == 1)
    }
}

#[cfg(not(feature = "nccl"))]
fn config_error_nccl() -> Error {
    config(
        "backend",
        "nccl is not built in: build with the `nccl` feature (after `scripts/setup.sh \
         --nccl`), or use gloo (CPU tensors)",
    )
}

/// A free TCP port on loopback for a rendezvous (the OS picks one; it is released
/// before returning, so another process could take it first, as with torchrun's own).
///
/// # Errors
/// [`Error::Config`] when no port can be bound.
pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| config("master_port", format!("no free loopback port: {e}")))
}

/// The variable through which [`launch_local`] tells its ranks its process id, so that
/// each dies with it ([`bind_to_launcher`]).
pub const LAUNCHER_PID_VAR: &str = "DF_LAUNCHER_PID";

/// How [`launch_local_with`] starts its ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchOptions {
    /// Start more ranks than the cores this process may use (each rank needs at least
    /// one intra-op thread; more ranks than cores only slow each other down and multiply
    /// the memory).
    pub oversubscribe: bool,
    /// How long the ranks get to end after a forwarded signal before they are killed.
    pub grace: Duration,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        Self {
            oversubscribe: false,
            grace: Duration::from_secs(30),
        }
    }
}

/// The cores this process may run on (its affinity and cgroup quota; 1 when unknown).
pub fn usable_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// [`launch_local_with`] with the default options.
///
/// # Errors
/// As [`launch_local_with`].
pub fn launch_local(
    nproc: usize,
    program: &std::path::Path,
    args: &[std::ffi::OsString],
) -> Result<()> {
    launch_local_with(nproc, program, args, &LaunchOptions::default())
}

/// Called by a rank that [`launch_local`] started (its [`LAUNCHER_PID_VAR`] is set):
/// the rank gets SIGTERM when the launcher dies, however it dies, instead of running on
/// as an orphan. Does nothing in a process another launcher started.
///
/// # Errors
/// [`Error::Config`] when the launcher is already gone or the request fails.
pub fn bind_to_launcher() -> Result<()> {
    let Ok(text) = std::env::var(LAUNCHER_PID_VAR) else {
        return Ok(());
    };
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|_| config(LAUNCHER_PID_VAR, format!("`{text}` is not a process id")))?;
    df_sys::process::die_with_parent(pid).map_err(|e| config(LAUNCHER_PID_VAR, e.to_string()))
}

/// Starts `nproc` copies of `program args` on this machine as one group over loopback,
/// like `torchrun --standalone --nproc-per-node N`: each gets `RANK`, `WORLD_SIZE`,
/// `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT` and
/// [`LAUNCHER_PID_VAR`]; waits for all. When one fails, the others are stopped (they
/// would otherwise wait for it until the timeout). SIGTERM, SIGINT or SIGHUP sent to this
/// process is forwarded to every rank; the ranks get [`LaunchOptions::grace`] to end, then
/// are killed, and the launch returns [`Error::Signalled`]. More ranks than
/// [`usable_cores`] are refused unless [`LaunchOptions::oversubscribe`].
///
/// # Errors
/// [`Error::Config`] naming the first rank that could not start or failed, with its exit
/// status, or too many ranks; [`Error::Signalled`].
pub fn launch_local_with(
    nproc: usize,
    program: &std::path::Path,
    args: &[std::ffi::OsString],
    options: &LaunchOptions,
) -> Result<()> {
    if nproc == 0 {
        return Err(config("nproc", "must be at least 1"));
    }
    let cores = usable_cores();
    if nproc > cores && !options.oversubscribe {
        return Err(config(
            "nproc",
            format!(
                "{nproc} ranks, but this process may use {cores} core(s): each rank needs one \
                 at least (and its own copy of the model); start at most {cores}, or say \
                 --oversubscribe"
            ),
        ));
    }
    // Before the first rank starts: a signal from now on is forwarded, not fatal.
    df_sys::process::catch_termination_signals()
        .map_err(|e| config("nproc", format!("catching termination signals: {e}")))?;
    let port = free_port()?;
    let launcher = std::process::id().to_string();
    let mut children = Vec::with_capacity(nproc);
    for rank in 0..nproc {
        let child = std::process::Command::new(program)
            .args(args)
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env(LAUNCHER_PID_VAR, &launcher)
            .spawn();
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                for mut c in children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(config(
                    "nproc",
                    format!("starting rank {rank} ({}): {e}", program.display()),
                ));
            }
        }
    }
    let mut failure: Option<String> = None;
    let mut signalled: Option<(i32, std::time::Instant)> = None;
    let mut running: Vec<(usize, std::process::Child)> = children.into_iter().enumerate().collect();
    while !running.is_empty() {
        if signalled.is_none() {
            if let Some(sig) = df_sys::process::caught_signal() {
                for (_, child) in &running {
                    let _ = df_sys::process::send_signal(child.id(), sig);
                }
                signalled = Some((sig, std::time::Instant::now()));
            }
        }
        let mut still = Vec::with_capacity(running.len());
        for (rank, mut child) in running {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {}
                Ok(Some(status)) => {
                    failure.get_or_insert_with(|| format!("rank {rank} failed ({status})"));
                }
                Ok(None) => still.push((rank, child)),
                Err(e) => {
                    failure.get_or_insert_with(|| format!("rank {rank}: waiting for it: {e}"));
                }
            }
        }
        let overdue = signalled.is_some_and(|(_, at)| at.elapsed() > options.grace);
        if (failure.is_some() && signalled.is_none()) || overdue {
            for (_, child) in &mut still {
                let _ = child.kill();
            }
            for (_, mut child) in still {
                let _ = child.wait();
            }
            break;
        }
        running = still;
        std::thread::sleep(Duration::from_millis(50));
    }
    match (signalled, failure) {
        (Some((signal, _)), _) => Err(Error::Signalled { signal }),
        (None, Some(reason)) => Err(config("nproc", reason)),
        (None, None) => Ok(()),
    }
}
