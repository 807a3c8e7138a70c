//! Serves a detector over HTTP: `POST /v1/score` (a photo or video as the body or a
//! multipart upload → the verdict as `predict --per-frame` prints it, with timings),
//! `GET /v1/model` (the model card), `/healthz`, `/metrics` (Prometheus) and a page at `/`
//! to drop a file on. The weights are loaded once; one inference thread scores the
//! requests in batches (see the `df-serve` crate).
//!
//! ```text
//! cargo run --release --example serve -- --weights runs/lfw/model.safetensors \
//!     --addr 127.0.0.1:8080
//! curl --data-binary @photo.jpg http://127.0.0.1:8080/v1/score
//! {"p_fake":0.93,"label":"fake","kind":"image","width":250,"height":250,"batch":1,"timings":{...}}
//! ```
//!
//! `--weights` takes a checkpoint, or a Keras `.h5` with `--model` and `--polarity`, as
//! `predict` does (with `--resize`, `--center-crop`, `--faces`, `--fps`, `--max-frames`).
//! `--max-batch` pictures per forward pass (8), waiting `--max-wait-ms` (5) after the first
//! request; `--queue` (64) requests wait, beyond which `503` with `Retry-After` is answered;
//! `--max-body` (64MiB) bounds a request (`413`); a body not sent within
//! `--body-timeout-s` (30) gets `408`, a request line and headers not sent within
//! `--header-timeout-s` (30) close the connection; `--threads` sets libtorch's intra-op
//! threads. SIGTERM or Ctrl-C stops taking requests and finishes those in flight.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use deepfake::cli::DetectorArgs;
use deepfake::tch::Device;
use deepfake::{error_text, escape_message};
use df_serve::{ServeConfig, Server};

/// Serves a deepfake detector over HTTP.
#[derive(Debug, Parser)]
#[command(name = "serve")]
struct Args {
    #[command(flatten)]
    detector: DetectorArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Most pictures (whole images or faces) in one forward pass.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_batch: u64,
    /// Milliseconds the inference thread waits for more requests after the first.
    #[arg(long, default_value_t = 5)]
    max_wait_ms: u64,
    /// Requests that may wait for the inference thread; more are answered 503.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    queue: u64,
    /// Largest request body: bytes, or with a unit (KiB, MiB, GiB, kB, MB, GB).
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    max_body: usize,
    /// Seconds a client has to send its body (408 after).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    body_timeout_s: u64,
    /// Seconds a client has to send a request's line and headers, from connecting or
    /// from its previous answer (the connection is closed after).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    header_timeout_s: u64,
    /// Longest video accepted, in seconds (422 above).
    #[arg(long, default_value_t = 600.0)]
    max_video_seconds: f64,
    /// libtorch's intra-op threads (default: libtorch's own choice).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// Run on the CPU even when a GPU is available.
    #[arg(long)]
    cpu: bool,
}

/// `1048576`, `64MiB`, `10MB`, `512k` ...
fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 1048576, 64MiB, 10MB)"))?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "`{other}`: not a size unit (KiB, MiB, GiB, kB, MB, GB)"
            ))
        }
    };
    n.checked_mul(factor)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("`{text}`: must be between 1 byte and {} bytes", usize::MAX))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let fail = |e: &(dyn std::error::Error + 'static)| {
        eprintln!("error: {}", escape_message(&error_text(e)));
        ExitCode::from(2)
    };
    let device = if args.cpu {
        Device::Cpu
    } else {
        Device::cuda_if_available()
    };
    let (precision, says) = args.detector.precision.resolve(device);
    if let Some(line) = says {
        eprintln!("{line}");
    }
    let options = match args.detector.options(device, precision) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let mut config = ServeConfig::new(&args.detector.weights)
        .detector(options)
        .batching(
            args.max_batch as usize,
            Duration::from_millis(args.max_wait_ms),
        )
        .queue(args.queue as usize)
        .max_body(args.max_body);
    config.model = args.detector.model.clone();
    config.polarity = args.detector.polarity.into();
    config.body_timeout = Duration::from_secs(args.body_timeout_s);
    config.header_timeout = Duration::from_secs(args.header_timeout_s);
    config.max_video_seconds = args.max_video_seconds;
    config.threads = args.threads.map(|t| t as usize);
    let server = match Server::open(config) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    for note in &server.card().notes {
        deepfake::note(note);
    }
    // Decoding runs on tokio's blocking threads: a few, kept, so that glibc does not give
    // each new thread an arena of its own to hold freed memory in (resident memory then
    // stepped up under load: docs/production.md, "Resident memory").
    let blocking = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(blocking)
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: listening on {}: {e}", args.addr);
                return ExitCode::from(2);
            }
        };
        let bound = listener.local_addr().map_or(args.addr, |a| a);
        // The line a script waits for (with --addr 127.0.0.1:0, the port chosen).
        eprintln!("listening on http://{bound}");
        match server.serve(listener, df_serve::shutdown_signal()).await {
            Ok(()) => {
                eprintln!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: serving on {bound}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
