//! Perturbations for a robustness evaluation (DeepfakeBench's robustness protocol; the
//! MesoNet paper's compression study): each decoded image is degraded the same way, before
//! the model's own preparation, as if the data had been re-saved, blurred, shrunk or
//! made noisy on its way to the detector.
//!
//! ```
//! # mod deepfake { pub mod data { pub use df_data::*; } }
//! use deepfake::data::perturb::Perturbation;
//! let all = Perturbation::parse_all(&["jpeg:30,50", "blur:1", "resize:0.5", "noise:0.02"])
//!     .expect("valid perturbations");
//! let names: Vec<String> = all.iter().map(|p| p.to_string()).collect();
//! assert_eq!(names, ["jpeg:30", "jpeg:50", "blur:1", "resize:0.5", "noise:0.02"]);
//! ```

use std::fmt;
use std::path::PathBuf;

use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::augment::{add_gaussian_noise, gaussian_blur, jpeg_roundtrip, to_rgb32f, to_rgb8};
use crate::dataset::{ImageSource, Label};
use crate::enhance::scaled_side;
use crate::error::{Error, Result};
use crate::resize::{resize_rgb, ResizeFilter};
use crate::skip::{SkipReason, SkipReport};

/// One degradation, at one strength.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Perturbation {
    /// JPEG re-compression at this quality (1–100; `image`'s encoder, IJG tables, 4:4:4).
    Jpeg(u8),
    /// Gaussian blur of this standard deviation, in pixels of the decoded image.
    Blur(f32),
    /// Downscaling by this factor (0, 1] (Pillow-exact bilinear); the model's preparation
    /// then resizes it to its input as it would any small image.
    Resize(f32),
    /// Additive Gaussian noise of this standard deviation, as a fraction of 255; the
    /// noise of image `i` is seeded by `i`, so every run and model sees the same noise.
    Noise(f32),
    /// These perturbations one after the other (`resize:0.5+jpeg:90`: shrink, then
    /// re-save both classes at one JPEG quality, so a set whose classes differ in their
    /// compression is measured without that cue).
    Chain(Vec<Perturbation>),
}

/// What `--perturb` accepts, for a program's help text.
pub const PERTURB_HELP: &str = "KIND:V1,V2,... with KIND jpeg (quality 1-100), blur (sigma in \
pixels), resize (factor in (0, 1]) or noise (standard deviation as a fraction of 255), e.g. \
`jpeg:30,50,75 blur:1,2 resize:0.5 noise:0.02`; STEP+STEP applies several in turn, each one \
value, e.g. `resize:0.5+jpeg:90`";

fn bad(text: &str, why: impl fmt::Display) -> Error {
    Error::config("perturb", format!("`{text}`: {why} ({PERTURB_HELP})"))
}

impl Perturbation {
    /// Parses `KIND:V1,V2,...` into one perturbation per value.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (option `perturb`) naming the text at fault.
    pub fn parse(text: &str) -> Result<Vec<Perturbation>> {
        if text.contains('+') {
            let mut steps = Vec::new();
            for step in text.split('+') {
                match Perturbation::parse(step)?.as_slice() {
                    [one] => steps.push(one.clone()),
                    _ => return Err(bad(text, "each step of a chain has one value")),
                }
            }
            return Ok(vec![Perturbation::Chain(steps)]);
        }
        let (kind, values) = text
            .split_once(':')
            .ok_or_else(|| bad(text, "expected KIND:VALUES"))?;
        let mut out = Vec::new();
        for value in values.split(',').map(str::trim) {
            let v: f32 = value
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .ok_or_else(|| bad(text, format!("`{value}` is not a number")))?;
            let p = match kind.trim() {
                "jpeg" if v.fract() == 0.0 && (1.0..=100.0).contains(&v) => {
                    Perturbation::Jpeg(v as u8)
                }
                "jpeg" => return Err(bad(text, "a JPEG quality is a whole number 1-100")),
                "blur" if v > 0.0 && v <= 50.0 => Perturbation::Blur(v),
                "blur" => return Err(bad(text, "a blur sigma is in (0, 50] pixels")),
                "resize" if v > 0.0 && v <= 1.0 => Perturbation::Resize(v),
                "resize" => return Err(bad(text, "a resize factor is in (0, 1]")),
                "noise" if v > 0.0 && v <= 1.0 => Perturbation::Noise(v),
                "noise" => return Err(bad(text, "a noise level is in (0, 1] (a fraction of 255)")),
                other => return Err(bad(text, format!("unknown kind `{other}`"))),
            };
            out.push(p);
        }
        Ok(out)
    }

    /// Parses several `KIND:VALUES` texts, in order; a repeated perturbation is an error.
    ///
    /// # Errors
    /// As [`Perturbation::parse`], and for a perturbation given twice.
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Perturbation>> {
        let mut out: Vec<Perturbation> = Vec::new();
        for text in texts {
            for p in Perturbation::parse(text.as_ref())? {
                if out.contains(&p) {
                    return Err(bad(text.as_ref(), format!("{p} is given twice")));
                }
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Applies the perturbation to image number `index` of a set.
    ///
    /// # Errors
    /// [`Error::Image`] or [`Error::BadImage`] if the JPEG round trip fails.
    pub fn apply(&self, img: &RgbImage, index: u64) -> Result<RgbImage> {
        Ok(match *self {
            Perturbation::Chain(ref steps) => {
                let mut out = img.clone();
                for step in steps {
                    out = step.apply(&out, index)?;
                }
                out
            }
            Perturbation::Jpeg(q) => to_rgb8(&jpeg_roundtrip(&to_rgb32f(img), q)?),
            Perturbation::Blur(sigma) => {
                let mut f = to_rgb32f(img);
                gaussian_blur(&mut f, sigma);
                to_rgb8(&f)
            }
            Perturbation::Resize(scale) => {
                let (w, h) = img.dimensions();
                resize_rgb(
                    img,
                    scaled_side(w, scale),
                    scaled_side(h, scale),
                    ResizeFilter::Bilinear,
                )
            }
            Perturbation::Noise(level) => {
                let mut f = to_rgb32f(img);
                let mut rng = ChaCha8Rng::seed_from_u64(index ^ 0x6e6f_6973_6500_0000);
                add_gaussian_noise(&mut f, level * 255.0, &mut rng);
                to_rgb8(&f)
            }
        })
    }
}

impl fmt::Display for Perturbation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Perturbation::Jpeg(q) => write!(f, "jpeg:{q}"),
            Perturbation::Blur(s) => write!(f, "blur:{s}"),
            Perturbation::Resize(s) => write!(f, "resize:{s}"),
            Perturbation::Noise(s) => write!(f, "noise:{s}"),
            Perturbation::Chain(steps) => {
                for (i, step) in steps.iter().enumerate() {
                    if i > 0 {
                        f.write_str("+")?;
                    }
                    write!(f, "{step}")?;
                }
                Ok(())
            }
        }
    }
}

/// An image source whose every image is perturbed on loading (labels, paths and skipped
/// inputs are the inner source's).
#[derive(Debug, Clone)]
pub struct Perturbed<S> {
    inner: S,
    perturbation: Perturbation,
}

impl<S: ImageSource> Perturbed<S> {
    /// `inner`, each image perturbed by `perturbation`.
    pub fn new(inner: S, perturbation: Perturbation) -> Self {
        Perturbed {
            inner,
            perturbation,
        }
    }

    /// The perturbation.
    pub fn perturbation(&self) -> &Perturbation {
        &self.perturbation
    }
}

impl<S: ImageSource> ImageSource for Perturbed<S> {
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn label(&self, index: usize) -> Label {
        self.inner.label(index)
    }

    fn path(&self, index: usize) -> PathBuf {
        self.inner.path(index)
    }

    fn load(&self, index: usize) -> std::result::Result<RgbImage, SkipReason> {
        let img = self.inner.load(index)?;
        self.perturbation
            .apply(&img, index as u64)
            .map_err(|e| SkipReason::Corrupt(format!("{}: {e}", self.perturbation)))
    }

    fn skipped(&self) -> Vec<SkipReport> {
        self.inner.skipped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_perturbations_are_named() {
        for (text, why) in [
            ("jpeg", "KIND:VALUES"),
            ("jpeg:0", "1-100"),
            ("jpeg:50.5", "1-100"),
            ("blur:0", "(0, 50]"),
            ("resize:1.5", "(0, 1]"),
            ("noise:x", "not a number"),
            ("sharpen:1", "unknown kind"),
            ("resize:0.5+jpeg:50,75", "one value"),
        ] {
            let e = Perturbation::parse(text).expect_err(text).to_string();
            assert!(
                e.contains("perturb") && e.contains(text) && e.contains(why),
                "{text}: {e}"
            );
        }
        // A chain's bad step is named with its reason.
        let e = Perturbation::parse("resize:0.5+jpeg:0")
            .expect_err("bad step")
            .to_string();
        assert!(e.contains("`jpeg:0`") && e.contains("1-100"), "{e}");
        let twice = Perturbation::parse_all(&["jpeg:50", "blur:1,jpeg:50"]);
        assert!(twice.is_err());
        let e = Perturbation::parse_all(&["jpeg:50,50"])
            .expect_err("repeated")
            .to_string();
        assert!(e.contains("jpeg:50 is given twice"), "{e}");
    }

    #[test]
    fn names_round_trip() {
        for p in Perturbation::parse_all(&[
            "jpeg:30,95",
            "blur:0.5,2",
            "resize:0.25",
            "noise:0.02",
            "resize:0.5+jpeg:90",
        ])
        .expect("valid")
        {
            assert_eq!(
                Perturbation::parse(&p.to_string()).expect("its own name"),
                vec![p]
            );
        }
    }
}
