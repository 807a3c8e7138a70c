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
//! skipped with the reason (no face, unreadable), and each crop's face box and five
//! landmarks in the crop's pixels (what `train --pseudo-fakes sbi` blends about, so that it
//! finds no face again). It is saved as the work goes, so an
//! interrupted run continues where it stopped when started again with the same options
//! (a source whose crops were deleted since is cropped again); other settings for the same
//! `--out` are refused, and so is an `--out` inside `--input` (on canonical paths). The
//! input is walked as `train` walks it: each real folder once whatever links point where
//! (`self -> .` ends), and files that are not regular (a FIFO, a link to `/dev/zero`) are
//! skipped with the reason, never opened. Photos are spread over `--threads`
//! workers (default: the cores), each with its own detector.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use deepfake::cli::VideoArgs;
use deepfake::detect::crops::{self, CropRun, Manifest, MANIFEST};
use deepfake::face::{CropConfig, FaceSelect, Mtcnn, MtcnnConfig};

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
    // The weights are checked here; each worker loads its own detector.
    drop(Mtcnn::load(
        &weights,
        MtcnnConfig::default(),
        deepfake::tch::Device::Cpu,
    )?);
    let sampling = args.video.sampling()?;
    let (sources, left_out) = crops::find_sources(&input)?;
    if let Some(clash) = crops::name_clash(&sources, &input, args.every_face) {
        bail!("{clash}");
    }
    let mut manifest = Manifest::open(&args.out, crops::settings(&crop, &sampling))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    // A source recorded as done whose crops were deleted since is done again.
    let missing = manifest.forget_missing(&args.out);
    if missing > 0 {
        eprintln!(
            "note: {missing} photos or videos recorded in {} have crops missing: cropped again",
            args.out.join(MANIFEST).display()
        );
    }
    // What the walk left out (a FIFO, a link to /dev/zero ...) is recorded as skipped.
    manifest.skip_left_out(left_out, &input);
    let todo = manifest.to_do(&sources, &input);
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
    let job = CropRun {
        weights: &weights,
        crop: &crop,
        sampling: &sampling,
        out: &args.out,
        threads,
    };
    let outcome = job.run(&todo, &mut manifest, &mut || bar.inc(1));
    bar.finish_and_clear();
    outcome?;
    println!(
        "{}: {} photos and videos, {} with a face ({} crops), {} skipped ({})",
        args.out.display(),
        manifest.done.len() + manifest.skipped.len(),
        manifest.done.len(),
        manifest.crops(),
        manifest.skipped.len(),
        args.out.join(MANIFEST).display()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run())
}
