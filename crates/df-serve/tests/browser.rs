//! The page in a real browser: Debian's chromium driven over WebDriver (chromedriver)
//! uploads a photo and a short video, reads the verdict and the number of face boxes, and
//! keeps a screenshot of each under `target/serve-browser/` (a CI artefact).
//!
//! The photo is an lfw image from `../shared/data/lfw-faceswap/val/real/` when there is
//! one, else the repository's committed `fuzz/seeds/image_decode/rgb.jpg`; the video is
//! made from it with ffmpeg. Skipped, with a loud message, only where chromium or
//! chromedriver cannot be found (`.ci/run` installs them).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use df_detect::{DetectorOptions, FaceMode};
use df_serve::{ServeConfig, Server};
use fantoccini::{ClientBuilder, Locator};

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An lfw photo when ../shared is there, else the committed test image.
fn photo() -> PathBuf {
    let shared = repo().join("../shared/data/lfw-faceswap/val/real");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&shared)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    names.sort();
    names
        .into_iter()
        .next()
        .unwrap_or_else(|| repo().join("fuzz/seeds/image_decode/rgb.jpg"))
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let dir = target.join("serve-browser");
    std::fs::create_dir_all(&dir).expect("target/serve-browser");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_scores_a_dropped_photo_and_video_in_chromium() {
    let (Some(chromium), Some(chromedriver)) = (
        which(&["chromium", "chromium-browser", "google-chrome"]),
        which(&["chromedriver"]),
    ) else {
        eprintln!(
            "\n\n!!!!!! SKIPPED the browser test: chromium and chromedriver are not both on \
             PATH (apt-get install -y chromium chromium-driver; .ci/run does) !!!!!!\n\n"
        );
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = checkpoint(tmp.path());
    let photo = photo();
    let clip = tmp.path().join("clip.mp4");
    let ffmpeg = df_data::ffmpeg_path(&clip).expect("ffmpeg");
    let made = Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-y", "-loop", "1", "-i"])
        .arg(&photo)
        .args([
            "-t",
            "2",
            "-r",
            "5",
            "-vf",
            "scale=trunc(iw/2)*2:trunc(ih/2)*2",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&clip)
        .status()
        .expect("ffmpeg");
    assert!(made.success(), "making the video");

    // Faces scored, as for a checkpoint trained on face crops.
    let options = DetectorOptions::default().with_faces(FaceMode::On);
    let server = Server::open(ServeConfig::new(&weights).detector(options)).expect("server");
    // What the API itself says of the two files: the page must show the same.
    let router = server.router();
    let mut expected = Vec::new();
    for file in [&photo, &clip] {
        let (_, _, body) = call(&router, score(std::fs::read(file).expect("read"))).await;
        let v = json(&body);
        let boxes = match v["kind"].as_str() {
            Some("video") => v["frame_faces"]
                .as_array()
                .expect("frame_faces")
                .iter()
                .map(|f| f.as_array().map_or(0, Vec::len))
                .sum(),
            _ => v["faces"].as_array().map_or(0, Vec::len),
        };
        expected.push((v["label"].as_str().expect("label").to_string(), boxes));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let _driver = Driver(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver"),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1100,1300"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut client = None;
    for _ in 0..200 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let client = client.expect("a WebDriver session with chromium");
    let shots = screenshots();
    for ((file, shot), (label, boxes)) in [(&photo, "photo.png"), (&clip, "video.png")]
        .into_iter()
        .zip(expected)
    {
        client
            .goto(&format!("http://{addr}/"))
            .await
            .expect("the page");
        client
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::Css("#card dd"))
            .await
            .expect("the model card shown");
        let input = client.find(Locator::Id("file")).await.expect("file input");
        input
            .send_keys(&file.canonicalize().expect("path").display().to_string())
            .await
            .expect("upload");
        let verdict = client
            .wait()
            .at_most(Duration::from_secs(120))
            .for_element(Locator::Css("#verdict[data-state='done']"))
            .await
            .expect("a verdict on the page");
        let text = verdict.text().await.expect("text");
        let count = client
            .find(Locator::Id("box-count"))
            .await
            .expect("box count")
            .text()
            .await
            .expect("text");
        let png = client.screenshot().await.expect("screenshot");
        std::fs::write(shots.join(shot), png).expect("screenshot file");
        eprintln!(
            "{}: \"{text}\", {count} box(es); screenshot {}",
            file.display(),
            shots.join(shot).display()
        );
        let words = match label.as_str() {
            "fake" => "Likely fake",
            "real" => "Likely real",
            _ => "No face found",
        };
        assert!(
            text.starts_with(words),
            "{}: {text} (the API said {label})",
            file.display()
        );
        assert_eq!(count, boxes.to_string(), "{}", file.display());
        let card = client
            .find(Locator::Id("card"))
            .await
            .expect("card")
            .text()
            .await
            .expect("text");
        assert!(
            card.contains("meso4") && card.contains("found and scored"),
            "{card}"
        );
    }
    client.close().await.expect("close the session");
    let _ = stop.send(());
    serving.await.expect("task").expect("served");
}
