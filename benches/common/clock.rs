//! The clock both benches time with (included by `#[path]`; not a bench of its own).

use std::time::{Duration, Instant};

/// What a bench measures: wall-clock time (the default), or with `DF_BENCH_CLOCK=cpu` the
/// CPU time of the whole process, every thread, which a busy shared machine disturbs far
/// less (for the blocks, use it with `DF_BENCH_THREADS=1`: idle intra-op threads spin and
/// would count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Time since this origin.
    Wall(Instant),
    /// User + system time of the process.
    Cpu,
}

impl Clock {
    /// From `DF_BENCH_CLOCK` (`wall` or `cpu`); the wall clock, with a note, where
    /// `/proc/self/stat` cannot be read.
    pub fn from_env() -> Self {
        match std::env::var("DF_BENCH_CLOCK").as_deref() {
            Ok("cpu") if process_cpu_time().is_some() => Clock::Cpu,
            Ok("cpu") => {
                eprintln!(
                    "note: no /proc/self/stat here; DF_BENCH_CLOCK=cpu falls back to wall time"
                );
                Clock::Wall(Instant::now())
            }
            Ok("wall") | Err(_) => Clock::Wall(Instant::now()),
            Ok(other) => panic!("DF_BENCH_CLOCK must be `wall` or `cpu`, got {other:?}"),
        }
    }

    /// Time since an arbitrary origin.
    pub fn now(self) -> Duration {
        match self {
            Clock::Wall(origin) => origin.elapsed(),
            Clock::Cpu => process_cpu_time().unwrap_or_default(),
        }
    }
}

/// User + system time of every thread of this process so far, from `/proc/self/stat`
/// (Linux; 10 ms ticks, fine for samples of hundreds of milliseconds).
fn process_cpu_time() -> Option<Duration> {
    const TICKS_PER_SECOND: u64 = 100; // USER_HZ, 100 on every Linux ABI in use.
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}
