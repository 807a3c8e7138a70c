//! Exporting a detector for serving elsewhere: TorchScript (PyTorch, libtorch C++) and ONNX
//! (ONNX Runtime), each file self-describing.
//!
//! - **TorchScript**: the model traced with `tch`'s `CModule::create_by_tracing` at batch 2
//!   in eval mode, df-sys's custom kernels replaced by libtorch's standard operators while
//!   tracing ([`df_layers::kernels::standard_ops`]: a tracer cannot see a custom kernel). The
//!   saved archive is then loaded back and run at batches 1 and 5 against the eager model on
//!   other inputs: a batch size or a value recorded as a constant, or an operator the tracer
//!   did not record, fails the export with the first layer whose output differs
//!   ([`df_layers::trace::capture_outputs`]) — the file is never written then.
//! - **ONNX**: that archive converted by the set-up's PyTorch (`torch.onnx.export` with
//!   `dynamo=False`, the TorchScript exporter; opset [`ONNX_OPSET`], a dynamic batch axis;
//!   the committed `scripts/export_onnx.py`, embedded here), which checks ONNX Runtime's
//!   logits against the archive's at batches 1 and 5 before anything is written.
//!
//! The graph takes the *preprocessed* input `[N, 3, H, W]` float32 (what
//! `forward_t` of a [`df_models::Model`] takes) and returns the logit of "fake" `[N, 1]`
//! (`p_fake = sigmoid(logit)`). How a picture becomes that input — the model, input size,
//! resize filter, centre crop, face crops, normalisation, polarity — is stored as JSON
//! ([`ExportMetadata`]): the TorchScript extra file [`METADATA_FILE`]
//! (`torch.jit.load(f, _extra_files={"deepfake.json": ""})`) and the ONNX
//! `metadata_props` key [`METADATA_KEY`]. Files are written atomically (df-io), after every
//! option is checked.
//!
//! ```no_run
//! # mod deepfake { pub mod detect { pub use df_detect::*; } }
//! use deepfake::detect::export::{export_weights, ExportFormat, ExportOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ExportOptions::new(ExportFormat::TorchScript);
//! let report = export_weights(None, "runs/lfw/model.safetensors".as_ref(), &options, "lfw.pt".as_ref())?;
//! println!("{} bytes, {} s", report.bytes, report.seconds);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use df_layers::trace::{self, LayerRecord};
use df_models::keras::KerasImportOptions;
use df_models::load::KerasLoadOptions;
use df_models::{ImagePreparation, InputSpec, LoadedModel, Model, Polarity, Preprocessing};
use tch::nn::VarStore;
use tch::{CModule, Device, Kind, Tensor};

use crate::{Error, Result};

/// The ONNX opset of [`ExportFormat::Onnx`] files.
pub const ONNX_OPSET: i64 = 17;
/// The TorchScript extra file holding the [`ExportMetadata`] JSON.
pub const METADATA_FILE: &str = "deepfake.json";
/// The ONNX `metadata_props` key holding the [`ExportMetadata`] JSON.
pub const METADATA_KEY: &str = "deepfake";
/// The batch the graph is traced at.
pub const TRACE_BATCH: i64 = 2;
/// The batches the traced graph is checked at against the eager model.
pub const CHECK_BATCHES: [i64; 2] = [1, 5];
/// The converter, `scripts/export_onnx.py`, run by the set-up's Python.
const ONNX_SCRIPT: &str = include_str!("../../../scripts/export_onnx.py");

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A TorchScript archive (`torch.jit.load`, `torch::jit::load`).
    TorchScript,
    /// An ONNX model (ONNX Runtime).
    Onnx,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "torchscript" => Ok(Self::TorchScript),
            "onnx" => Ok(Self::Onnx),
            other => Err(format!(
                "unknown format `{other}`; expected torchscript or onnx"
            )),
        }
    }
}

/// How to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The file format.
    pub format: ExportFormat,
    /// The Python with torch and onnx that converts to ONNX (and checks it with
    /// onnxruntime); `None`: [`find_python`]. Unused for TorchScript.
    pub python: Option<PathBuf>,
    /// What a Keras file's output scores (checkpoints record it).
    pub keras_polarity: Polarity,
    /// For a Keras file whose head does not tell: the square input size it was trained at.
    pub input_size: Option<[i64; 2]>,
}

impl ExportOptions {
    /// Defaults for `format`.
    pub fn new(format: ExportFormat) -> Self {
        Self {
            format,
            python: None,
            keras_polarity: Polarity::Real,
            input_size: None,
        }
    }
}

/// The preprocessing of [`ExportMetadata`], in words a serving program needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportInput {
    /// `NCHW`.
    pub layout: String,
    /// `float32`.
    pub dtype: String,
    /// Channels (3).
    pub channels: i64,
    /// Height in pixels.
    pub height: i64,
    /// Width in pixels.
    pub width: i64,
    /// The batch axis is dynamic (any size).
    pub dynamic_batch: bool,
    /// `input[c] = (pixel[order[c]] * scale - mean[c]) / std[c]` of RGB pixels in 0..=255.
    pub normalization: Preprocessing,
}

/// What an exported file says about itself (JSON in the file).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportMetadata {
    /// `deepfake-export`.
    pub format: String,
    /// 1.
    pub format_version: u32,
    /// The registry name of the model (`efficientnet_b0`).
    pub model: String,
    /// Its family (`efficientnet`).
    pub family: String,
    /// The graph's input.
    pub input: ExportInput,
    /// How a picture is brought to the input size (resize filter, centre crop, faces), as
    /// the checkpoint records of its training; the default (nearest, whole picture) when it
    /// records none ([`ExportMetadata::preparation_recorded`]).
    pub preparation: ImagePreparation,
    /// Whether the weights recorded the preparation.
    pub preparation_recorded: bool,
    /// What the output logit scores: always `fake` (a Keras file scoring `real` is
    /// converted on import).
    pub polarity: Polarity,
    /// The output, in words.
    pub output: String,
    /// The weight file's name.
    pub weights: String,
    /// The exporting library's version.
    pub exported_by: String,
}

impl ExportMetadata {
    /// The metadata of `loaded`, read from the file named `weights`.
    pub fn of(loaded: &LoadedModel, weights: &Path) -> Self {
        Self::new(
            loaded.model.as_ref(),
            loaded.input_spec(),
            loaded.preparation(),
            weights,
        )
    }

    /// The metadata of `model` with input `spec`, prepared as `preparation`.
    pub fn new(
        model: &dyn Model,
        spec: InputSpec,
        preparation: Option<ImagePreparation>,
        weights: &Path,
    ) -> Self {
        Self {
            format: "deepfake-export".into(),
            format_version: 1,
            model: model.name().to_string(),
            family: model.family().to_string(),
            input: ExportInput {
                layout: "NCHW".into(),
                dtype: "float32".into(),
                channels: 3,
                height: spec.height,
                width: spec.width,
                dynamic_batch: true,
                normalization: spec.preprocessing,
            },
            preparation: preparation.unwrap_or_default(),
            preparation_recorded: preparation.is_some(),
            polarity: Polarity::Fake,
            output: "[N, 1] logit of fake; p_fake = sigmoid(logit)".into(),
            weights: weights
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            exported_by: format!("deepfake {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// What [`export`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExportReport {
    /// The file written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// Wall time of the export (tracing, checks, conversion, writing), seconds.
    pub seconds: f64,
    /// The largest |Δ| of the logits between the file and the eager model over the check
    /// batches (TorchScript: the archive loaded back; ONNX: the archive, which ONNX Runtime
    /// is checked against by the converter).
    pub max_abs_diff: f64,
}

fn msg(text: impl Into<String>) -> Error {
    Error::Message(text.into())
}

/// The Python the ONNX conversion runs on: `$DEEPFAKE_PYTHON`, else the set-up's
/// `.venv-tools/bin/python` in the current directory or one above it, else the set-up's
/// cache (`$DEEPFAKE_CACHE` or `~/.cache/deepfake`, `torch-2.11.0/bin/python`).
///
/// # Errors
/// None of them exists: the message says how to install one.
pub fn find_python() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DEEPFAKE_PYTHON") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(msg(format!(
                "DEEPFAKE_PYTHON={}: no such file",
                p.display()
            )))
        };
    }
    let mut tried = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let p = dir.join(".venv-tools/bin/python");
            if p.is_file() {
                return Ok(p);
            }
        }
        tried.push(format!(
            "{}/.venv-tools/bin/python (and above)",
            cwd.display()
        ));
    }
    let cache = std::env::var_os("DEEPFAKE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("deepfake")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/deepfake")));
    if let Some(cache) = cache {
        let p = cache.join("torch-2.11.0/bin/python");
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p.display().to_string());
    }
    Err(msg(format!(
        "ONNX export needs the set-up's Python (torch, onnx, onnxruntime): none at {}; run \
         `scripts/setup.sh --python-tools`, or name one with --python or DEEPFAKE_PYTHON",
        tried.join(", ")
    )))
}

/// The Python an ONNX export runs (`None` for TorchScript), checked to exist.
fn python_for(options: &ExportOptions) -> Result<Option<PathBuf>> {
    Ok(match options.format {
        ExportFormat::TorchScript => None,
        ExportFormat::Onnx => Some(match &options.python {
            Some(p) if p.is_file() => p.clone(),
            Some(p) => {
                return Err(Error::File {
                    path: p.clone(),
                    message: "--python: no such file".into(),
                })
            }
            None => find_python()?,
        }),
    })
}

/// Checks where `out` goes before anything is loaded or written: its folder exists and it
/// is not a folder itself.
fn check_out(out: &Path) -> Result<()> {
    if out.as_os_str().is_empty() {
        return Err(msg("--out: an empty path"));
    }
    if out.is_dir() {
        return Err(Error::File {
            path: out.to_path_buf(),
            message: "--out is a folder; name the file to write".into(),
        });
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::File {
            path: parent.to_path_buf(),
            message: "--out: the folder does not exist".into(),
        });
    }
    Ok(())
}

/// Loads `weights` (a checkpoint; a Keras file with `model`) and exports it to `out`.
///
/// # Errors
/// An option at fault (the folder of `out`, a missing Python for ONNX) before anything
/// is loaded; the weights' errors; those of [`export`].
pub fn export_weights(
    model: Option<&str>,
    weights: &Path,
    options: &ExportOptions,
    out: &Path,
) -> Result<ExportReport> {
    check_out(out)?;
    let python = python_for(options)?;
    let keras = KerasLoadOptions {
        import: KerasImportOptions::default().with_polarity(options.keras_polarity),
        top: None,
        input_size: options.input_size,
    };
    let loaded = df_models::load_weights(model, weights, Device::Cpu, &keras)?;
    let binary = loaded
        .model
        .head()
        .and_then(|h| h.config().layers.last())
        .is_some_and(|l| l.units == 1);
    if !binary {
        return Err(Error::File {
            path: weights.to_path_buf(),
            message: format!(
                "`{}` has no binary top (one logit of fake): only detectors are exported",
                loaded.model.name()
            ),
        });
    }
    let metadata = ExportMetadata::of(&loaded, weights);
    let options = ExportOptions {
        python,
        ..options.clone()
    };
    export(
        &loaded.var_store,
        loaded.model.as_ref(),
        &metadata,
        &options,
        out,
    )
}

/// Exports `model` (its variables in `vs`, on the CPU) with `metadata` to `out`.
///
/// # Errors
/// See the module: a graph that differs from the model (naming the first layer that
/// differs), the ONNX converter's failure (its message), an unwritable `out`.
pub fn export(
    vs: &VarStore,
    model: &dyn Model,
    metadata: &ExportMetadata,
    options: &ExportOptions,
    out: &Path,
) -> Result<ExportReport> {
    let start = Instant::now();
    check_out(out)?;
    let python = python_for(options)?;
    let (archive, max_abs_diff) = torchscript(vs, model, metadata)?;
    let bytes = match python {
        Some(python) => onnx(&archive, &python)?,
        None => archive,
    };
    df_io::write_atomic(out, &bytes)?;
    Ok(ExportReport {
        path: out.to_path_buf(),
        bytes: bytes.len(),
        seconds: start.elapsed().as_secs_f64(),
        max_abs_diff,
    })
}

/// A deterministic input `[n, 3, h, w]` of values in [-2, 2] (no global random state):
/// `seed` picks one of several unrelated patterns.
fn probe(n: i64, h: i64, w: i64, seed: f64) -> Tensor {
    let count = n * 3 * h * w;
    let i = Tensor::arange(count, (Kind::Double, Device::Cpu));
    let x = ((&i * (0.618_033_988_75 + seed * 0.1)).sin() * 43_758.545_3).frac() * 4.0;
    x.to_kind(Kind::Float).view([n, 3, h, w])
}

/// Relative tolerance of the graph's check: traced and eager run the same operators.
fn within(a: &Tensor, b: &Tensor) -> Result<(bool, f64)> {
    if a.size() != b.size() {
        return Ok((false, f64::INFINITY));
    }
    let diff = (a - b).abs().max().f_double_value(&[])?;
    let scale = b.abs().max().f_double_value(&[])?;
    Ok((diff <= 1e-5 + 1e-5 * scale, diff))
}

/// The model's requires-grad flags off for a trace (a traced constant must not require a
/// gradient), back on when dropped.
struct Frozen(Vec<Tensor>);

impl Frozen {
    fn new(vs: &VarStore) -> Self {
        let mut was = Vec::new();
        for (_, t) in vs.variables() {
            if t.requires_grad() {
                let _ = t.set_requires_grad(false);
                was.push(t);
            }
        }
        Self(was)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = t.set_requires_grad(true);
        }
    }
}

/// Traces `f` on `input` (standard operators, no gradient), abandoning the trace when it
/// fails, and returns the module saved to bytes.
fn trace_to_bytes(input: &Tensor, f: impl FnMut(&Tensor) -> Vec<Tensor>) -> Result<Vec<u8>> {
    let module = trace_module(input, f)?;
    let dir = tempfile::tempdir().map_err(|e| msg(format!("a temporary folder: {e}")))?;
    let path = dir.path().join("traced.pt");
    module.save(&path)?;
    std::fs::read(&path).map_err(|e| msg(format!("{}: {e}", path.display())))
}

/// Traces `f` on `input` (standard operators, no gradient), abandoning the trace when it
/// fails.
fn trace_module(input: &Tensor, mut f: impl FnMut(&Tensor) -> Vec<Tensor>) -> Result<CModule> {
    let traced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        CModule::create_by_tracing(
            "deepfake_detector",
            "forward",
            &[input.shallow_clone()],
            &mut |xs| df_layers::kernels::standard_ops(|| tch::no_grad(|| f(&xs[0]))),
        )
    }));
    let module = match traced {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            let _ = df_sys::jit::abandon_tracing();
            return Err(msg(format!("tracing the model: {e}")));
        }
        Err(panic) => {
            let _ = df_sys::jit::abandon_tracing();
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            return Err(msg(format!("tracing the model: {what}")));
        }
    };
    Ok(module)
}

fn run(module: &CModule, x: &Tensor) -> std::result::Result<Tensor, tch::TchError> {
    tch::no_grad(|| module.forward_ts(&[x]))
}

/// The TorchScript archive of `model` (variables in `vs`) with `metadata` as its extra
/// file [`METADATA_FILE`], checked against the eager model at [`CHECK_BATCHES`]; and the
/// largest |Δ| of the logits over the check.
///
/// # Errors
/// A trace that fails, or a graph that differs from the model: the message names the first
/// layer whose output differs, or the batch at which the graph fails.
pub fn torchscript(
    vs: &VarStore,
    model: &dyn Model,
    metadata: &ExportMetadata,
) -> Result<(Vec<u8>, f64)> {
    if vs.device() != Device::Cpu {
        return Err(msg("export traces on the CPU; load the model there"));
    }
    let (h, w) = (metadata.input.height, metadata.input.width);
    let _frozen = Frozen::new(vs);
    let plain = trace_to_bytes(&probe(TRACE_BATCH, h, w, 0.0), |x| {
        vec![model.forward_t(x, false)]
    })?;
    let json = serde_json::to_vec_pretty(metadata)
        .map_err(|e| msg(format!("the export metadata does not serialise: {e}")))?;
    let archive = df_sys::jit::save_with_extra_files(&plain, &[(METADATA_FILE, &json)])
        .map_err(|e| msg(e.to_string()))?;
    // The check runs the bytes that will be written.
    let module = CModule::load_data(&mut archive.as_slice())?;
    let mut worst = 0.0f64;
    for (k, &n) in CHECK_BATCHES.iter().enumerate() {
        let x = probe(n, h, w, 1.0 + k as f64);
        let eager = tch::no_grad(|| model.forward_t(&x, false));
        let ok = match run(&module, &x) {
            Ok(traced) => {
                let (ok, diff) = within(&traced, &eager)?;
                worst = worst.max(diff);
                ok
            }
            Err(_) => false,
        };
        if !ok {
            return Err(msg(diagnose(model, &module, &x, h, w)?));
        }
    }
    Ok((archive, worst))
}

/// Why the traced graph differs from `model` on `x`: the first layer whose output differs,
/// found by tracing again with every recorded layer's output as an output of the graph.
fn diagnose(model: &dyn Model, module: &CModule, x: &Tensor, h: i64, w: i64) -> Result<String> {
    let n = x.size()[0];
    let head = match run(module, x) {
        Err(e) => format!(
            "the traced graph fails at batch {n} (traced at {TRACE_BATCH}): {}",
            first_line(&e.to_string())
        ),
        Ok(t) => format!(
            "the traced graph differs from the model at batch {n} (traced at {TRACE_BATCH}; \
             max |Δ| of the logits {:.3e})",
            within(&t, &tch::no_grad(|| model.forward_t(x, false)))?.1
        ),
    };
    // One output (a traced method returns one value): the logits and every recorded
    // layer's output, each flattened per sample, side by side.
    let per_sample = |t: &Tensor| t.size().iter().skip(1).product::<i64>();
    let mut widths: Vec<i64> = Vec::new();
    let diag = trace_module(&probe(TRACE_BATCH, h, w, 0.0), |x| {
        let (y, kept) = trace::capture_outputs(|| model.forward_t(x, false));
        let mut outs = vec![y.flatten(1, -1)];
        widths = vec![per_sample(&y)];
        for t in kept.into_iter().filter_map(|(_, t)| t) {
            if t.dim() >= 2 {
                widths.push(per_sample(&t));
                outs.push(t.flatten(1, -1));
            }
        }
        vec![Tensor::cat(&outs, 1)]
    });
    let hint = "its output depends on something the tracer cannot record (a tensor's value \
                read in Rust, a batch size used as a number, a custom kernel)";
    let diag = match diag {
        Ok(d) => d,
        Err(e) => {
            return Ok(format!(
                "{head}; the layers could not be traced one by one: {}",
                first_line(&e.to_string())
            ))
        }
    };
    let eager_layers = |x: &Tensor| -> Vec<(LayerRecord, Tensor)> {
        let (_, kept) = tch::no_grad(|| trace::capture_outputs(|| model.forward_t(x, false)));
        kept.into_iter()
            .filter_map(|(r, t)| t.filter(|t| t.dim() >= 2).map(|t| (r, t)))
            .collect()
    };
    // The graph's layer outputs at the failing batch or, when it cannot run there, at the
    // traced batch on another input.
    let outputs = |x: &Tensor| -> Option<Vec<Tensor>> {
        let all = run(&diag, x).ok()?;
        if all.dim() != 2 || all.size()[1] != widths.iter().sum::<i64>() {
            return None;
        }
        all.f_split_with_sizes(&widths, 1).ok()
    };
    let (traced, eager) = match outputs(x) {
        Some(o) => (Some(o), eager_layers(x)),
        None => {
            let other = probe(TRACE_BATCH, h, w, 7.0);
            (outputs(&other), eager_layers(&other))
        }
    };
    let Some(traced) = traced else {
        return Ok(format!(
            "{head}; the graph with each layer's output does not run either"
        ));
    };
    for (i, (record, reference)) in eager.iter().enumerate() {
        let Some(t) = traced.get(i + 1) else { break };
        let t = match t.f_reshape(reference.size()) {
            Ok(t) => t,
            Err(_) => t.shallow_clone(),
        };
        let (ok, diff) = within(&t, reference)?;
        if !ok {
            let shapes = if t.size() == reference.size() {
                format!("max |Δ| {diff:.3e}")
            } else {
                format!(
                    "shape {:?} against the model's {:?}",
                    t.size(),
                    reference.size()
                )
            };
            return Ok(format!(
                "{head}: layer `{}` ({}) is the first that differs ({shapes}): {hint}",
                record.name, record.class
            ));
        }
    }
    let last = eager
        .last()
        .map(|(r, _)| format!("after the last recorded layer `{}` ({})", r.name, r.class))
        .unwrap_or_else(|| "in a model that records no layers".into());
    Ok(format!("{head}: the difference arises {last}: {hint}"))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The ONNX model of a TorchScript `archive` from [`torchscript`] (its metadata copied into
/// `metadata_props`), converted by `python` running `scripts/export_onnx.py`, which checks
/// ONNX Runtime's logits against the archive's at batches 1 and 5 (within 1e-4).
///
/// # Errors
/// Python cannot be started, or the converter fails (its message, last lines).
pub fn onnx(archive: &[u8], python: &Path) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir().map_err(|e| msg(format!("a temporary folder: {e}")))?;
    let (script, input, output) = (
        dir.path().join("export_onnx.py"),
        dir.path().join("model.pt"),
        dir.path().join("model.onnx"),
    );
    std::fs::write(&script, ONNX_SCRIPT)
        .and_then(|()| std::fs::write(&input, archive))
        .map_err(|e| msg(format!("{}: {e}", dir.path().display())))?;
    let result = std::process::Command::new(python)
        .arg(&script)
        .arg(&input)
        .arg(&output)
        .arg(ONNX_OPSET.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::File {
            path: python.to_path_buf(),
            message: format!("cannot run the ONNX converter's Python: {e}"),
        })?;
    if !result.status.success() {
        let err = String::from_utf8_lossy(&result.stderr);
        let tail: Vec<&str> = err.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(msg(format!(
            "ONNX conversion by {} failed ({}): {}",
            python.display(),
            result.status,
            tail.join("\n  ")
        )));
    }
    std::fs::read(&output).map_err(|e| msg(format!("{}: {e}", output.display())))
}

/// The [`ExportMetadata`] of a TorchScript archive's bytes, `None` when it has none.
///
/// # Errors
/// Bytes that are not a TorchScript archive; metadata that is not this crate's JSON.
pub fn read_torchscript_metadata(archive: &[u8]) -> Result<Option<ExportMetadata>> {
    let Some(bytes) =
        df_sys::jit::extra_file(archive, METADATA_FILE).map_err(|e| msg(e.to_string()))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| msg(format!("extra file {METADATA_FILE}: {e}")))
}
