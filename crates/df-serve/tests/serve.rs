//! The service through its router (no socket) and on a loopback listener: each route and
//! status, batching, the queue, bad input, a graceful stop.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use df_detect::{Detector, DetectorOptions};
use df_serve::{ServeConfig, Server};

fn open(config: ServeConfig) -> Server {
    Server::open(config).expect("server")
}

/// p(fake) of `bytes` as df-detect's `Detector` (what `predict` uses) scores the file.
fn reference(weights: &std::path::Path, name: &str, bytes: &[u8]) -> f64 {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    let detector = Detector::open(weights, &DetectorOptions::default()).expect("detector");
    detector
        .score_path(&path)
        .expect("score")
        .p_fake()
        .expect("a score")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_photo_is_scored_as_predict_scores_it_raw_or_multipart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let server = open(ServeConfig::new(&weights));
    let router = server.router();
    for (name, bytes) in [("a.png", png(40, 36, 1)), ("b.jpg", jpeg(50, 30, 2))] {
        let expected = reference(&weights, name, &bytes);
        let (status, headers, body) = call(&router, score(bytes.clone())).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert!(headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/json"));
        let v = json(&body);
        let got = v["p_fake"].as_f64().expect("p_fake");
        assert!((got - expected).abs() < 1e-6, "{name}: {got} vs {expected}");
        let label = if expected >= 0.5 { "fake" } else { "real" };
        assert_eq!(v["label"], label);
        assert_eq!(v["kind"], "image");
        assert!(v.get("faces").is_none(), "whole pictures: {v}");
        assert!(v["timings"]["total_ms"].as_f64().expect("total") >= 0.0);
        assert!(v["timings"]["inference_ms"].as_f64().is_some(), "{v}");

        let (status, _, body) = call(&router, multipart(name, &bytes)).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let m = json(&body);
        assert_eq!(m["file"], name);
        assert!((m["p_fake"].as_f64().expect("p") - expected).abs() < 1e-6);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_model_card_metrics_and_the_page_answer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let server = open(ServeConfig::new(&weights).queue(7));
    let router = server.router();

    let (status, _, body) = call(&router, get("/healthz")).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"ok\n"[..]));

    let (status, _, body) = call(&router, get("/v1/model")).await;
    assert_eq!(status, StatusCode::OK);
    let card = json(&body);
    assert_eq!(card["model"], "meso4");
    // The family: MesoNet's (meso4 is its own family in the registry).
    assert_eq!(card["family"], "meso4");
    // The digest, against coreutils' sha256sum.
    let sum = std::process::Command::new("sha256sum")
        .arg(&weights)
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout);
    assert_eq!(
        card["weights"]["sha256"],
        sum.split_whitespace().next().expect("sum")
    );
    assert_eq!(
        card["weights"]["bytes"],
        std::fs::metadata(&weights).expect("meta").len()
    );
    // The parameters, counted from the checkpoint's own tensors.
    let file = df_train::run_files::read_safetensors(&weights).expect("read");
    let total: i64 = file.tensors.values().map(|t| t.numel() as i64).sum();
    assert_eq!(card["parameters"]["total"], total);
    assert_eq!(card["input"]["height"], 32);
    assert_eq!(card["input"]["width"], 32);
    assert_eq!(card["faces"]["scored"], false);
    assert_eq!(card["serving"]["queue"], 7);
    assert!(card["run"].is_null(), "no run beside it: {card}");

    let (status, headers, body) = call(&router, get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let page = String::from_utf8_lossy(&body);
    assert!(
        page.contains("<script src=\"/app.js\">") && !page.contains("http"),
        "{page}"
    );
    for asset in ["/app.js", "/style.css"] {
        let (status, _, body) = call(&router, get(asset)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!body.is_empty());
    }

    let (status, _, _) = call(&router, score(png(33, 33, 9))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&router, score(b"hello".to_vec())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, headers, body) = call(&router, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain"));
    let text = String::from_utf8_lossy(&body);
    assert_eq!(
        metric(
            &text,
            "deepfake_serve_requests_total{route=\"score\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "deepfake_serve_requests_total{route=\"score\",status=\"415\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "deepfake_serve_request_duration_seconds_count{route=\"score\"}"
        ),
        2.0
    );
    assert_eq!(metric(&text, "deepfake_serve_batch_size_count"), 1.0);
    assert_eq!(metric(&text, "deepfake_serve_queue_depth"), 0.0);
    assert_eq!(metric(&text, "deepfake_serve_queue_capacity"), 7.0);
}

/// Waits (without a time limit on the outcome) until the queue holds `n` jobs.
async fn queued(server: &Server, n: f64) {
    for _ in 0..6000 {
        if metric(&server.metrics_text(), "deepfake_serve_queue_depth") == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the queue never held {n} jobs:\n{}", server.metrics_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_are_scored_in_one_batch_with_the_scores_of_single_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let server = open(ServeConfig::new(&weights).batching(8, Duration::from_millis(5)));
    let router = server.router();
    let pictures: Vec<Vec<u8>> = (0..5).map(|i| png(32 + i, 40, i as u8 * 40)).collect();
    let hold = server.hold_inference();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in pictures.iter().enumerate() {
        let (router, p) = (router.clone(), p.clone());
        tasks.spawn(async move { (i, call(&router, score(p)).await) });
    }
    // One job taken by the held thread, four waiting.
    queued(&server, 4.0).await;
    drop(hold);
    let mut batched = vec![0.0; pictures.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, (status, _, body)) = done.expect("task");
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let v = json(&body);
        assert_eq!(v["batch"], 5, "{v}");
        batched[i] = v["p_fake"].as_f64().expect("p");
    }
    let text = server.metrics_text();
    assert_eq!(
        metric(&text, "deepfake_serve_batch_size_count"),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "deepfake_serve_batch_size_bucket{le=\"4\"}"),
        0.0
    );
    assert_eq!(
        metric(&text, "deepfake_serve_batch_size_bucket{le=\"8\"}"),
        1.0
    );
    assert_eq!(metric(&text, "deepfake_serve_batch_size_sum"), 5.0);
    // Each picture's score in the batch is its score alone (no mixing of rows).
    for (i, p) in pictures.iter().enumerate() {
        let (_, _, body) = call(&router, score(p.clone())).await;
        let alone = json(&body)["p_fake"].as_f64().expect("p");
        assert!(
            (alone - batched[i]).abs() < 1e-6,
            "{i}: {alone} vs {}",
            batched[i]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_answers_503_with_retry_after_and_the_rest_are_scored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let server = open(
        ServeConfig::new(&weights)
            .queue(2)
            .batching(1, Duration::ZERO),
    );
    let router = server.router();
    let hold = server.hold_inference();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..4u8 {
        let router = router.clone();
        tasks.spawn(async move { call(&router, score(png(32, 32, i))).await });
    }
    // While the thread is held nothing is scored: the first answer is a refusal.
    let (status, headers, body) = tasks.join_next().await.expect("one").expect("task");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    assert!(json(&body)["error"]
        .as_str()
        .expect("error")
        .contains("queue is full"));
    drop(hold);
    let mut ok = 0;
    while let Some(done) = tasks.join_next().await {
        let (status, _, _) = done.expect("task");
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
        ok += usize::from(status == StatusCode::OK);
    }
    // At most the queue and the job the thread held.
    assert!((2..=3).contains(&ok), "{ok} scored");
    let text = server.metrics_text();
    let refused = metric(
        &text,
        "deepfake_serve_requests_total{route=\"score\",status=\"503\"}",
    );
    assert_eq!(refused as usize + ok, 4, "{text}");
}

/// A PNG that declares `w`×`h` pixels in its header and holds almost nothing.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01";
    out.extend_from_slice(&((idat.len() - 4) as u32).to_be_bytes());
    out.extend_from_slice(idat);
    out.extend_from_slice(&crc32fast::hash(idat).to_be_bytes());
    out
}

/// A zip "bomb": one entry of 50 MB of zeros, deflated (about 50 kB).
fn zip_bomb() -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let zeros = tmp.path().join("zeros");
    std::fs::write(&zeros, vec![0u8; 50 << 20]).expect("zeros");
    let out = tmp.path().join("bomb.zip");
    let made = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED); \
             z.write(sys.argv[1], 'zeros'); z.close()",
        ])
        .arg(&zeros)
        .arg(&out)
        .status()
        .expect("python3");
    assert!(made.success());
    std::fs::read(out).expect("zip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_bodies_get_413_415_422_naming_why_and_the_service_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let server = open(ServeConfig::new(&weights).max_body(1 << 20));
    let router = server.router();
    let photo = jpeg(64, 48, 3);
    let mut cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "over --max-body",
            vec![0xff; (1 << 20) + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit of 1048576",
        ),
        (
            "empty",
            Vec::new(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "empty body",
        ),
        (
            "text",
            b"just some words".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "found text",
        ),
        (
            "pdf",
            b"%PDF-1.4\n%...".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "PDF",
        ),
        (
            "gif",
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "GIF",
        ),
        (
            "truncated jpeg",
            photo[..photo.len() / 2].to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "truncated JPEG",
        ),
        (
            "huge png",
            png_declaring(100_000, 100_000),
            StatusCode::UNPROCESSABLE_ENTITY,
            "declares 100000x100000",
        ),
        (
            "zero-size png",
            png_declaring(0, 10),
            StatusCode::UNPROCESSABLE_ENTITY,
            "does not decode",
        ),
        (
            "png header only",
            png(40, 40, 1)[..60].to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "does not decode",
        ),
        (
            "broken video",
            b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2garbage".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "video does not decode",
        ),
    ];
    let bomb = zip_bomb();
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    cases.push((
        "zip bomb",
        bomb,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "ZIP archive",
    ));
    // The hostile HDF5 files of the edges issue (scripts/fixtures/hostile_h5.py), when made.
    let h5 = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/generated/hostile_h5");
    for entry in std::fs::read_dir(&h5).into_iter().flatten().flatten() {
        let bytes = std::fs::read(entry.path()).expect("h5");
        if entry.path().extension().is_some_and(|e| e == "h5") && bytes.len() < 1 << 20 {
            cases.push((
                "hostile h5",
                bytes,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "HDF5",
            ));
        }
    }
    for (what, bytes, expected, says) in cases {
        for request in [score(bytes.clone()), multipart("x.bin", &bytes)] {
            let (status, _, body) = call(&router, request).await;
            let v = json(&body);
            let message = v["error"].as_str().unwrap_or_default();
            // A multipart form's own overhead can put a body just over the limit.
            assert_eq!(status, expected, "{what}: {v}");
            assert!(message.contains(says), "{what}: {message}");
        }
    }
    let (status, _, body) = call(&router, score(photo)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = call(&router, get("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
}

/// Resident memory of this process, in kB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resident_memory_stays_flat_over_many_requests() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let server = open(ServeConfig::new(&weights));
    let router = server.router();
    let photo = jpeg(120, 100, 5);
    let round = |n: usize| {
        let router = router.clone();
        let photo = photo.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..n {
                let (router, photo) = (router.clone(), photo.clone());
                let bad = i % 5 == 0;
                tasks.spawn(async move {
                    let body = if bad {
                        photo[..photo.len() / 3].to_vec()
                    } else {
                        photo
                    };
                    call(&router, score(body)).await.0
                });
                if tasks.len() >= 8 {
                    tasks.join_next().await;
                }
            }
            while tasks.join_next().await.is_some() {}
        }
    };
    round(300).await;
    let before = rss_kb();
    round(1000).await;
    let after = rss_kb();
    // Leaking even 20 kB a request would add 20 MB.
    assert!(
        after < before + 12_000,
        "resident memory grew from {before} kB to {after} kB over 1000 requests"
    );
}

/// A loopback server on an ephemeral port; its address, the stop trigger, and its task.
async fn loopback(
    server: Server,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_does_not_send_its_body_in_time_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let mut config = ServeConfig::new(&weights);
    config.body_timeout = Duration::from_millis(300);
    let (addr, stop, task) = loopback(open(config)).await;
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket
        .write_all(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n\xff\xd8")
        .await
        .expect("write");
    // Then nothing more: the server answers and closes.
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 0.3 s"), "{answer}");
    let _ = stop.send(());
    task.await.expect("task").expect("served");
}

/// One raw HTTP/1.1 request on a fresh connection; the status line's code and the body.
async fn raw_post(addr: std::net::SocketAddr, body: Vec<u8>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /v1/score HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    socket.write_all(&body).await.expect("write");
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

/// What the server sends on `socket` until it closes the connection (end of file, or a
/// reset), or `None` when the connection is still open after `bound`.
async fn closed_within(socket: &mut tokio::net::TcpStream, bound: Duration) -> Option<Vec<u8>> {
    use std::io::ErrorKind;
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    match tokio::time::timeout(bound, socket.read_to_end(&mut answer)).await {
        Err(_) => None,
        Ok(Ok(_)) => Some(answer),
        Ok(Err(e))
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ) =>
        {
            Some(answer)
        }
        Ok(Err(e)) => panic!("reading the answer: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_sends_half_its_headers_or_nothing_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let mut config = ServeConfig::new(&weights);
    config.header_timeout = Duration::ZERO;
    let refused = Server::open(config.clone()).expect_err("a zero header timeout");
    assert!(
        refused.to_string().contains("--header-timeout-s"),
        "{refused}"
    );
    config.header_timeout = Duration::from_millis(400);
    let timeout = config.header_timeout;
    let (addr, stop, task) = loopback(open(config)).await;
    let mut half = tokio::net::TcpStream::connect(addr).await.expect("connect");
    half.write_all(b"POST /v1/sc").await.expect("write");
    let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // A generous bound (a loaded machine), not a measure of how soon.
    let bound = timeout * 25;
    let (half, silent) = tokio::join!(
        closed_within(&mut half, bound),
        closed_within(&mut silent, bound)
    );
    for (sent, answer) in [("half a request line", half), ("nothing", silent)] {
        let answer = answer.unwrap_or_else(|| {
            panic!("a client that sent {sent} was still connected after {bound:?} (header timeout {timeout:?})")
        });
        let text = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{sent}: {text}"
        );
    }
    // The service goes on.
    let (code, text) = raw_post(addr, png(32, 32, 4)).await;
    assert_eq!(code, 200, "{text}");
    let _ = stop.send(());
    task.await.expect("task").expect("served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_takes_no_new_connection_and_finishes_the_requests_in_flight() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let server = open(ServeConfig::new(&weights));
    let hold = server.hold_inference();
    let metrics = {
        // The metrics outlive the server through its router's state.
        server.router()
    };
    let (addr, stop, task) = loopback(server).await;
    let in_flight = tokio::spawn(raw_post(addr, png(32, 32, 4)));
    // Wait until the request is with the inference thread.
    for _ in 0..6000 {
        let (_, _, body) = call(&metrics, get("/metrics")).await;
        if String::from_utf8_lossy(&body).contains("deepfake_serve_requests_in_flight 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop.send(());
    // The listener is closed: a new connection is refused (or reset) once the stop is seen.
    let mut refused = false;
    for _ in 0..6000 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        refused,
        "the listener still takes connections after the stop"
    );
    assert!(
        !task.is_finished(),
        "stopped before the request in flight was answered"
    );
    drop(hold);
    let (code, text) = in_flight.await.expect("task");
    assert_eq!(code, 200, "{text}");
    task.await.expect("task").expect("served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_folder_gives_the_card_its_audit_and_validation_metrics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    df_data::synthetic::generate(&data, 8, 32, 3).expect("data");
    let run = tmp.path().join("run");
    let mut model = df_train::ModelChoice::new("meso4");
    model.options = df_models::BuildOptions::default().with_input_size(32, 32);
    let mut cfg_data = df_train::DataConfig::new(&data, 8);
    cfg_data.val_split = Some(0.5);
    cfg_data.workers = 0;
    let mut cfg = df_train::ExperimentConfig::new(model, cfg_data, 1, &run);
    cfg.device = df_train::DeviceChoice::Cpu;
    cfg.verbosity = df_train::Verbosity::Quiet;
    df_train::run_experiment(&cfg).expect("a tiny run");
    let server = open(ServeConfig::new(run.join("model.safetensors")));
    let (status, _, body) = call(&server.router(), get("/v1/model")).await;
    assert_eq!(status, StatusCode::OK);
    let card = json(&body);
    let experiment: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("experiment.json")).expect("read"))
            .expect("json");
    assert!(!experiment["audit"].is_null(), "the run records an audit");
    assert_eq!(card["run"]["audit"], experiment["audit"]);
    assert_eq!(card["run"]["epochs"], 1);
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("metrics.json")).expect("read"))
            .expect("json");
    let numbers: Vec<(&String, f64)> = metrics
        .as_object()
        .expect("object")
        .iter()
        .filter_map(|(k, v)| Some((k, v.as_f64()?)))
        .collect();
    assert!(!numbers.is_empty(), "{metrics}");
    for (k, v) in numbers {
        assert_eq!(card["run"]["validation"][k].as_f64(), Some(v), "{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_adds_a_grad_cam_overlay_per_picture_as_df_detect_computes_it() {
    use base64::Engine as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let server = open(ServeConfig::new(&weights));
    let router = server.router();
    let bytes = png(48, 40, 7);
    let request = axum::http::Request::post("/v1/score?explain=1")
        .body(axum::body::Body::from(bytes.clone()))
        .expect("request");
    let (status, _, body) = call(&router, request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v = json(&body);
    let maps = v["explain"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(maps.len(), 1, "one map for a whole picture: {v}");
    // The same overlay as df-detect's own Grad-CAM of the picture.
    let image = image::load_from_memory(&bytes).expect("decode").to_rgb8();
    let detector = Detector::open(&weights, &DetectorOptions::default()).expect("detector");
    let explained = detector.explain_image(&image).expect("explain");
    let expected = explained.maps[0].overlay_png(&image).expect("overlay");
    let got = base64::engine::general_purpose::STANDARD
        .decode(maps[0]["png"].as_str().expect("png"))
        .expect("base64");
    assert_eq!(got, expected);
    assert_eq!(maps[0]["layer"], explained.maps[0].layer.as_str());
    assert_eq!(
        (maps[0]["width"].as_u64(), maps[0]["height"].as_u64()),
        (Some(48), Some(40))
    );
    let overlay = image::load_from_memory(&got).expect("a PNG").to_rgb8();
    assert_eq!(overlay.dimensions(), (48, 40));
    // Without ?explain=1, no maps.
    let (_, _, body) = call(&router, score(bytes)).await;
    assert!(json(&body).get("explain").is_none());
}
