//! The load client of the serve bench (`benches/serve.sh`): posts one photo to a scoring
//! service on the loopback, at each concurrency, a bounded number of requests, over
//! keep-alive HTTP/1.1 connections (one per concurrent client); prints one JSON line per
//! concurrency: images per second, p50 and p99 latency, errors.
//!
//! ```text
//! cargo bench --bench serve_load -- --url 127.0.0.1:8080 --image photo.jpg \
//!     --concurrency 1,8,32 --requests 400 [--warmup 20] [--label serve]
//! ```
//!
//! With `--checkpoint FILE --size N` it only writes a randomly initialised meso4
//! checkpoint (N×N input) and exits (the script's model).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The most time one level may take (the whole run stops by itself).
const LEVEL_LIMIT: Duration = Duration::from_secs(120);

struct Args {
    url: SocketAddr,
    image: std::path::PathBuf,
    concurrency: Vec<usize>,
    requests: usize,
    warmup: usize,
    label: String,
}

fn value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One request on an open connection; its status.
async fn post(conn: &mut BufReader<TcpStream>, body: &[u8]) -> std::io::Result<u16> {
    let head = format!(
        "POST /v1/score HTTP/1.1\r\nHost: bench\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // One write, on a socket without Nagle's delay (a head and a body written apart would
    // wait for the server's delayed ACK: 40 ms a request).
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    conn.get_mut().write_all(&request).await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status: u16 = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut rest = vec![0u8; length];
    conn.read_exact(&mut rest).await?;
    Ok(status)
}

async fn level(args: &Args, body: &[u8], concurrency: usize) -> serde_json::Value {
    let per = args.requests.div_ceil(concurrency);
    // Every client warmed up and waiting at the barrier: the clock starts there.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (addr, body, barrier) = (args.url, body.to_vec(), barrier.clone());
        let warmup = args.warmup.div_ceil(concurrency);
        tasks.spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut conn = BufReader::new(stream);
            for _ in 0..warmup {
                post(&mut conn, &body).await?;
            }
            barrier.wait().await;
            let mut latencies = Vec::with_capacity(per);
            let mut errors = 0usize;
            for _ in 0..per {
                let t = Instant::now();
                let status = post(&mut conn, &body).await?;
                if status == 200 {
                    latencies.push(t.elapsed().as_secs_f64());
                } else {
                    errors += 1;
                }
            }
            Ok::<_, std::io::Error>((latencies, errors))
        });
    }
    // A client that failed in its warm-up never reaches the barrier: bounded.
    let _ = tokio::time::timeout(LEVEL_LIMIT, barrier.wait()).await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let deadline = tokio::time::sleep(LEVEL_LIMIT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                None => break,
                Some(Ok(Ok((l, e)))) => { latencies.extend(l); errors += e; }
                Some(_) => errors += per,
            },
            () = &mut deadline => { tasks.abort_all(); errors += 1; break; }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let q = |f: f64| {
        latencies
            .get(((latencies.len() as f64 * f).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |s| s * 1e3)
    };
    let done = latencies.len();
    serde_json::json!({
        "label": args.label,
        "concurrency": concurrency,
        "requests": latencies.len(),
        "errors": errors,
        "images_per_s": done as f64 / elapsed,
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
    })
}

fn write_checkpoint(path: &str, size: i64) {
    use deepfake::models::{self, BuildOptions};
    deepfake::tch::manual_seed(0);
    let vs = deepfake::tch::nn::VarStore::new(deepfake::tch::Device::Cpu);
    let model = models::build(
        "meso4",
        &vs.root(),
        &BuildOptions::default().with_input_size(size, size),
    )
    .expect("meso4");
    models::checkpoint::save_checkpoint(&vs, model.as_ref(), path).expect("save");
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(path) = value(&argv, "--checkpoint") {
        let size = value(&argv, "--size")
            .and_then(|s| s.parse().ok())
            .unwrap_or(256);
        write_checkpoint(&path, size);
        return;
    }
    // `cargo bench` without options (the benches' build check): nothing to measure.
    let Some(url) = value(&argv, "--url") else {
        eprintln!("serve_load: no --url; see benches/serve.sh");
        return;
    };
    let args = Args {
        url: url.parse().expect("--url: HOST:PORT on the loopback"),
        image: value(&argv, "--image").expect("--image FILE").into(),
        concurrency: value(&argv, "--concurrency")
            .unwrap_or_else(|| "1,8,32".into())
            .split(',')
            .map(|c| c.parse().expect("--concurrency: numbers"))
            .collect(),
        requests: value(&argv, "--requests").map_or(400, |r| r.parse().expect("--requests")),
        warmup: value(&argv, "--warmup").map_or(16, |r| r.parse().expect("--warmup")),
        label: value(&argv, "--label").unwrap_or_else(|| "serve".into()),
    };
    assert!(args.url.ip().is_loopback(), "--url must be on the loopback");
    let body = std::fs::read(&args.image).expect("--image");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for &c in &args.concurrency {
            println!("{}", level(&args, &body, c).await);
        }
    });
}
