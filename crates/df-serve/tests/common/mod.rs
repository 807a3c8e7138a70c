//! What the service's tests share: a tiny checkpoint, pictures, requests.
#![allow(dead_code)] // not every test binary uses every helper

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A meso4 checkpoint (32×32 input) with seeded random weights, at `dir/m.safetensors`.
pub fn checkpoint(dir: &Path) -> PathBuf {
    let path = dir.join("m.safetensors");
    tch::manual_seed(11);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let options = df_models::BuildOptions::default().with_input_size(32, 32);
    let model = df_models::build("meso4", &vs.root(), &options).expect("meso4");
    df_models::checkpoint::save_checkpoint(&vs, model.as_ref(), &path).expect("save");
    path
}

/// A `w`×`h` PNG whose pixels depend on `seed`.
pub fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let image = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7) as u8 ^ seed,
            (y * 5) as u8,
            seed.wrapping_mul(13) ^ (x + y) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// A JPEG of the same picture.
pub fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let image = image::load_from_memory(&png(w, h, seed)).expect("decode");
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg");
    out.into_inner()
}

/// The answer to one request through the router (no socket).
pub async fn call(router: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

/// `POST /v1/score` with `bytes` as the body.
pub fn score(bytes: Vec<u8>) -> Request<Body> {
    Request::post("/v1/score")
        .body(Body::from(bytes))
        .expect("request")
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// `POST /v1/score` as a multipart form with the file `name`.
pub fn multipart(name: &str, bytes: &[u8]) -> Request<Body> {
    let boundary = "----df-serve-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Request::post("/v1/score")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request")
}

/// Makes `dir/name` with ffmpeg from the `lavfi` source `source` (as tests/edges_video.rs).
pub fn video(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    let ffmpeg = df_data::ffmpeg_path(&path).expect("ffmpeg: scripts/setup.sh provides one");
    let mut url = std::ffi::OsString::from("file:");
    url.push(path.as_os_str());
    let made = Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source])
        .args(["-pix_fmt", "yuv420p"])
        .arg(url)
        .status()
        .expect("ffmpeg");
    assert!(made.success(), "making {name}");
    path
}

/// One value of the metrics text (`name` with its labels, as written).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}
