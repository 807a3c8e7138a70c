//! The allocator policy against the kernel's and glibc's own accounting: minor page faults
//! (`/proc/self/stat`) and `mallinfo2`. Under glibc's defaults a loop that allocates and
//! frees three 24 MiB tensors a step hands the freed space back to the kernel (more than
//! twice the dynamic mmap threshold is free at the heap's top) and faults every page in
//! again at the next step; once freed memory is retained, the loop reuses the heap and
//! stops faulting, and `release_freed_memory` hands the pages back (the resident size
//! drops). One test in its own binary without the test harness: the policy is process-wide,
//! and it runs on the main thread, whose heap (glibc's main arena) is where a training loop
//! driven from `main` allocates (other threads' arenas drop a heap once it is all free).

use df_sys::memory::{self, Retain};
use tch::{Device, Kind, Tensor};

const BIG: i64 = 6 * 1024 * 1024; // f32 elements: 24 MiB
const PAGES: u64 = 4 * BIG as u64 / 4096;
/// Tensors a step allocates: 144 MiB, more than twice the largest mmap threshold.
const TENSORS: usize = 6;

/// One step: three tensors, every page written, then freed.
fn step() {
    let ts: Vec<Tensor> = (0..TENSORS)
        .map(|_| Tensor::ones([BIG], (Kind::Float, Device::Cpu)))
        .collect();
    let total: f64 = ts
        .iter()
        .map(|t| f64::try_from(t.sum(Kind::Float)).expect("sum"))
        .sum();
    assert_eq!(total, TENSORS as f64 * BIG as f64);
}

/// Minor page faults of the process during `steps` steps.
fn faults(steps: usize) -> u64 {
    let before = minor_faults();
    for _ in 0..steps {
        step();
    }
    minor_faults() - before
}

fn main() {
    retained_memory_stops_the_page_faults_and_is_released_on_request();
    println!("memory: retained memory stops the page faults and is released on request: ok");
}

fn retained_memory_stops_the_page_faults_and_is_released_on_request() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    assert!(
        !tunables.contains("glibc.malloc."),
        "run this test without malloc tunables in GLIBC_TUNABLES ({tunables})"
    );
    memory::stats().expect("glibc's mallinfo2");

    // glibc's defaults: every step faults its tensors in again.
    faults(2);
    let default = faults(4);
    assert!(
        default >= 4 * PAGES,
        "default policy: {default} faults in 4 steps (a step writes {} pages)",
        TENSORS as u64 * PAGES
    );

    assert!(!memory::retained());
    assert_eq!(memory::retain_freed_memory(), Retain::Applied);
    assert!(memory::retained());
    assert_eq!(memory::retain_freed_memory(), Retain::AlreadyApplied);
    faults(8); // the heap grows to what the loop needs
    let heap = memory::stats().expect("mallinfo2").heap;
    let retained = faults(4);
    assert!(
        retained < PAGES / 10,
        "retained: {retained} faults in 4 steps (default: {default})"
    );
    assert_eq!(
        memory::stats().expect("mallinfo2").heap,
        heap,
        "retained: the heap does not grow in steady state"
    );

    let kept = rss();
    assert!(
        memory::release_freed_memory(),
        "malloc_trim released nothing"
    );
    let released = rss();
    assert!(
        released + 2 * 4 * BIG as u64 <= kept,
        "released: resident {kept} -> {released} bytes"
    );
}

/// Minor page faults of this process so far (field 10 of /proc/self/stat).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // After the command name's closing parenthesis: state is field 3, minflt field 10.
    let rest = &stat[stat.rfind(')').expect("(comm)") + 2..];
    rest.split_whitespace()
        .nth(7)
        .and_then(|v| v.parse().ok())
        .expect("minflt")
}

/// The process's resident bytes (`VmRSS` in /proc/self/status).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS");
    kb * 1024
}
