//! Pseudo-fakes made from real images while training: [`PseudoFakes`] says how (self-blended
//! images, [`crate::sbi`]), [`PseudoFakeSource`] adds to an image set one pseudo-fake per
//! real image with a known face, drawn anew each epoch from `(seed, epoch, index)` (or once,
//! for validation), so that a run is reproducible and a resumed run sees what an
//! uninterrupted one would have.
//!
//! The pseudo-fake is made on the decoded image, before the loader's transform and
//! augmentation: the real image and its pseudo-fake then go through the same centre crop,
//! resize and augmentation (JPEG round-trip included), so that compression or resampling is
//! no cue to the label.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::augment::keyed_rng;
use crate::dataset::{ImageFolder, ImageSource, Label};
use crate::error::{Error, Result};
use crate::sbi::{self_blend, FaceGeometry, SbiConfig};
use crate::skip::{SkipReason, SkipReport};

/// How pseudo-fakes are made (recorded in a run's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum PseudoFakes {
    /// Self-blended images (Shiohara and Yamasaki, CVPR 2022) with these settings.
    Sbi(SbiConfig),
}

/// The names [`PseudoFakes::parse`] knows.
pub const PSEUDO_FAKE_METHODS: [&str; 1] = ["sbi"];

impl PseudoFakes {
    /// The method named `name` with its default settings: `sbi`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (`pseudo_fakes`) for another name, listing the known ones.
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim() {
            "sbi" => Ok(PseudoFakes::Sbi(SbiConfig::default())),
            other => Err(Error::config(
                "pseudo_fakes",
                format!(
                    "unknown pseudo-fake method `{other}`; known: {}",
                    PSEUDO_FAKE_METHODS.join(", ")
                ),
            )),
        }
    }

    /// The method's name (`sbi`).
    pub fn name(&self) -> &'static str {
        match self {
            PseudoFakes::Sbi(_) => "sbi",
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        match self {
            PseudoFakes::Sbi(c) => c.validate(),
        }
    }

    /// A pseudo-fake of `real` (whose face is `face`), drawn from the key
    /// `(seed, epoch, index)`.
    ///
    /// # Errors
    /// As [`self_blend`].
    pub fn make(
        &self,
        real: &RgbImage,
        face: &FaceGeometry,
        seed: u64,
        epoch: u64,
        index: u64,
    ) -> Result<RgbImage> {
        let mut rng = keyed_rng(seed, epoch, index, TAG_PSEUDO);
        match self {
            PseudoFakes::Sbi(c) => Ok(self_blend(real, face, c, &mut rng)?.image),
        }
    }
}

const TAG_PSEUDO: u64 = 0x7073_6575_646f_2121; // "pseudo!!"

/// The key of a validation pseudo-fake: its real image's path, hashed (FNV-1a), so that a
/// set split among processes draws the same pseudo-fakes as the whole.
fn path_key(path: &Path) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// An image set and one pseudo-fake (label fake) for each of its real images whose face is
/// known: samples `0..base.len()` are the set's, then the pseudo-fakes in the order of their
/// real images. A pseudo-fake's path is its real image's with `#sbi` appended.
#[derive(Debug, Clone)]
pub struct PseudoFakeSource {
    base: ImageFolder,
    /// Base index of each pseudo-fake's real image, and its face.
    faces: Vec<(usize, FaceGeometry)>,
    method: PseudoFakes,
    seed: u64,
    fixed: bool,
}

impl PseudoFakeSource {
    /// The set `base` with a pseudo-fake of every real image that `faces` (keyed by the
    /// sample's path) holds a face of, drawn anew each epoch from `(seed, epoch, index of
    /// the real image)`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for invalid settings.
    pub fn new(
        base: ImageFolder,
        faces: &BTreeMap<PathBuf, FaceGeometry>,
        method: PseudoFakes,
        seed: u64,
    ) -> Result<Self> {
        method.validate()?;
        let faces = base
            .samples()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.label == Label::Real)
            .filter_map(|(i, s)| faces.get(&s.path).map(|f| (i, *f)))
            .collect();
        Ok(Self {
            base,
            faces,
            method,
            seed,
            fixed: false,
        })
    }

    /// The same pseudo-fakes every epoch, each keyed by its real image's path rather than
    /// by the epoch and index (validation).
    pub fn fixed(mut self) -> Self {
        self.fixed = true;
        self
    }

    /// How many pseudo-fakes an epoch holds.
    pub fn pseudo_fakes(&self) -> usize {
        self.faces.len()
    }

    /// The set the pseudo-fakes are made from.
    pub fn base(&self) -> &ImageFolder {
        &self.base
    }

    fn pseudo_path(&self, base_index: usize) -> PathBuf {
        let mut p = self.base.samples()[base_index]
            .path
            .clone()
            .into_os_string();
        p.push("#");
        p.push(self.method.name());
        PathBuf::from(p)
    }
}

impl ImageSource for PseudoFakeSource {
    fn len(&self) -> usize {
        self.base.len() + self.faces.len()
    }

    fn label(&self, index: usize) -> Label {
        match index.checked_sub(self.base.len()) {
            None => self.base.label(index),
            Some(_) => Label::Fake,
        }
    }

    fn path(&self, index: usize) -> PathBuf {
        match index.checked_sub(self.base.len()) {
            None => self.base.path(index),
            Some(k) => self.pseudo_path(self.faces[k].0),
        }
    }

    fn load(&self, index: usize) -> std::result::Result<RgbImage, SkipReason> {
        self.load_epoch(index, 0)
    }

    fn load_epoch(&self, index: usize, epoch: u64) -> std::result::Result<RgbImage, SkipReason> {
        let Some(k) = index.checked_sub(self.base.len()) else {
            return self.base.load(index);
        };
        let (real_index, face) = self.faces[k];
        let real = self.base.load(real_index)?;
        let (epoch, key) = if self.fixed {
            (u64::MAX, path_key(&self.base.samples()[real_index].path))
        } else {
            (epoch, real_index as u64)
        };
        self.method
            .make(&real, &face, self.seed, epoch, key)
            .map_err(|e| SkipReason::NotAnImage(format!("no pseudo-fake: {e}")))
    }

    fn skipped(&self) -> Vec<SkipReport> {
        ImageSource::skipped(&self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_others_are_refused_by_name() {
        assert_eq!(
            PseudoFakes::parse("sbi").expect("sbi"),
            PseudoFakes::Sbi(SbiConfig::default())
        );
        let e = PseudoFakes::parse("blend")
            .expect_err("unknown")
            .to_string();
        assert!(
            e.contains("pseudo_fakes") && e.contains("blend") && e.contains("sbi"),
            "{e}"
        );
    }

    use crate::augment::{jpeg_roundtrip, to_rgb32f};
    use crate::{synthetic, Augment, FolderOptions, Loader, LoaderConfig, Transform};

    fn face(s: f32) -> FaceGeometry {
        FaceGeometry {
            bbox: [0.25 * s, 0.2 * s, 0.75 * s, 0.85 * s],
            landmarks: [
                [0.38 * s, 0.42 * s],
                [0.62 * s, 0.42 * s],
                [0.5 * s, 0.55 * s],
                [0.4 * s, 0.7 * s],
                [0.6 * s, 0.7 * s],
            ],
        }
    }

    /// Three synthetic real images of 48 px (no fake folder), each with a face.
    fn reals() -> (
        tempfile::TempDir,
        ImageFolder,
        BTreeMap<PathBuf, FaceGeometry>,
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        synthetic::generate(&dir, 3, 48, 4).expect("synthetic");
        std::fs::remove_dir_all(dir.join("fake")).expect("drop the fakes");
        let set = ImageFolder::open_with(&dir, &FolderOptions::default().with_real_only(true))
            .expect("a real-only folder opens");
        assert_eq!(set.label_counts(), (3, 0));
        let faces = set
            .samples()
            .iter()
            .map(|s| (s.path.clone(), face(48.0)))
            .collect();
        (tmp, set, faces)
    }

    #[test]
    fn pseudo_fakes_are_drawn_from_the_seed_the_epoch_and_the_index() {
        let (_tmp, set, mut faces) = reals();
        let sbi = PseudoFakes::Sbi(SbiConfig::default());
        let source = PseudoFakeSource::new(set.clone(), &faces, sbi, 7).expect("source");
        assert_eq!(source.len(), 6);
        let labels: Vec<Label> = (0..6).map(|i| source.label(i)).collect();
        assert_eq!(labels, [[Label::Real; 3], [Label::Fake; 3]].concat());
        for k in 0..3 {
            let real = set.load(k).expect("real");
            // The real image, the same every epoch.
            assert_eq!(source.load_epoch(k, 0).expect("real"), real);
            assert_eq!(source.load_epoch(k, 4).expect("real"), real);
            let at = |epoch| source.load_epoch(3 + k, epoch).expect("pseudo-fake");
            // Exactly the pseudo-fake of (seed 7, epoch, index k), again when asked again.
            let expected = sbi.make(&real, &face(48.0), 7, 2, k as u64).expect("made");
            assert_eq!(at(2), expected);
            assert_eq!(at(2), at(2));
            assert_ne!(at(2), real);
            assert_ne!(at(2), at(3), "a new pseudo-fake each epoch");
            let other = PseudoFakeSource::new(set.clone(), &faces, sbi, 8).expect("source");
            assert_ne!(other.load_epoch(3 + k, 2).expect("pseudo-fake"), at(2));
            assert!(source.path(3 + k).to_string_lossy().ends_with("#sbi"));
        }
        // Validation: the same pseudo-fakes every epoch.
        let fixed = source.clone().fixed();
        assert_eq!(
            fixed.load_epoch(4, 0).expect("pseudo-fake"),
            fixed.load_epoch(4, 9).expect("pseudo-fake")
        );
        // An image without a face gets no pseudo-fake.
        faces.remove(&set.samples()[1].path);
        let fewer = PseudoFakeSource::new(set.clone(), &faces, sbi, 7).expect("source");
        assert_eq!((fewer.len(), fewer.pseudo_fakes()), (5, 2));
        assert_eq!(fewer.path(4), source.path(5));
    }

    /// Real images and pseudo-fakes through a loader with a JPEG round-trip at quality 40:
    /// every sample, real or pseudo-fake, is its image round-tripped (none escapes it).
    #[test]
    fn pseudo_fakes_go_through_the_augmentation_of_the_real_images() {
        let (_tmp, set, faces) = reals();
        let sbi = PseudoFakes::Sbi(SbiConfig::default());
        let source = PseudoFakeSource::new(set, &faces, sbi, 7).expect("source");
        let transform = Transform::unit(48, 48);
        let config = LoaderConfig {
            batch_size: 6,
            shuffle: false,
            workers: 0,
            seed: 7,
            transform,
            augment: Augment::from_spec("jpeg:40-40").expect("spec"),
            ..LoaderConfig::default()
        };
        let loader = Loader::new(source.clone(), config).expect("loader");
        let batch = loader.epoch(1).next().expect("a batch").expect("batch");
        assert_eq!(batch.len(), 6);
        let got = Vec::<f32>::try_from(batch.images.view([-1])).expect("values");
        let per = transform.numel();
        for i in 0..6 {
            let image = source.load_epoch(i, 1).expect("image");
            let mut plain = vec![0f32; per];
            transform.write_chw_u8(&image, &mut plain).expect("plain");
            let round = jpeg_roundtrip(&to_rgb32f(&image), 40).expect("jpeg");
            let mut want = vec![0f32; per];
            transform.write_chw_f32(&round, &mut want).expect("jpeg'd");
            let sample = &got[i * per..(i + 1) * per];
            let diff = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max)
            };
            assert!(
                diff(sample, &want) < 1e-6,
                "sample {i}: not its JPEG round-trip"
            );
            assert!(
                diff(sample, &plain) > 1e-3,
                "sample {i}: the JPEG changed nothing"
            );
        }
    }

    #[test]
    fn the_config_round_trips_through_json() {
        let p = PseudoFakes::Sbi(SbiConfig::default());
        let text = serde_json::to_string(&p).expect("json");
        assert!(text.contains("\"method\":\"sbi\""), "{text}");
        let back: PseudoFakes = serde_json::from_str(&text).expect("read back");
        assert_eq!(back, p);
    }
}
