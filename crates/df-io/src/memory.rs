//! How much memory a process may still take, for checks made *before* a large allocation:
//! an out-of-memory kill cannot be caught afterwards, and libtorch aborts on some failed
//! allocations. Linux only (elsewhere nothing is known and every check passes).

use std::fmt;

/// A request larger than the memory available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// What would be allocated, in words (`the dense head's weights at 10000×10000`).
    pub what: String,
    /// Bytes it would need (an estimate, at least this much).
    pub needed: u64,
    /// Bytes available.
    pub available: u64,
    /// Where the limit comes from: `of memory available`, or a file whose own size bounds
    /// what it may describe (see [`with_limit`]).
    pub limit: String,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} would need at least {}, more than the {} {}",
            self.what,
            human(self.needed),
            human(self.available),
            self.limit
        )
    }
}

impl std::error::Error for TooLarge {}

/// `bytes` in KiB, MiB, GiB or TiB, three significant digits.
pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.3} {}", units[unit])
    }
}

/// The memory this process may still take: the smaller of the system's `MemAvailable`
/// and the room left under its cgroup's limit; `None` where neither can be read.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib * 1024)
        });
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    let cgroup = match (
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    ) {
        (Some(max), Some(current)) => Some(max.saturating_sub(current)),
        _ => None,
    };
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Checks that `needed` bytes fit in the memory available; `what` names the request.
///
/// # Errors
/// [`TooLarge`] saying how much it would need and how much there is.
pub fn ensure_fits(needed: u64, what: impl FnOnce() -> String) -> Result<(), TooLarge> {
    if let Some((limit, source)) = LIMIT.with(|l| l.borrow().clone()) {
        if needed > limit {
            return Err(TooLarge {
                what: what(),
                needed,
                available: limit,
                limit: source,
            });
        }
    }
    match available_bytes() {
        Some(available) if needed > available => Err(TooLarge {
            what: what(),
            needed,
            available,
            limit: "of memory available".into(),
        }),
        _ => Ok(()),
    }
}

thread_local! {
    static LIMIT: std::cell::RefCell<Option<(u64, String)>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with a tighter bound for [`ensure_fits`] on this thread: `bytes`, described
/// by `source` (`held in m.safetensors's tensors`). A checkpoint's configuration cannot
/// describe more weights than the file holds, so building the model it describes is
/// checked against the file's size, not the machine's memory.
pub fn with_limit<T>(bytes: u64, source: impl Into<String>, f: impl FnOnce() -> T) -> T {
    let previous = LIMIT.with(|l| l.borrow_mut().replace((bytes, source.into())));
    let out = f();
    LIMIT.with(|l| *l.borrow_mut() = previous);
    out
}

/// `count` values of `bytes_each` bytes, saturating instead of overflowing.
pub fn bytes_of(count: impl IntoIterator<Item = i64>, bytes_each: u64) -> u64 {
    count
        .into_iter()
        .map(|d| u64::try_from(d.max(0)).unwrap_or(u64::MAX))
        .fold(bytes_each, u64::saturating_mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_beyond_the_machine_is_refused_with_figures() {
        let available = available_bytes().expect("Linux reports its memory");
        assert!(available > 0);
        ensure_fits(1024, || "a kilobyte".into()).expect("fits");
        let err = ensure_fits(u64::MAX / 2, || "a huge tensor".into()).expect_err("too large");
        let text = err.to_string();
        assert!(
            text.starts_with("a huge tensor would need at least"),
            "{text}"
        );
        assert!(text.contains("PiB") && text.contains("available"), "{text}");
        assert_eq!(bytes_of([3, 100_000, 100_000], 4), 120_000_000_000);
        assert_eq!(bytes_of([i64::MAX, i64::MAX], 4), u64::MAX);
        assert_eq!(human(1536), "1.500 KiB");
        let err = with_limit(100, "in the file", || ensure_fits(101, || "it".into()))
            .expect_err("over the limit");
        assert_eq!(
            err.to_string(),
            "it would need at least 101 B, more than the 100 B in the file"
        );
        ensure_fits(101, || "it".into()).expect("the limit ends with the closure");
    }
}
