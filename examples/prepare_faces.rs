//! Turns a folder of photos and videos into a folder of face crops to train on: every
//! photo's face (the largest, or every face with `--every-face`) found by df-face's MTCNN
//! and cropped by `df_face::crop_faces`, the code that scores photos too, so training and
//! scoring see faces the same way; a video gives the faces of its frames (`--fps` a
//! second, at most `--max-frames`, through ffmpeg), `<name>_f<frame>.png`.
//!
//! ```text
//! cargo run --release --example prepare_faces -- --input my-photos --out my-faces
//! my-faces: 1180 photos and videos, 1174 with a face (1174 crops), 6 skipped (my-faces/prepare-faces.json)
//! ```
//!
//! The input's sub-folders (`real/`, `fake/` ...) are kept, so the output is an image
//! folder `train` reads. Each crop is `<photo's name>.png` (`<name>_face<k>.png` with
//! `--every-face`), written atomically. `prepare-faces.json` in `--out` records the crop
//! and detector settings and the video sampling, every photo or video done and every one
//! skipped with the reason (no face, unreadable). It is saved as the work goes, so an
//! interrupted run continues where it stopped when started again with the same options
//! (a source whose crops were deleted since is cropped again); other settings for the same
//! `--out` are refused, and so is an `--out` inside `--input` (on canonical paths). The
//! input is walked as `train` walks it: each real folder once whatever links point where
//! (`self -> .` ends), and files that are not regular (a FIFO, a link to `/dev/zero`) are
//! skipped with the reason, never opened. Photos are spread over `--threads`
//! workers (default: the cores), each with its own detector.

#[path = "predict/video_args.rs"]
mod video_args;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use video_args::VideoArgs;

use anyhow::{bail, Context, Result};
use clap::Parser;
use deepfake::face::{crop_faces, CropConfig, FaceSelect, Mtcnn, MtcnnConfig};
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug)]
#[command(about = "Face crops of a folder of photos, for training")]
struct Args {
    /// The photos (searched recursively; sub-folders such as real/ and fake/ are kept).
    #[arg(long)]
    input: PathBuf,
    /// Where the crops go (created; not inside --input).
    #[arg(long)]
    out: PathBuf,
    /// Side of the crops in pixels.
    #[arg(long, default_value_t = 256)]
    size: u32,
    /// Growth of the face's box, as a fraction of its side.
    #[arg(long, default_value_t = 0.3)]
    margin: f32,
    /// Keep the box's proportions (stretched to the square crop) instead of squaring it.
    #[arg(long)]
    no_square: bool,
    /// Turn each crop so that the eyes are level.
    #[arg(long)]
    align: bool,
    /// Crop every face of a photo, not only the largest.
    #[arg(long)]
    every_face: bool,
    /// Leave out faces whose box is smaller than this, in pixels.
    #[arg(long, default_value_t = 0.0)]
    min_face_size: f32,
    /// Worker threads (default: the cores this process may use).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    video: VideoArgs,
    /// The MTCNN weights (default: the set-up's, df_face::default_weights_path).
    #[arg(long)]
    weights: Option<PathBuf>,
}

const MANIFEST: &str = "prepare-faces.json";

/// What `prepare-faces.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    settings: serde_json::Value,
    /// Photo (relative to --input) → its crops (relative to --out).
    done: BTreeMap<String, Vec<String>>,
    /// Photo → why it has no crop.
    skipped: BTreeMap<String, String>,
}

fn settings(args: &Args, crop: &CropConfig) -> serde_json::Value {
    serde_json::json!({
        "detector": "mtcnn (facenet-pytorch 2.6.0 weights)",
        "detector_settings": {"min_face_size": 20, "thresholds": [0.6, 0.7, 0.7], "factor": 0.709},
        "crop": {
            "size": crop.size, "margin": short(crop.margin), "square": crop.square,
            "min_face_size": short(crop.min_face_size), "align": crop.align,
            "select": if args.every_face { "all" } else { "largest" },
        },
        "video_frames": {
            "per_second": args.video.fps, "max_frames": args.video.max_frames, "evenly": args.video.evenly,
        },
    })
}

/// An option's value as the user wrote it (f32 → f64 would add digits).
fn short(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

fn save(out: &Path, manifest: &Manifest) -> Result<()> {
    let text = serde_json::to_string_pretty(manifest)?;
    deepfake::io::write_atomic(&out.join(MANIFEST), text.as_bytes())
        .with_context(|| format!("writing {}", out.join(MANIFEST).display()))
}

/// The photos and videos under `input`, sorted, walked as `train`, `evaluate` and
/// `predict` walk folders (`df_data::Walker`): each real folder read once and each file
/// taken once whatever links lead to it (`self -> .` ends), hidden entries left out; and
/// the files with photo or video names left out, with the reason (not a regular file: a
/// FIFO, a link to `/dev/zero`; a link to nothing; another path to a file taken).
fn photos(input: &Path) -> Result<(Vec<PathBuf>, Vec<deepfake::data::SkipReport>)> {
    let wanted =
        |p: &Path| deepfake::data::has_image_extension(p) || deepfake::data::has_video_extension(p);
    let walked = deepfake::data::Walker::new(true).walk(input)?;
    let found = walked.files.into_iter().filter(|p| wanted(p)).collect();
    let skipped = walked
        .skipped
        .into_iter()
        .filter(|r| wanted(&r.path))
        .collect();
    Ok((found, skipped))
}

/// Whether every crop of a source recorded as done is still there, as a regular file.
fn crops_present(out: &Path, crops: &[String]) -> bool {
    crops
        .iter()
        .all(|c| std::fs::metadata(out.join(c)).is_ok_and(|m| m.is_file()))
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Writes `image` as PNG to `out/name`, atomically.
fn write_png(out: &Path, name: &str, image: &image::RgbImage) -> Result<()> {
    let mut png = Vec::new();
    image.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)?;
    let path = out.join(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    deepfake::io::write_atomic(&path, &png).with_context(|| format!("writing {}", path.display()))
}

/// The file name of a crop: the source's path without its extension, then `_fNNN` for a
/// video's frame NNN (three digits at least), then `_faceK` for face K with `--every-face`.
fn crop_name(stem: &str, frame: Option<usize>, face: Option<usize>) -> String {
    let frame = frame.map(|f| format!("_f{f:03}")).unwrap_or_default();
    let face = face.map(|k| format!("_face{k}")).unwrap_or_default();
    format!("{stem}{frame}{face}.png")
}

/// A source's path relative to `--input`, without its extension.
fn stem(rel: &str) -> String {
    Path::new(rel)
        .with_extension("")
        .to_string_lossy()
        .into_owned()
}

/// Whether `text` is how [`crop_name`] writes some frame number.
fn is_frame_number(text: &str) -> bool {
    text.len() >= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text.len() == 3 || !text.starts_with('0'))
}

/// Two sources whose crops could have the same file name, and that name (frame 0's for two
/// videos): two photos or two videos with the same path but for the extension, or a photo
/// named like a video's frame (`clip_f000.jpg` beside `clip.mp4`).
/// A photo and a video with the same stem do not clash (`a.png`, `a_f000.png`).
fn name_clash<'a>(
    sources: &'a [PathBuf],
    input: &Path,
    every_face: bool,
) -> Option<(&'a Path, &'a Path, String)> {
    let face = every_face.then_some(0);
    let (mut photos, mut videos) = (BTreeMap::new(), BTreeMap::new());
    for p in sources {
        let stem = stem(&relative(p, input));
        let video = deepfake::data::has_video_extension(p);
        let seen = if video { &mut videos } else { &mut photos };
        if let Some(other) = seen.insert(stem.clone(), p.as_path()) {
            return Some((
                other,
                p.as_path(),
                crop_name(&stem, video.then_some(0), face),
            ));
        }
    }
    for (stem, photo) in &photos {
        let Some((video_stem, number)) = stem.rsplit_once("_f") else {
            continue;
        };
        if let (true, Some(video)) = (is_frame_number(number), videos.get(video_stem)) {
            return Some((video, photo, crop_name(stem, None, face)));
        }
    }
    None
}

/// The crops of one photo or video (its sampled frames), written; their paths relative to
/// `out`, or why there is none.
fn prepare(
    mtcnn: &Mtcnn,
    crop: &CropConfig,
    sampling: &deepfake::data::FrameSampling,
    source: &Path,
    rel: &str,
    out: &Path,
) -> Result<std::result::Result<Vec<String>, String>> {
    let video = deepfake::data::has_video_extension(source);
    // A video's frames are read one at a time as ffmpeg streams them (none kept), scaled
    // down when larger than df_data::MAX_FRAME_SIDE: crops are taken from them.
    let pictures: Box<dyn Iterator<Item = deepfake::data::Result<image::RgbImage>>> = if video {
        match deepfake::data::open_video(source, sampling) {
            Ok(frames) => Box::new(frames.map(|f| f.map(|f| f.image))),
            Err(e) => return Ok(Err(format!("unreadable video: {e}"))),
        }
    } else {
        match deepfake::data::load_rgb(source) {
            Ok(image) => Box::new(std::iter::once(Ok(image))),
            // "unreadable: " said once, also when the reason says it already.
            Err(why) => {
                let why = why.to_string();
                let why = why.strip_prefix("unreadable: ").unwrap_or(&why);
                return Ok(Err(format!("unreadable: {why}")));
            }
        }
    };
    let stem = stem(rel);
    let (mut written, mut found) = (Vec::new(), 0);
    for (f, picture) in pictures.enumerate() {
        let picture = match picture {
            Ok(p) => p,
            Err(e) => {
                // As if nothing was read: the crops of its earlier frames go.
                for name in &written {
                    let _ = std::fs::remove_file(out.join(name));
                }
                return Ok(Err(format!("unreadable video: {e}")));
            }
        };
        let picture = &picture;
        let faces = mtcnn
            .detect(picture)
            .with_context(|| format!("detecting faces in {}", source.display()))?;
        found += faces.len();
        for (k, c) in crop_faces(picture, &faces, crop)?.iter().enumerate() {
            let name = crop_name(
                &stem,
                video.then_some(f),
                (crop.select == FaceSelect::All).then_some(k),
            );
            write_png(out, &name, &c.image)?;
            written.push(name);
        }
    }
    if written.is_empty() {
        return Ok(Err(if found == 0 {
            "no face found".into()
        } else {
            format!("{found} face(s), none of --min-face-size")
        }));
    }
    Ok(Ok(written))
}

fn run() -> Result<()> {
    let args = Args::parse();
    let crop = CropConfig {
        size: args.size,
        margin: args.margin,
        square: !args.no_square,
        min_face_size: args.min_face_size,
        select: if args.every_face {
            FaceSelect::All
        } else {
            FaceSelect::Largest
        },
        align: args.align,
    };
    // Every option is checked before anything is written.
    crop.validate()?;
    if args.threads == Some(0) {
        bail!("option --threads: at least 1");
    }
    let input = args
        .input
        .canonicalize()
        .with_context(|| format!("option --input: {}", args.input.display()))?;
    if !input.is_dir() {
        bail!("option --input: {} is not a folder", input.display());
    }
    // On canonical paths: `other/../input/faces`, or a link to the input, is inside too.
    if deepfake::io::is_inside(&args.out, &input)
        .with_context(|| format!("option --out: {}", args.out.display()))?
    {
        bail!(
            "option --out: {} is inside --input {} (its crops would be read as photos)",
            args.out.display(),
            args.input.display()
        );
    }
    let weights = match &args.weights {
        Some(w) => w.clone(),
        None => deepfake::face::default_weights_path()?,
    };
    // The weights are checked here; each worker loads its own detector (tch modules are
    // not shared between threads).
    drop(Mtcnn::load(
        &weights,
        MtcnnConfig::default(),
        deepfake::tch::Device::Cpu,
    )?);
    let sampling = args.video.sampling()?;
    let (images, left_out) = photos(&input)?;
    if let Some((a, b, name)) = name_clash(&images, &input, args.every_face) {
        // Quoted as Rust quotes them: names that differ only in bytes that are not
        // UTF-8 print differently.
        bail!("{a:?} and {b:?} would both be cropped to {name}: rename one");
    }
    let wanted = settings(&args, &crop);
    let mut manifest = match deepfake::io::read_regular_to_string(&args.out.join(MANIFEST)) {
        Ok(text) => {
            let m: Manifest = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: not a prepare-faces manifest",
                    args.out.join(MANIFEST).display()
                )
            })?;
            if m.settings != wanted {
                bail!(
                    "{} holds crops made with other settings ({}); these are {}: use another --out",
                    args.out.display(),
                    m.settings,
                    wanted
                );
            }
            m
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A fresh start writes only into an empty folder (or a new one): crops are
            // never written over files prepare_faces did not record making.
            let first = std::fs::read_dir(&args.out)
                .ok()
                .and_then(|mut entries| entries.next())
                .and_then(|e| e.ok());
            if let Some(entry) = first {
                bail!(
                    "--out {} holds files ({:?} ...) and no {MANIFEST}: prepare_faces writes \
                     only into an empty folder or one it made, never over files it did not \
                     record; choose another --out",
                    args.out.display(),
                    entry.file_name()
                );
            }
            Manifest {
                settings: wanted,
                ..Manifest::default()
            }
        }
        Err(e) => {
            return Err(e).with_context(|| format!("reading {}", args.out.join(MANIFEST).display()))
        }
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    // A source recorded as done whose crops were deleted since is done again.
    let before = manifest.done.len();
    manifest
        .done
        .retain(|_, crops| crops_present(&args.out, crops));
    if manifest.done.len() < before {
        eprintln!(
            "note: {} photos or videos recorded in {} have crops missing: cropped again",
            before - manifest.done.len(),
            args.out.join(MANIFEST).display()
        );
    }
    // What the walk left out (a FIFO, a link to /dev/zero ...) is recorded as skipped.
    for report in left_out {
        let rel = relative(&report.path, &input);
        if !manifest.done.contains_key(&rel) {
            manifest.skipped.insert(rel, report.reason.to_string());
        }
    }
    let todo: Vec<(PathBuf, String)> = images
        .iter()
        .map(|p| (p.clone(), relative(p, &input)))
        .filter(|(_, rel)| !manifest.done.contains_key(rel) && !manifest.skipped.contains_key(rel))
        .collect();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(todo.len().max(1));
    deepfake::tch::set_num_threads(1);
    let bar = indicatif::ProgressBar::new(todo.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} photos {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let next = AtomicUsize::new(0);
    let (send, receive) = mpsc::channel();
    let out = args.out.clone();
    let outcome = std::thread::scope(|scope| -> Result<()> {
        let mut workers = Vec::new();
        for _ in 0..threads {
            let (send, next, todo, out, crop, weights, sampling) =
                (send.clone(), &next, &todo, &out, &crop, &weights, &sampling);
            workers.push(scope.spawn(move || -> Result<()> {
                let mtcnn =
                    Mtcnn::load(weights, MtcnnConfig::default(), deepfake::tch::Device::Cpu)?;
                let mtcnn = &mtcnn;
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((photo, rel)) = todo.get(i) else {
                        return Ok(());
                    };
                    let result = prepare(mtcnn, crop, sampling, photo, rel, out)?;
                    if send.send((rel.clone(), result)).is_err() {
                        return Ok(());
                    }
                }
            }));
        }
        drop(send);
        for (n, (rel, result)) in receive.iter().enumerate() {
            match result {
                Ok(crops) => {
                    manifest.done.insert(rel, crops);
                }
                Err(why) => {
                    manifest.skipped.insert(rel, why);
                }
            }
            bar.inc(1);
            if n % 50 == 49 {
                save(&out, &manifest)?;
            }
        }
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a worker thread panicked"))??;
        }
        Ok(())
    });
    bar.finish_and_clear();
    // What was done is recorded even when a worker failed.
    save(&args.out, &manifest)?;
    outcome?;
    let crops: usize = manifest.done.values().map(Vec::len).sum();
    println!(
        "{}: {} photos and videos, {} with a face ({crops} crops), {} skipped ({})",
        args.out.display(),
        manifest.done.len() + manifest.skipped.len(),
        manifest.done.len(),
        manifest.skipped.len(),
        args.out.join(MANIFEST).display()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run())
}
