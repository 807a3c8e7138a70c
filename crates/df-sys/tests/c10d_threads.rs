//! Several c10d groups in one process, each driven from its own threads (ranks as threads,
//! as the tests of df-dist run them, or one group per worker thread of a program): their
//! collectives may be enqueued at the same moment. libtorch 2.11 records every enqueued
//! collective in one process-wide flight recorder whose map of group states it updates
//! before taking its lock (`FlightRecorderDetail.hpp`, `recordWithResetEnabled`); two
//! groups enqueueing their first collective together corrupt that map and the process
//! crashes or spins forever. The shim enqueues under one process-wide lock: here 60 groups
//! of 2 ranks, one after another, each rank spinning until its peer is ready so that both
//! enqueue their first collective within a fraction of a microsecond, give the right sums.
//! (Without the lock, this process crashed within 6 to 48 groups in 6 of 6 runs.) The
//! groups run in a child process (this test binary again), so that a crash or a hang fails
//! the test with a message instead of taking the test runner with it.

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use df_sys::c10d::{GlooDevice, GlooSettings, Group, ReduceOp};
use tch::Tensor;

const GROUPS: usize = 60;
const STEPS: usize = 2;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Set in the child process: run the groups there.
const CHILD: &str = "DF_C10D_THREADS_CHILD";
/// How long one group may take before the child counts as stuck: about 30 ms normally, 5 s
/// when the rendezvous waits on a reverse-DNS lookup, at most the groups' 60 s timeout
/// when it fails.
const STUCK: Duration = Duration::from_secs(90);

#[test]
fn groups_in_threads_of_one_process_enqueue_at_the_same_time() {
    if std::env::var_os(CHILD).is_some() {
        return many_groups_at_once();
    }
    let name = "groups_in_threads_of_one_process_enqueue_at_the_same_time";
    let mut child = std::process::Command::new(std::env::current_exe().expect("this test"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the child process");
    // Read as it comes (a full pipe would stall the child), each line a sign of progress;
    // shown only on failure.
    let started = Instant::now();
    let progress = Arc::new(AtomicU64::new(0));
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let progress = Arc::clone(&progress);
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(p) = pipe {
                for line in std::io::BufReader::new(p).lines().map_while(Result::ok) {
                    progress.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
        })
    };
    let out = read(child.stdout.take().map(|p| Box::new(p) as _));
    let err = read(child.stderr.take().map(|p| Box::new(p) as _));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break Some(status);
        }
        let last = Duration::from_millis(progress.load(Ordering::SeqCst));
        if started.elapsed() > last + STUCK {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    match status {
        Some(s) => assert!(
            s.success(),
            "the groups' process ended with {s}; it printed:\n{output}"
        ),
        None => panic!("the groups' process made no progress for {STUCK:?}; it printed:\n{output}"),
    }
}

fn many_groups_at_once() {
    for group in 0..GROUPS {
        // Both ranks spin until both are ready, then enqueue at once: a futex barrier
        // wakes them microseconds apart, longer than the race lasts.
        let ready = Arc::new(AtomicUsize::new(0));
        let port = free_port();
        let handles: Vec<_> = (0..2)
            .map(|rank| {
                let ready = Arc::clone(&ready);
                std::thread::spawn(move || {
                    let settings = GlooSettings {
                        master_addr: "127.0.0.1".into(),
                        master_port: port,
                        rank,
                        world_size: 2,
                        timeout: Duration::from_secs(60),
                        device: GlooDevice::Hostname("127.0.0.1".into()),
                        threads: 1,
                    };
                    let g = Group::gloo(&settings)
                        .unwrap_or_else(|e| panic!("group {group} rank {rank}: {e}"));
                    let mut sums = Vec::with_capacity(STEPS);
                    for step in 0..STEPS {
                        let mut t = Tensor::from_slice(&[(group * 100 + step + rank) as f32]);
                        ready.fetch_add(1, Ordering::SeqCst);
                        while ready.load(Ordering::SeqCst) < 2 * (step + 1) {
                            std::hint::spin_loop();
                        }
                        g.all_reduce(&mut t, ReduceOp::Sum)
                            .unwrap_or_else(|e| panic!("group {group} rank {rank}: {e}"));
                        sums.push(t.double_value(&[0]));
                    }
                    sums
                })
            })
            .collect();
        for h in handles {
            let sums = h.join().expect("a rank panicked");
            let expected: Vec<f64> = (0..STEPS)
                .map(|step| (2 * (group * 100 + step) + 1) as f64)
                .collect();
            assert_eq!(sums, expected, "group {group}");
        }
        println!("group {group} done");
    }
}
