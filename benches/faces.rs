//! Face detection throughput: df-face's MTCNN on a set of images (decoded before timing),
//! images/s and faces/s, beside facenet-pytorch's MTCNN on the same files and threads
//! (`benches/peers/faces_facenet.py`; `benches/faces.sh` runs both).
//!
//! ```text
//! cargo bench --bench faces -- --name lfw DIR...   # every image of the folders
//! ```
//! Options: `--name NAME` (the label of the line), `--threads N` (default
//! `$DF_BENCH_THREADS`, else the cores this process may use), `--min-time S` (default 3),
//! `--limit N` (the first N images, by name). Prints one JSON line.

use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut name, mut threads, mut min_time, mut limit) =
        ("images".to_string(), None, 3.0, usize::MAX);
    let mut dirs = Vec::new();
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{what} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--name" => name = value("--name")?,
            "--threads" => {
                threads = Some(
                    value("--threads")?
                        .parse::<i32>()
                        .map_err(|e| e.to_string())?,
                )
            }
            "--min-time" => {
                min_time = value("--min-time")?
                    .parse::<f64>()
                    .map_err(|e| e.to_string())?
            }
            "--limit" => {
                limit = value("--limit")?
                    .parse::<usize>()
                    .map_err(|e| e.to_string())?
            }
            d => dirs.push(PathBuf::from(d)),
        }
    }
    let threads = threads.unwrap_or_else(|| match std::env::var("DF_BENCH_THREADS") {
        Ok(v) => v.trim().parse().unwrap_or(1),
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get() as i32),
    });
    tch::set_num_threads(threads);
    let mut paths = Vec::new();
    for d in &dirs {
        for e in std::fs::read_dir(d).map_err(|e| format!("{}: {e}", d.display()))? {
            let p = e.map_err(|e| e.to_string())?.path();
            if df_data::has_image_extension(&p) {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths.truncate(limit);
    if paths.is_empty() {
        return Err(format!("no image in {dirs:?}"));
    }
    let images: Vec<_> = paths
        .iter()
        .map(|p| df_data::load_rgb(p).map_err(|e| format!("{}: {e:?}", p.display())))
        .collect::<Result<_, _>>()?;
    let weights = df_face::default_weights_path().map_err(|e| e.to_string())?;
    let mtcnn = df_face::Mtcnn::load(&weights, df_face::MtcnnConfig::default(), tch::Device::Cpu)
        .map_err(|e| e.to_string())?;
    // One pass to warm up, then whole passes until min_time.
    for im in &images {
        mtcnn.detect(im).map_err(|e| e.to_string())?;
    }
    let start = Instant::now();
    let (mut n, mut faces) = (0usize, 0usize);
    while n == 0 || start.elapsed().as_secs_f64() < min_time {
        for im in &images {
            faces += mtcnn.detect(im).map_err(|e| e.to_string())?.len();
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let (w, h) = images[0].dimensions();
    println!(
        "{}",
        serde_json::json!({
            "name": name, "impl": "df-face", "threads": threads, "images": images.len(),
            "first_size": [w, h], "images_per_second": n as f64 / secs,
            "faces_per_second": faces as f64 / secs,
        })
    );
    Ok(())
}
