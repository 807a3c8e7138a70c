//! libtorch's c10d on Gloo through the shim, two ranks as two threads of this process over
//! loopback: every collective gives what its definition says (sums, maxima, rank 0's
//! values, every rank's input in order), and the failures a user meets (a peer that never
//! comes, a peer gone, a bad rank) are errors naming the rank and the operation within
//! the timeout, not hangs.

use std::time::{Duration, Instant};

use df_sys::c10d::{GlooDevice, GlooSettings, Group, ReduceOp};
use tch::{Device, Kind, Tensor};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn settings(port: u16, rank: usize, world_size: usize, timeout: Duration) -> GlooSettings {
    GlooSettings {
        master_addr: "127.0.0.1".into(),
        master_port: port,
        rank,
        world_size,
        timeout,
        device: GlooDevice::Hostname("127.0.0.1".into()),
        threads: 1,
    }
}

/// Runs `body(group)` on `world_size` ranks, one thread each; their results in rank order.
fn on_ranks<T: Send + 'static>(
    world_size: usize,
    body: impl Fn(Group) -> T + Send + Sync + Clone + 'static,
) -> Vec<T> {
    let port = free_port();
    let handles: Vec<_> = (0..world_size)
        .map(|rank| {
            let body = body.clone();
            std::thread::spawn(move || {
                let group = Group::gloo(&settings(port, rank, world_size, Duration::from_secs(30)))
                    .unwrap_or_else(|e| panic!("rank {rank}: {e}"));
                body(group)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a rank panicked"))
        .collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.reshape([-1])).expect("f32 values")
}

#[test]
fn collectives_give_what_they_define() {
    let results = on_ranks(2, |g| {
        let r = g.rank() as f32;
        assert_eq!(g.world_size(), 2);
        // Sum and max of [r+1, 10r, -r] across ranks 0 and 1.
        let input = [r + 1.0, 10.0 * r, -r];
        let mut sum = Tensor::from_slice(&input);
        g.all_reduce(&mut sum, ReduceOp::Sum)
            .expect("all_reduce sum");
        let mut max = Tensor::from_slice(&input);
        g.all_reduce(&mut max, ReduceOp::Max)
            .expect("all_reduce max");
        let mut min = Tensor::from_slice(&input);
        g.all_reduce(&mut min, ReduceOp::Min)
            .expect("all_reduce min");
        // A 2-D float64 tensor from rank 1.
        let mut b = Tensor::full([2, 3], f64::from(r) + 0.5, (Kind::Double, Device::Cpu));
        g.broadcast(&mut b, 1).expect("broadcast");
        let gathered = g
            .all_gather(&Tensor::from_slice(&[r, r * r + 7.0]))
            .expect("all_gather");
        g.barrier().expect("barrier");
        (
            values(&sum),
            values(&max),
            values(&min),
            Vec::<f64>::try_from(b.reshape([-1])).expect("f64"),
            gathered.iter().map(values).collect::<Vec<_>>(),
        )
    });
    for (rank, (sum, max, min, b, gathered)) in results.into_iter().enumerate() {
        assert_eq!(sum, [3.0, 10.0, -1.0], "rank {rank} sum");
        assert_eq!(max, [2.0, 10.0, 0.0], "rank {rank} max");
        assert_eq!(min, [1.0, 0.0, -1.0], "rank {rank} min");
        assert_eq!(b, [1.5; 6], "rank {rank}: rank 1's values");
        assert_eq!(gathered, [vec![0.0, 7.0], vec![1.0, 8.0]], "rank {rank}");
    }
}

#[test]
fn a_peer_that_never_comes_is_an_error_within_the_timeout() {
    let port = free_port();
    let started = Instant::now();
    let err =
        Group::gloo(&settings(port, 0, 2, Duration::from_secs(3))).expect_err("rank 1 never joins");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(
        text.contains("rank 0 of 2") && text.contains("joining the group"),
        "{text}"
    );
    // Bounded by the timeout (3 s), not a hang; generous for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_peer_gone_mid_run_is_an_error_naming_the_operation() {
    let results = on_ranks(2, |g| {
        let mut t = Tensor::ones([4], (Kind::Float, Device::Cpu));
        g.all_reduce(&mut t, ReduceOp::Sum)
            .expect("the first all_reduce");
        if g.rank() == 1 {
            drop(g); // rank 1 leaves
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
        Some(
            g.all_reduce(&mut t, ReduceOp::Sum)
                .map_err(|e| e.to_string()),
        )
    });
    let outcome = results[0].clone().expect("rank 0's outcome");
    let text = outcome.expect_err("rank 1 is gone");
    eprintln!("{text}");
    assert!(text.contains("rank 0 of 2: all_reduce"), "{text}");
}

#[test]
fn bad_settings_and_tensors_are_refused_by_name() {
    let port = free_port();
    let err = Group::gloo(&settings(port, 2, 2, Duration::from_secs(1))).expect_err("rank 2");
    assert!(
        err.to_string()
            .starts_with("rank: 2 is outside a world of 2"),
        "{err}"
    );
    let err = Group::gloo(&settings(port, 0, 0, Duration::from_secs(1))).expect_err("world 0");
    assert!(err.to_string().starts_with("world_size"), "{err}");
    // A world of one: collectives are identities; tensors Gloo cannot take are refused.
    let g = Group::gloo(&settings(free_port(), 0, 1, Duration::from_secs(10))).expect("world 1");
    let mut t = Tensor::from_slice(&[1.0f32, 2.0]);
    g.all_reduce(&mut t, ReduceOp::Sum).expect("all_reduce");
    assert_eq!(values(&t), [1.0, 2.0]);
    let mut strided = Tensor::ones([3, 4], (Kind::Float, Device::Cpu)).transpose(0, 1);
    let err = g
        .all_reduce(&mut strided, ReduceOp::Sum)
        .expect_err("not contiguous");
    assert!(err.to_string().contains("not contiguous"), "{err}");
    let err = g.broadcast(&mut t, 1).expect_err("root 1 of 1");
    assert!(err.to_string().starts_with("root"), "{err}");
}
