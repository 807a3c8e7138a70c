//! # deepfake
//!
//! Deepfake face-image detection on libtorch, as a set of reusable crates. This facade
//! re-exports them under one name, with their documentation inlined here:
//!
//! | module | crate | what |
//! | --- | --- | --- |
//! | [`layers`] | `df-layers` | building blocks with Keras semantics (conv-bn-act, MBConv, inception, residual blocks, dense heads) |
//! | [`models`] | `df-models` | the study's architectures: model families, the catalogue by name, checkpoints, Keras weight import |
//! | [`data`] | `df-data` | image folders, decoding, augmentation, the batch loader, the synthetic forgery set |
//! | [`train`] | `df-train` | the training loop, optimizers, L2, callbacks, evaluation, whole experiments |
//! | [`metrics`] | `df-metrics` | accuracy, ROC/AUC, EER, calibration, history analysis, plots |
//! | [`io`] | `df-io` | the one atomic file writer and the safetensors reader/writer |
//!
//! Where to look first:
//!
//! - a model by name: [`models::build`] with [`models::BuildOptions`]; every name, with
//!   Keras' parameter counts: [`models::registry()`]; a built model's own count:
//!   [`layers::util::param_count`];
//! - the input a model expects ([`models::InputSpec`]: size and preprocessing) as the data
//!   pipeline's transform: [`train::transform_for`];
//! - a whole run (data, model, training, evaluation, report) from one configuration:
//!   [`train::run_experiment`]; the loop alone: [`train::Trainer`];
//! - reopening a saved model: [`models::load_checkpoint`]; a network of your own that
//!   trains and reopens like the built-in ones: [`models::family`] and
//!   `examples/custom_model.rs`.
//!
//! ```no_run
//! use deepfake::models::{self, BuildOptions, Top};
//! use deepfake::tch::{nn::VarStore, Device};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let vs = VarStore::new(Device::cuda_if_available());
//! let options = BuildOptions::default().with_top(Top::study([256, 128], 0.5, 1e-4));
//! let model = models::build("efficientnet_b7", &vs.root(), &options)?;
//! println!("{} parameters", deepfake::layers::util::param_count(&vs).total);
//! let spec = model.input_spec(); // size and preprocessing for the data pipeline
//! let _transform = deepfake::train::transform_for(&spec, deepfake::data::ResizeFilter::Bilinear);
//! # Ok(()) }
//! ```

/// The text of an error and its causes for a person to read, each cause once.
///
/// The crates' errors put their cause's text in their own message (`runs/x: No such file
/// or directory (os error 2)`) *and* report it as their `source()`, so printing the chain
/// as it is (anyhow's `Caused by:`, `{:#}`) says it twice; this appends a cause only when
/// the text so far does not already hold it. The examples print their errors with it.
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let e = deepfake::io::Error::Io { path: "x.json".into(), source: io };
/// assert_eq!(deepfake::error_text(&e), "x.json: no such file");
/// ```
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// `text` made safe to print on a terminal: every control character (a newline in a file
/// name, an ANSI escape sequence) is written as Rust's `{:?}` writes it (`\n`, `\u{1b}`),
/// so that no name can forge a line of output or drive the terminal. A newline followed
/// by two spaces is kept: the library's multi-line messages indent their continuation
/// lines, and such a line cannot pass for a result line (`predict`'s JSON lines start at
/// the margin).
pub fn escape_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' && text_continues_indented(chars.clone()) {
            out.push(c);
        } else if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

fn text_continues_indented(mut rest: impl Iterator<Item = char>) -> bool {
    rest.next() == Some(' ') && rest.next() == Some(' ')
}

/// Prints `note: <text>` on stderr, escaped ([`escape_message`]).
pub fn note(text: &str) {
    eprintln!("note: {}", escape_message(text));
}

/// The exit status of an example's `run()`: success, or the error printed once to
/// stderr ([`error_text`], escaped by [`escape_message`]) and status 1.
/// `fn main() -> ExitCode { exit_code(run()) }`.
pub fn exit_code<E>(result: Result<(), E>) -> std::process::ExitCode
where
    E: AsRef<dyn std::error::Error + Send + Sync + 'static>,
{
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", escape_message(&error_text(e.as_ref())));
            std::process::ExitCode::FAILURE
        }
    }
}

#[doc(inline)]
pub use df_data as data;
#[doc(inline)]
pub use df_dist as dist;
#[doc(inline)]
pub use df_face as face;
#[doc(inline)]
pub use df_io as io;
#[doc(inline)]
pub use df_layers as layers;
#[doc(inline)]
pub use df_metrics as metrics;
#[doc(inline)]
pub use df_models as models;
#[doc(inline)]
pub use df_train as train;
pub use tch;
