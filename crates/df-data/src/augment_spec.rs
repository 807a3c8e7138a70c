//! The `--augment` syntax: presets and items, comma-separated, later ones overriding
//! earlier ones.
//!
//! ```text
//! study                       the study's ImageDataGenerator set
//! forensic,jpeg:30-95         the forensic preset, JPEG quality 30–95 on every image
//! flip,blur:0-1.5@0.3,rescale:0.5-1@0.5,contrast:0.8-1.2,saturation:0.7-1.3
//! ```

use crate::augment::{
    Augment, BlurAugment, ColorJitter, JpegAugment, NoiseAugment, RandomCrop, RescaleAugment,
};
use crate::error::{Error, Result};

/// What `--augment` accepts, for a program's help text.
pub const AUGMENT_SPEC_HELP: &str =
    "presets none, study, forensic and items, comma-separated, later ones \
overriding: flip, vflip, rotate:DEG, shift:F, zoom:A-B, shear:DEG, brightness:A-B, \
crop:MIN, blur:A-B, jpeg:A-B, noise:A-B, rescale:A-B, contrast:A-B, saturation:A-B; \
crop, blur, jpeg, noise, rescale and the colour items take @P, the probability per \
image (default 1), e.g. `forensic,jpeg:30-95@0.8`";

fn bad(item: &str, why: impl std::fmt::Display) -> Error {
    Error::config("augment", format!("`{item}`: {why} ({AUGMENT_SPEC_HELP})"))
}

fn number(item: &str, text: &str) -> Result<f32> {
    text.trim()
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| bad(item, format!("`{text}` is not a number")))
}

/// `A-B` or `A` (= `A-A`).
fn range(item: &str, text: &str) -> Result<[f32; 2]> {
    match text.split_once('-') {
        Some((a, b)) => Ok([number(item, a)?, number(item, b)?]),
        None => {
            let v = number(item, text)?;
            Ok([v, v])
        }
    }
}

impl Augment {
    /// Parses an `--augment` spec (see [`AUGMENT_SPEC_HELP`]). The result is checked
    /// ([`Augment::validate`]).
    ///
    /// ```
    /// # mod deepfake { pub mod data { pub use df_data::*; } }
    /// use deepfake::data::Augment;
    /// let a = Augment::from_spec("study,jpeg:30-95@0.5").expect("a valid spec");
    /// assert_eq!(a.jpeg.map(|j| (j.quality, j.probability)), Some(([30, 95], 0.5)));
    /// assert_eq!(Augment::from_spec("forensic").expect("a preset"), Augment::forensic());
    /// assert!(Augment::from_spec("jpeg:0-95").is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (option `augment`) naming the item at fault.
    pub fn from_spec(spec: &str) -> Result<Augment> {
        let mut out = Augment::none();
        if spec.trim().is_empty() {
            return Err(bad(spec, "an empty spec"));
        }
        for item in spec.split(',').map(str::trim) {
            let (body, probability) = match item.split_once('@') {
                Some((body, p)) => (body, Some(number(item, p)?)),
                None => (item, None),
            };
            let (name, arg) = match body.split_once(':') {
                Some((name, arg)) => (name.trim(), Some(arg.trim())),
                None => (body.trim(), None),
            };
            let p = probability.unwrap_or(1.0);
            let arg =
                || arg.ok_or_else(|| bad(item, format!("`{name}` takes a value: `{name}:...`")));
            let no_probability = || match probability {
                Some(_) => Err(bad(item, format!("`{name}` takes no probability"))),
                None => Ok(()),
            };
            match name {
                "none" | "study" | "forensic" | "flip" | "vflip" => {
                    if let Some(a) = body.split_once(':') {
                        return Err(bad(item, format!("`{name}` takes no value, got `{}`", a.1)));
                    }
                    no_probability()?;
                    match name {
                        "none" => out = Augment::none(),
                        "study" => out = Augment::study(),
                        "forensic" => out = Augment::forensic(),
                        "flip" => out.horizontal_flip = true,
                        _ => out.vertical_flip = true,
                    }
                }
                "rotate" | "shift" | "shear" | "zoom" | "brightness" => {
                    no_probability()?;
                    let text = arg()?;
                    match name {
                        "rotate" => out.rotation_range = number(item, text)?,
                        "shift" => {
                            let v = number(item, text)?;
                            out.width_shift_range = v;
                            out.height_shift_range = v;
                        }
                        "shear" => out.shear_range = number(item, text)?,
                        "zoom" => out.zoom_range = range(item, text)?,
                        _ => out.brightness_range = Some(range(item, text)?),
                    }
                }
                "crop" => {
                    out.random_crop = Some(RandomCrop {
                        min_scale: number(item, arg()?)?,
                        probability: p,
                    })
                }
                "blur" => {
                    out.blur = Some(BlurAugment {
                        sigma: range(item, arg()?)?,
                        probability: p,
                    })
                }
                "noise" => {
                    out.noise = Some(NoiseAugment {
                        std: range(item, arg()?)?,
                        probability: p,
                    })
                }
                "rescale" => {
                    out.rescale = Some(RescaleAugment {
                        scale: range(item, arg()?)?,
                        probability: p,
                    })
                }
                "jpeg" => {
                    let [a, b] = range(item, arg()?)?;
                    let whole = |v: f32| {
                        (v.fract() == 0.0 && (0.0..=255.0).contains(&v)).then_some(v as u8)
                    };
                    let (Some(a), Some(b)) = (whole(a), whole(b)) else {
                        return Err(bad(item, "JPEG qualities are whole numbers 1–100"));
                    };
                    out.jpeg = Some(JpegAugment {
                        quality: [a, b],
                        probability: p,
                    });
                }
                "contrast" | "saturation" => {
                    let r = range(item, arg()?)?;
                    let jitter = out.color_jitter.get_or_insert(ColorJitter {
                        contrast: [1.0, 1.0],
                        saturation: [1.0, 1.0],
                        probability: p,
                    });
                    jitter.probability = p;
                    if name == "contrast" {
                        jitter.contrast = r;
                    } else {
                        jitter.saturation = r;
                    }
                }
                other => return Err(bad(item, format!("unknown item `{other}`"))),
            }
        }
        out.validate().map_err(|e| match e {
            Error::InvalidConfig { option, message } => {
                Error::config("augment", format!("`{spec}`: {option} {message}"))
            }
            other => other,
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_equal_their_constructors_and_items_override() {
        assert_eq!(Augment::from_spec("none").expect("spec"), Augment::none());
        assert_eq!(Augment::from_spec("study").expect("spec"), Augment::study());
        let a = Augment::from_spec(
            "forensic, jpeg:30-95, rescale:0.5-1@0.25, contrast:0.8-1.2, saturation:0.5",
        )
        .expect("spec");
        assert_eq!(
            a.jpeg,
            Some(JpegAugment {
                quality: [30, 95],
                probability: 1.0
            })
        );
        assert_eq!(
            a.rescale,
            Some(RescaleAugment {
                scale: [0.5, 1.0],
                probability: 0.25
            })
        );
        assert_eq!(
            a.color_jitter,
            Some(ColorJitter {
                contrast: [0.8, 1.2],
                saturation: [0.5, 0.5],
                probability: 1.0
            })
        );
        // Everything else is the forensic preset's.
        assert_eq!(
            Augment {
                jpeg: None,
                rescale: None,
                color_jitter: None,
                ..a
            },
            Augment {
                jpeg: None,
                ..Augment::forensic()
            }
        );
        let b = Augment::from_spec("flip,vflip,rotate:15,shift:0.2,zoom:0.8-1.2,shear:3,brightness:0.9-1.1,crop:0.7@0.5,blur:0-2,noise:1-3@0.1")
            .expect("spec");
        assert!(b.horizontal_flip && b.vertical_flip);
        assert_eq!(
            (
                b.rotation_range,
                b.width_shift_range,
                b.height_shift_range,
                b.shear_range
            ),
            (15.0, 0.2, 0.2, 3.0)
        );
        assert_eq!(
            (b.zoom_range, b.brightness_range),
            ([0.8, 1.2], Some([0.9, 1.1]))
        );
        assert_eq!(
            b.random_crop,
            Some(RandomCrop {
                min_scale: 0.7,
                probability: 0.5
            })
        );
        assert_eq!(
            b.blur,
            Some(BlurAugment {
                sigma: [0.0, 2.0],
                probability: 1.0
            })
        );
        assert_eq!(
            b.noise,
            Some(NoiseAugment {
                std: [1.0, 3.0],
                probability: 0.1
            })
        );
    }

    #[test]
    fn bad_items_are_named() {
        for (spec, names) in [
            ("", "empty"),
            ("study,sharpen:2", "`sharpen`"),
            ("jpeg", "takes a value"),
            ("jpeg:0-95", "augment.jpeg.quality"),
            ("jpeg:30.5-95", "whole numbers"),
            ("jpeg:95-30", "augment.jpeg.quality"),
            ("blur:x", "`x` is not a number"),
            ("rescale:0-1", "augment.rescale.scale"),
            ("rescale:0.5-1.5", "augment.rescale.scale"),
            ("contrast:0.8-1.2@2", "augment.color_jitter.probability"),
            ("flip@0.5", "takes no probability"),
            ("study:1", "takes no value"),
        ] {
            let e = Augment::from_spec(spec).expect_err(spec).to_string();
            assert!(e.contains("augment") && e.contains(names), "{spec}: {e}");
        }
    }
}
