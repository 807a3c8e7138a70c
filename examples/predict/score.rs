//! The scoring core of the `predict` example, shared with the shared-data test suite
//! (`tests/shared_data/mesonet.rs` includes this file), so that what the test checks is
//! what the program runs.

use std::path::{Path, PathBuf};

use deepfake::data::{image_to_tensor, ResizeFilter, Transform};
use deepfake::models::keras::KerasImportOptions;
use deepfake::models::load::{load_weights, KerasLoadOptions, LoadedModel};
use deepfake::models::Polarity;
use deepfake::tch::{Device, Tensor};
use deepfake::train::transform_for;

/// One scored image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// The image file.
    pub path: PathBuf,
    /// p(fake) = sigmoid(logit).
    pub p_fake: f64,
    /// `"fake"` when `p_fake >= 0.5`, else `"real"`.
    pub label: &'static str,
}

/// A loaded model and the input transform its weights expect.
#[derive(Debug)]
pub struct Scorer {
    /// The model with its weights.
    pub loaded: LoadedModel,
    /// Decoding, resizing and preprocessing of the images.
    pub transform: Transform,
    device: Device,
}

impl Scorer {
    /// Loads `weights` (a `.safetensors` checkpoint or a Keras `.h5`) for `model`; the
    /// polarity applies to Keras files only (checkpoints store theirs); `input_size` is the
    /// size a Keras file was trained at, when its head does not tell (see
    /// `df_models::load::infer_top`).
    ///
    /// # Errors
    /// Unknown model, unreadable or mismatched weights.
    pub fn open(
        model: Option<&str>,
        weights: &Path,
        polarity: Polarity,
        resize: ResizeFilter,
        input_size: Option<[i64; 2]>,
        device: Device,
    ) -> anyhow::Result<Self> {
        let options = KerasLoadOptions {
            import: KerasImportOptions::default().with_polarity(polarity),
            top: None,
            input_size,
        };
        // The library's errors name the file and what is wrong with it.
        let loaded = load_weights(model, weights, device, &options)?;
        let transform = transform_for(&loaded.input_spec(), resize);
        Ok(Self {
            loaded,
            transform,
            device,
        })
    }

    /// Scores one image file.
    ///
    /// # Errors
    /// The file cannot be read or decoded (the message names it and says why).
    pub fn score(&self, path: &Path) -> anyhow::Result<Prediction> {
        let x = image_to_tensor(path, &self.transform)?.to_device(self.device);
        let p_fake = self.p_fake(&x)?[0];
        Ok(Prediction {
            path: path.to_path_buf(),
            p_fake,
            label: if p_fake >= 0.5 { "fake" } else { "real" },
        })
    }

    /// p(fake) of a batch of preprocessed inputs `[N, 3, H, W]`.
    ///
    /// # Errors
    /// The model does not output one logit per image.
    pub fn p_fake(&self, x: &Tensor) -> anyhow::Result<Vec<f64>> {
        let logits = deepfake::tch::no_grad(|| self.loaded.model.forward_t(x, false));
        anyhow::ensure!(
            logits.dim() == 2 && logits.size()[1] == 1,
            "model `{}` outputs {:?}, not one logit per image (does it have a binary top?)",
            self.loaded.model.name(),
            logits.size()
        );
        let p = logits.sigmoid().to_device(Device::Cpu).view([-1]);
        Ok(Vec::<f32>::try_from(&p)?
            .into_iter()
            .map(f64::from)
            .collect())
    }
}

/// The image files named by `inputs`: files as given, directories searched recursively
/// for image extensions (sorted). Unreadable directories are returned as failures.
pub fn expand_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut failures = Vec::new();
    for input in inputs {
        if input.is_dir() {
            collect_dir(input, &mut files, &mut failures);
        } else {
            files.push(input.clone());
        }
    }
    (files, failures)
}

fn collect_dir(dir: &Path, files: &mut Vec<PathBuf>, failures: &mut Vec<(PathBuf, String)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            failures.push((dir.to_path_buf(), e.to_string()));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_dir(&path, files, failures);
        } else if deepfake::data::has_image_extension(&path) {
            files.push(path);
        }
    }
}
