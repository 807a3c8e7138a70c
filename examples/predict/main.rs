//! Scores images with a detector: one JSON line per image on stdout.
//!
//! ```text
//! cargo run --release --example predict -- --model meso4 \
//!     --weights ../shared/data/mesonet/weights/Meso4_DF.h5 \
//!     ../shared/data/mesonet/test_images
//! {"path":"../shared/data/mesonet/test_images/df/df00204.jpg","p_fake":0.9548296332359314,"label":"fake"}
//! {"path":"../shared/data/mesonet/test_images/df/df01254.jpg","p_fake":0.951840877532959,"label":"fake"}
//! {"path":"../shared/data/mesonet/test_images/real/real00240.jpg","p_fake":0.009966189973056316,"label":"real"}
//! {"path":"../shared/data/mesonet/test_images/real/real00772.jpg","p_fake":0.002235960680991411,"label":"real"}
//! ```
//!
//! `--weights` takes a native checkpoint (`.safetensors`, which names its model: `--model`
//! is then optional) or a Keras file (`.h5`: legacy Keras 2 or Keras 3 `.weights.h5`;
//! `--model` required; the top and input size are read from the file, `--input-size`
//! overrides the latter). `--polarity` says
//! what a Keras file's output scores: `real` (default: Keras numbers class folders
//! alphabetically, so `fake`/`real` folders make the sigmoid score "real"; also the MesoNet
//! authors' files) or `fake`. Images are resized with `--resize` (`nearest`, Keras'
//! `flow_from_directory` default, `bilinear` or `area`) exactly as Pillow does, after the
//! centre crop `--center-crop`; both default to what a checkpoint records of its training
//! (`note:` lines on stderr say when a flag overrides it).
//!
//! With `--faces` (on by default for a checkpoint trained on `prepare_faces` crops) each
//! image's faces are found and scored, cropped as in training:
//! `{"path": ..., "p_fake": 0.93, "label": "fake", "faces": [{"box": [x1, y1, x2, y2],
//! "probability": 0.999, "p_fake": 0.93}]}`; the image's `p_fake` is its most suspicious
//! face's, and an image without a face is `"p_fake": null, "label": "no face"`.
//!
//! Videos (`.mp4`, `.avi`, `.mov`, `.mkv`, `.webm`, `.m4v`) are read through ffmpeg
//! (`scripts/setup.sh` provides one): `--fps` frames a second (1), at most `--max-frames`
//! (32), each frame scored by its most suspicious face (with faces) or whole; the video's
//! `p_fake` is the mean over the frames scored (with faces, those where a face was
//! found), `frames` and `frames_scored` say how many, `--per-frame` adds each frame's.
//!
//! An image that cannot be read gets a line on stderr naming the file and the reason; the
//! others are still scored; the exit code is 1 if any failed. Only regular files are
//! opened: in a folder, a FIFO or a link to `/dev/zero` gets a `skipped:` line on stderr
//! (not a failure); named on the command line, or as `--weights`, it is an error naming it.

mod score;

mod video_args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use video_args::VideoArgs;

use clap::{Parser, ValueEnum};
use deepfake::data::ResizeFilter;
use deepfake::models::Polarity;
use deepfake::tch::Device;
use deepfake::train::PrecisionChoice;

use score::{expand_inputs, InputRequest, Scorer};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Resize {
    Nearest,
    Bilinear,
    Area,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PolarityArg {
    Fake,
    Real,
}

/// Scores face images as fake or real.
#[derive(Debug, Parser)]
#[command(name = "predict")]
struct Args {
    /// Registry name of the model (`meso4`, `efficientnet_b0` ...; see the `summary`
    /// example). Optional with a `.safetensors` checkpoint.
    #[arg(long)]
    model: Option<String>,
    /// Weights: a `.safetensors` checkpoint or a Keras `.h5` file.
    #[arg(long)]
    weights: PathBuf,
    /// Resize filter (default: the one the checkpoint was trained with, else nearest).
    #[arg(long, value_enum)]
    resize: Option<Resize>,
    /// Keep the central fraction of each image side before resizing (e.g. 0.512: the
    /// central 128×128 of a 250×250 face photo; default: the checkpoint's crop, else the
    /// whole image; 1 keeps the whole image).
    #[arg(long)]
    center_crop: Option<f32>,
    /// What a Keras file's output scores (ignored for checkpoints).
    #[arg(long, value_enum, default_value = "real")]
    polarity: PolarityArg,
    /// Square input size a Keras file was trained at, when its head does not tell
    /// (default: the model's, or the size a Flatten head's weights imply).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    input_size: Option<i64>,
    /// Run on the CPU even when a GPU is available.
    #[arg(long)]
    cpu: bool,
    /// Compute precision of the forward passes: f32, bf16 (autocast, CPU and CUDA), f16
    /// (autocast with loss scaling in training; meant for CUDA), or auto: bf16 where the
    /// hardware computes it natively (a CPU with avx512_bf16 or amx_bf16, a GPU of compute
    /// capability 8.0 or more), else f32; the choice is printed on stderr at start.
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    precision: PrecisionChoice,
    /// Detect the faces of each image (df-face's MTCNN) and score each face: one line per
    /// image with every face's box and score, the image's `p_fake` being its most
    /// suspicious face's ("no face" when none). On by default for a checkpoint trained on
    /// `prepare_faces` crops, which records how they were cropped.
    #[arg(long)]
    faces: bool,
    #[command(flatten)]
    video: VideoArgs,
    /// Add each sampled frame's score to a video's line (`per_frame`) and, when faces are
    /// scored, each frame's faces (`frame_faces`: boxes in the video's own pixels).
    #[arg(long)]
    per_frame: bool,
    /// Image or video files, or directories (searched recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

fn parse_precision(s: &str) -> std::result::Result<PrecisionChoice, String> {
    PrecisionChoice::parse(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let sampling = match args.video.sampling() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", deepfake::escape_message(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    let device = if args.cpu {
        Device::Cpu
    } else {
        Device::cuda_if_available()
    };
    let resize = args.resize.map(|r| match r {
        Resize::Nearest => ResizeFilter::Nearest,
        Resize::Bilinear => ResizeFilter::Bilinear,
        Resize::Area => ResizeFilter::Area,
    });
    let polarity = match args.polarity {
        PolarityArg::Fake => Polarity::Fake,
        PolarityArg::Real => Polarity::Real,
    };
    let input_size = args.input_size.map(|s| [s, s]);
    let (precision, says) = args.precision.resolve(device);
    if let Some(line) = says {
        eprintln!("{line}");
    }
    let scorer = match Scorer::open(
        args.model.as_deref(),
        &args.weights,
        polarity,
        InputRequest {
            resize,
            center_crop: args.center_crop,
            input_size,
            faces: args.faces,
        },
        device,
        precision,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: {}",
                deepfake::escape_message(&deepfake::error_text(e.as_ref()))
            );
            return ExitCode::from(2);
        }
    };
    for note in &scorer.notes {
        deepfake::note(note);
    }
    // Scoring on the CPU keeps freed memory for the next image, as `train` does: each
    // forward pass's tensors are then not page-faulted in anew (measured:
    // docs/runs/scoring-amd-epyc-5292873.md).
    if device == Device::Cpu {
        deepfake::train::allocator::retain_freed_memory();
    }
    let (files, mut failures, skipped) = expand_inputs(&args.inputs);
    // Left out of a folder (a FIFO, a link to /dev/zero): said, not opened, not a failure.
    for report in &skipped {
        eprintln!("skipped: {}", deepfake::escape_message(&report.to_string()));
    }
    for (path, reason) in &failures {
        let line = format!("{}: {reason}", path.display());
        eprintln!("error: {}", deepfake::escape_message(&line));
    }
    if files.is_empty() && failures.is_empty() {
        let names: Vec<String> = args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "error: no images or videos found in {} (looked for .jpg, .jpeg, .png, .bmp, \
             .webp, .mp4, .avi, .mov, .mkv, .webm, .m4v)",
            deepfake::escape_message(&names.join(", "))
        );
        return ExitCode::FAILURE;
    }
    let mut stdout = std::io::stdout().lock();
    for path in files {
        let scored = if deepfake::data::has_video_extension(&path) {
            scorer
                .score_video(&path, &sampling, args.per_frame)
                .and_then(|p| Ok(serde_json::to_value(p)?))
        } else if scorer.faces.is_some() {
            scorer
                .score_faces(&path)
                .and_then(|p| Ok(serde_json::to_value(p)?))
        } else {
            scorer
                .score(&path)
                .and_then(|p| Ok(serde_json::to_value(p)?))
        };
        match scored {
            Ok(p) => match serde_json::to_string(&p) {
                Ok(line) => {
                    if let Err(e) = writeln!(stdout, "{line}") {
                        // `predict ... | head -1`: the reader is gone; stop quietly.
                        if e.kind() == std::io::ErrorKind::BrokenPipe {
                            return ExitCode::SUCCESS;
                        }
                        eprintln!("error: writing to stdout: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                Err(e) => {
                    let line = format!("{}: {e}", path.display());
                    eprintln!("error: {}", deepfake::escape_message(&line));
                    failures.push((path, e.to_string()));
                }
            },
            Err(e) => {
                // The message names the file and the reason.
                eprintln!(
                    "error: {}",
                    deepfake::escape_message(&deepfake::error_text(e.as_ref()))
                );
                failures.push((path, deepfake::error_text(e.as_ref())));
            }
        }
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
