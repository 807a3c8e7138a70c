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
//! `--explain DIR` adds a Grad-CAM map (`deepfake::detect::gradcam`: where the evidence
//! for "fake" lies, as the model's last convolutional stage sees it) of each photo, or of
//! each face with faces: a PNG overlay of the photo written into `DIR` (created if needed;
//! refused inside an input folder, where the next run would score the overlays) and
//! `"explain": {"png": "DIR/00000-name.png", "peak": [x, y], "layer":
//! "batch_normalization_3"}` in the line (in each face's object with faces; `peak` in the
//! photo's pixels). Videos are not explained.
//!
//! An image that cannot be read gets a line on stderr naming the file and the reason; the
//! others are still scored; the exit code is 1 if any failed. Only regular files are
//! opened: in a folder, a FIFO or a link to `/dev/zero` gets a `skipped:` line on stderr
//! (not a failure); named on the command line, or as `--weights`, it is an error naming it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use deepfake::cli::DetectorArgs;
use deepfake::detect::{find_inputs, gradcam, Scored, Verdict};
use deepfake::tch::Device;
use deepfake::{escape_message, Detector};

/// Scores face images as fake or real.
#[derive(Debug, Parser)]
#[command(name = "predict")]
struct Args {
    #[command(flatten)]
    detector: DetectorArgs,
    /// Square input size a Keras file was trained at, when its head does not tell
    /// (default: the model's, or the size a Flatten head's weights imply).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    input_size: Option<i64>,
    /// Run on the CPU even when a GPU is available.
    #[arg(long)]
    cpu: bool,
    /// Add each sampled frame's score to a video's line (`per_frame`) and, when faces are
    /// scored, each frame's faces (`frame_faces`: boxes in the video's own pixels).
    #[arg(long)]
    per_frame: bool,
    /// Write a Grad-CAM overlay (PNG) of each photo or face into this folder and add
    /// `explain` (its file, peak and layer) to the JSON line.
    #[arg(long, value_name = "DIR")]
    explain: Option<PathBuf>,
    /// Image or video files, or directories (searched recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// The detector the options name, its notes said; or the error, said.
fn open(args: &Args, device: Device) -> Result<Detector, ExitCode> {
    let fail = |e: &(dyn std::error::Error + 'static)| {
        eprintln!("error: {}", escape_message(&deepfake::error_text(e)));
        ExitCode::from(2)
    };
    let (precision, says) = args.detector.precision.resolve(device);
    let mut options = args
        .detector
        .options(device, precision)
        .map_err(|e| fail(&e))?;
    options.input_size = args.input_size.map(|s| [s, s]);
    if let Some(line) = says {
        eprintln!("{line}");
    }
    let detector = args.detector.open(&options).map_err(|e| fail(&e))?;
    for note in detector.notes() {
        deepfake::note(note);
    }
    Ok(detector)
}

/// Explains the photo `path` (scored again, with its maps): writes each map's overlay into
/// `dir` and returns the verdict's JSON with `explain` added (per face with faces).
fn explained_line(
    detector: &Detector,
    dir: &Path,
    index: usize,
    path: &Path,
) -> Result<serde_json::Value, String> {
    let fail = |e: &(dyn std::error::Error + 'static)| {
        format!("{}: {}", path.display(), deepfake::error_text(e))
    };
    let image = deepfake::data::load_rgb(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let explained = detector.explain_image(&image).map_err(|e| fail(&e))?;
    let stem = gradcam::overlay_stem(index, path);
    let overlays = explained
        .write_overlays(&image, dir, &stem)
        .map_err(|e| format!("option --explain: {}", deepfake::error_text(&e)))?;
    explained.json_line(path, overlays).map_err(|e| fail(&e))
}

/// The line of a scored file: with `--explain`, a photo's is explained (its overlays
/// written); the `index`-th explained photo numbers its overlays.
fn line_of(
    detector: &Detector,
    args: &Args,
    (path, verdict): (&Path, &Verdict),
    index: &mut usize,
) -> Result<String, String> {
    match (&args.explain, verdict) {
        (Some(dir), Verdict::Image(_)) => {
            let value = explained_line(detector, dir, *index, path)?;
            *index += 1;
            serde_json::to_string(&value).map_err(|e| format!("{}: {e}", path.display()))
        }
        _ => verdict
            .json(path, args.per_frame)
            .and_then(|v| serde_json::to_string(&v))
            .map_err(|e| format!("{}: {e}", path.display())),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.explain {
        if let Err(e) = gradcam::prepare_overlay_dir(dir, &args.inputs) {
            eprintln!("error: option --explain: {}", escape_message(&e));
            return ExitCode::from(2);
        }
    }
    let device = if args.cpu {
        Device::Cpu
    } else {
        Device::cuda_if_available()
    };
    let detector = match open(&args, device) {
        Ok(d) => d,
        Err(code) => return code,
    };
    // Scoring on the CPU keeps freed memory for the next image, as `train` does: each
    // forward pass's tensors are then not page-faulted in anew (measured:
    // docs/runs/scoring-amd-epyc-5292873.md).
    if device == Device::Cpu {
        deepfake::train::allocator::retain_freed_memory();
    }
    let inputs = find_inputs(&args.inputs);
    let nothing = inputs.files.is_empty() && inputs.failures.is_empty();
    let mut failed = false;
    let mut explained = 0;
    let mut stdout = std::io::stdout().lock();
    for item in detector.score_inputs(inputs) {
        match item {
            // Left out of a folder (a FIFO, a link to /dev/zero): said, not opened.
            Scored::Skipped { path, reason } => {
                let report = format!("{}: {reason}", path.display());
                eprintln!("skipped: {}", escape_message(&report));
            }
            // The message names the file and the reason.
            Scored::Failed { message, .. } => {
                eprintln!("error: {}", escape_message(&message));
                failed = true;
            }
            Scored::Scored { path, verdict } => {
                match line_of(&detector, &args, (&path, &verdict), &mut explained) {
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
                        eprintln!("error: {}", escape_message(&e));
                        failed = true;
                    }
                }
            }
        }
    }
    if nothing {
        let names: Vec<String> = args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "error: no images or videos found in {} (looked for .{})",
            escape_message(&names.join(", ")),
            deepfake::detect::INPUT_EXTENSIONS.join(", .")
        );
        return ExitCode::FAILURE;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
