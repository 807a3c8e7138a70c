//! Datasets: class folders (Keras `flow_from_directory` layout) and CSV manifests, their
//! real/fake labelling, validation splits and rank-aware shards.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::augment::keyed_rng;
use crate::decode::{check_header, has_image_extension, load_rgb};
use crate::error::{Error, Result};
use crate::skip::{SkipReason, SkipReport, SkipSummary};
use crate::walk::Walker;

/// The binary label of a detector: is the face manipulated?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// A genuine image (target 0).
    Real,
    /// A manipulated image, the positive class (target 1).
    Fake,
}

impl Label {
    /// The training target: 1 for fake, 0 for real.
    pub fn target(self) -> f32 {
        match self {
            Label::Real => 0.0,
            Label::Fake => 1.0,
        }
    }

    /// 0 for real, 1 for fake.
    pub fn index(self) -> usize {
        match self {
            Label::Real => 0,
            Label::Fake => 1,
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Label::Real => "real",
            Label::Fake => "fake",
        })
    }
}

/// Which class names are fake (the positive class) and which are real. Names match
/// case-insensitively.
///
/// Keras' `flow_from_directory` numbers classes alphabetically, so with the MesoNet
/// authors' `df/` and `real/` folders "real" is class 1 and their model scores
/// "real". Here the positive class is chosen by name instead: outputs are always
/// logits of "fake".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassMapping {
    /// Class names taken as fake.
    pub fake: Vec<String>,
    /// Class names taken as real.
    pub real: Vec<String>,
    /// The label of a class in neither list; `None` makes such a class an error.
    pub others: Option<Label>,
}

impl Default for ClassMapping {
    /// Fake: `fake`, `df`, `deepfake`, `manipulated`; real: `real`, `original`,
    /// `pristine`; anything else is an error.
    fn default() -> Self {
        ClassMapping {
            fake: ["fake", "df", "deepfake", "manipulated"]
                .map(String::from)
                .to_vec(),
            real: ["real", "original", "pristine"].map(String::from).to_vec(),
            others: None,
        }
    }
}

impl ClassMapping {
    /// `name` is the positive (fake) class and every other class is real.
    pub fn positive(name: &str) -> Self {
        ClassMapping {
            fake: vec![name.to_string()],
            real: Vec::new(),
            others: Some(Label::Real),
        }
    }

    /// Explicit lists; classes in neither are an error.
    pub fn new<S: Into<String>>(
        fake: impl IntoIterator<Item = S>,
        real: impl IntoIterator<Item = S>,
    ) -> Self {
        ClassMapping {
            fake: fake.into_iter().map(Into::into).collect(),
            real: real.into_iter().map(Into::into).collect(),
            others: None,
        }
    }

    /// The label of class `name`, if the mapping knows it.
    pub fn label(&self, name: &str) -> Option<Label> {
        let is = |list: &[String]| list.iter().any(|n| n.eq_ignore_ascii_case(name));
        if is(&self.fake) {
            Some(Label::Fake)
        } else if is(&self.real) {
            Some(Label::Real)
        } else {
            self.others
        }
    }
}

/// How a dataset is opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderOptions {
    /// Class names to real/fake.
    pub mapping: ClassMapping,
    /// Read every file's header when opening, so zero-byte, non-image and
    /// header-corrupt files are listed (and left out) before training starts. Files
    /// whose pixel data is truncated are still only found when decoded.
    pub check_headers: bool,
    /// Follow symbolic links to directories when walking class folders.
    pub follow_links: bool,
    /// Accept a folder of real images only (its fake classes absent or empty, then left
    /// out of [`ImageFolder::classes`]): what training on self-blended pseudo-fakes reads.
    #[serde(default)]
    pub real_only: bool,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            mapping: ClassMapping::default(),
            check_headers: true,
            follow_links: true,
            real_only: false,
        }
    }
}

impl FolderOptions {
    /// Sets the class mapping.
    pub fn with_mapping(mut self, mapping: ClassMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Sets header checking.
    pub fn with_check_headers(mut self, check: bool) -> Self {
        self.check_headers = check;
        self
    }

    /// Accepts a folder of real images only ([`FolderOptions::real_only`]).
    pub fn with_real_only(mut self, real_only: bool) -> Self {
        self.real_only = real_only;
        self
    }
}

/// One class: its name (folder or manifest label), label and number of usable images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassInfo {
    /// Folder name or manifest label.
    pub name: String,
    /// Real or fake.
    pub label: Label,
    /// Number of usable samples.
    pub count: usize,
}

/// One image of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// The image file.
    pub path: PathBuf,
    /// Index into [`ImageFolder::classes`].
    pub class: usize,
    /// Real or fake.
    pub label: Label,
}

/// Anything the [`Loader`](crate::Loader) can draw images from.
pub trait ImageSource: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The label of sample `index` (< `len()`).
    fn label(&self, index: usize) -> Label;
    /// The path (or a name) of sample `index`, as reported in batches and skip lists.
    fn path(&self, index: usize) -> PathBuf;
    /// Decodes sample `index` to RGB.
    ///
    /// # Errors
    /// Why the sample must be skipped.
    fn load(&self, index: usize) -> std::result::Result<RgbImage, SkipReason>;
    /// Decodes sample `index` for epoch `epoch`: [`ImageSource::load`] unless the source
    /// draws its images anew each epoch (pseudo-fakes, [`crate::pseudo`]).
    ///
    /// # Errors
    /// As [`ImageSource::load`].
    fn load_epoch(&self, index: usize, epoch: u64) -> std::result::Result<RgbImage, SkipReason> {
        let _ = epoch;
        self.load(index)
    }
    /// Inputs left out before loading (found when the source was opened).
    fn skipped(&self) -> Vec<SkipReport> {
        Vec::new()
    }
}

/// A labelled list of image files: a directory with one sub-folder per class (Keras
/// `flow_from_directory` layout, classes sorted by name, sub-folders walked
/// recursively, files sorted), or a CSV manifest.
///
/// Files with the extensions in [`IMAGE_EXTENSIONS`](crate::IMAGE_EXTENSIONS) are
/// images; other non-hidden files are listed as skipped, hidden files (`.name`) are
/// ignored, and files directly in the root are ignored (as Keras does).
///
/// ```no_run
/// # mod deepfake { pub mod data { pub use df_data::*; } }
/// use deepfake::data::{ClassMapping, FolderOptions, ImageFolder};
/// # fn main() -> deepfake::data::Result<()> {
/// // The MesoNet authors' layout: df/ and real/.
/// let data = ImageFolder::open("data/train")?;
/// let (train, val) = data.validation_split(0.2, 42)?;
/// println!("{} train, {} validation, {} skipped", train.len(), val.len(), data.skipped().len());
/// // A folder named `swapped` is the positive class, everything else is real.
/// let opts = FolderOptions::default().with_mapping(ClassMapping::positive("swapped"));
/// let other = ImageFolder::open_with("data/other", &opts)?;
/// # let _ = other; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<ClassInfo>,
    samples: Vec<Sample>,
    skipped: Vec<SkipReport>,
}

impl ImageFolder {
    /// Opens the class folders under `root` with the default [`FolderOptions`].
    ///
    /// # Errors
    /// [`Error::MissingPath`] if `root` does not exist, [`Error::UnknownClass`] for a
    /// folder the mapping cannot label, [`Error::EmptyClass`] for a class without a
    /// usable image, [`Error::SingleClass`] unless both real and fake are present,
    /// [`Error::Io`] if a directory cannot be read.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(root, &FolderOptions::default())
    }

    /// Opens the class folders under `root` with `options`.
    ///
    /// # Errors
    /// As [`ImageFolder::open`].
    pub fn open_with(root: impl AsRef<Path>, options: &FolderOptions) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if !root.exists() {
            return Err(Error::MissingPath { path: root });
        }
        let mut class_dirs = Vec::new();
        for entry in std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))? {
            let entry = entry.map_err(|e| Error::io(&root, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if is_dir(&path, options.follow_links) {
                class_dirs.push((name, path));
            }
        }
        class_dirs.sort();
        let mut classes = Vec::new();
        let mut samples = Vec::new();
        let mut skipped = Vec::new();
        // Every class in one walk: each real directory is read once and each file admitted
        // once (under its path without links when it has one), so a link cannot put one
        // image in two classes or twice in one.
        let dirs: Vec<&Path> = class_dirs.iter().map(|(_, d)| d.as_path()).collect();
        let mut walked = Walker::new(options.follow_links)
            .walk_all(&dirs)?
            .into_iter();
        for (ci, (name, _)) in class_dirs.iter().enumerate() {
            let label = options
                .mapping
                .label(name)
                .ok_or_else(|| Error::UnknownClass {
                    root: root.clone(),
                    class: name.clone(),
                    fake: options.mapping.fake.clone(),
                    real: options.mapping.real.clone(),
                })?;
            let walked = walked.next().unwrap_or_default();
            skipped.extend(walked.skipped);
            let mut count = 0;
            for path in walked.files {
                if !has_image_extension(&path) {
                    skipped.push(SkipReport {
                        path,
                        reason: SkipReason::NotAnImage(
                            "extension is not jpg, jpeg, png, bmp or webp".into(),
                        ),
                    });
                    continue;
                }
                if options.check_headers {
                    if let Err(reason) = check_header(&path) {
                        skipped.push(SkipReport { path, reason });
                        continue;
                    }
                }
                samples.push(Sample {
                    path,
                    class: ci,
                    label,
                });
                count += 1;
            }
            classes.push(ClassInfo {
                name: name.clone(),
                label,
                count,
            });
        }
        let folder = ImageFolder {
            root,
            classes,
            samples,
            skipped,
        };
        if options.real_only {
            return folder.without_empty_fake_classes();
        }
        folder.check()?;
        Ok(folder)
    }

    /// A folder whose fake classes may be absent or empty (dropped), with real images.
    fn without_empty_fake_classes(self) -> Result<Self> {
        let has_fakes = self
            .classes
            .iter()
            .any(|c| c.label == Label::Fake && c.count > 0);
        if has_fakes {
            self.check()?;
            return Ok(self);
        }
        let keep: Vec<usize> = (0..self.classes.len())
            .filter(|&i| self.classes[i].label == Label::Real)
            .collect();
        let classes: Vec<ClassInfo> = keep.iter().map(|&i| self.classes[i].clone()).collect();
        let samples = self
            .samples
            .into_iter()
            .filter_map(|mut s| {
                let at = keep.iter().position(|&k| k == s.class)?;
                s.class = at;
                Some(s)
            })
            .collect();
        let folder = ImageFolder {
            root: self.root,
            classes,
            samples,
            skipped: self.skipped,
        };
        if let Some(c) = folder.classes.iter().find(|c| c.count == 0) {
            return Err(Error::EmptyClass {
                root: folder.root.clone(),
                class: c.name.clone(),
            });
        }
        if folder.classes.is_empty() {
            return Err(Error::SingleClass {
                root: folder.root.clone(),
                found: "no real class folder".into(),
                classes: Vec::new(),
            });
        }
        Ok(folder)
    }

    /// Reads a CSV manifest of `path,label` rows (a `path,label` header row is
    /// optional; further columns are ignored). Relative paths are resolved against the
    /// manifest's directory. A label `1` is fake and `0` real; any other label is a
    /// class name labelled by `options.mapping`. Classes are the distinct labels,
    /// sorted. Listed files that are missing or not images are skipped and reported.
    ///
    /// # Errors
    /// [`Error::MissingPath`], [`Error::Manifest`] for a malformed row, and the class
    /// errors of [`ImageFolder::open`].
    pub fn from_csv(manifest: impl AsRef<Path>, options: &FolderOptions) -> Result<Self> {
        let manifest = manifest.as_ref().to_path_buf();
        if !manifest.is_file() {
            return Err(Error::MissingPath { path: manifest });
        }
        let base = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_path(&manifest)
            .map_err(|e| csv_error(&manifest, e))?;
        let mut rows: Vec<(PathBuf, String)> = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| csv_error(&manifest, e))?;
            let line = record.position().map(|p| p.line()).unwrap_or(i as u64 + 1);
            if record.iter().all(str::is_empty) {
                continue;
            }
            if record.len() < 2 {
                return Err(Error::Manifest {
                    path: manifest,
                    line,
                    message: format!("expected `path,label`, got {} field(s)", record.len()),
                });
            }
            let (p, l) = (&record[0], &record[1]);
            if i == 0 && p.eq_ignore_ascii_case("path") && l.eq_ignore_ascii_case("label") {
                continue;
            }
            if p.is_empty() || l.is_empty() {
                return Err(Error::Manifest {
                    path: manifest,
                    line,
                    message: "empty path or label".into(),
                });
            }
            let path = Path::new(p);
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                base.join(path)
            };
            rows.push((path, l.to_string()));
        }
        let mut names: Vec<String> = rows.iter().map(|(_, l)| l.clone()).collect();
        names.sort();
        names.dedup();
        let mut classes = Vec::new();
        let mut index = BTreeMap::new();
        for (ci, name) in names.iter().enumerate() {
            let label = match name.as_str() {
                "1" => Label::Fake,
                "0" => Label::Real,
                other => options
                    .mapping
                    .label(other)
                    .ok_or_else(|| Error::UnknownClass {
                        root: manifest.clone(),
                        class: other.to_string(),
                        fake: options.mapping.fake.clone(),
                        real: options.mapping.real.clone(),
                    })?,
            };
            classes.push(ClassInfo {
                name: name.clone(),
                label,
                count: 0,
            });
            index.insert(name.clone(), ci);
        }
        let mut samples = Vec::new();
        let mut skipped = Vec::new();
        let mut walker = Walker::new(options.follow_links);
        for (path, l) in rows {
            let ci = index[&l];
            let checked = if options.check_headers {
                check_header(&path).map(|_| ())
            } else if path.is_file() {
                Ok(())
            } else {
                Err(SkipReason::Missing)
            };
            // A row listing a file already listed (under any path) is skipped.
            let checked = checked.and_then(|()| {
                let admitted = walker.file(&path);
                match admitted.skipped.into_iter().next() {
                    Some(report) => Err(report.reason),
                    None => Ok(()),
                }
            });
            match checked {
                Ok(()) => {
                    classes[ci].count += 1;
                    samples.push(Sample {
                        path,
                        class: ci,
                        label: classes[ci].label,
                    });
                }
                Err(reason) => skipped.push(SkipReport { path, reason }),
            }
        }
        let folder = ImageFolder {
            root: manifest,
            classes,
            samples,
            skipped,
        };
        folder.check()?;
        Ok(folder)
    }

    /// The dataset root (or the manifest file).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The classes, sorted by name.
    pub fn classes(&self) -> &[ClassInfo] {
        &self.classes
    }

    /// The samples, class by class, files sorted within a class.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Number of usable samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there is no usable sample (never, for a dataset that opened).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Files left out when the dataset was opened.
    pub fn skipped(&self) -> &[SkipReport] {
        &self.skipped
    }

    /// [`ImageFolder::skipped`] as a summary (serialisable to JSON).
    pub fn skip_summary(&self) -> SkipSummary {
        SkipSummary::new(self.skipped.clone())
    }

    /// Number of `(real, fake)` samples.
    pub fn label_counts(&self) -> (usize, usize) {
        let fake = self
            .samples
            .iter()
            .filter(|s| s.label == Label::Fake)
            .count();
        (self.samples.len() - fake, fake)
    }

    /// Splits off a validation set: in every class, the files are shuffled with `seed`
    /// and `round(fraction × count)` of them go to validation (stratified). The split
    /// depends only on the file list and `seed`. Both parts keep the class list; the
    /// skip list stays with the training part.
    ///
    /// Unlike Keras' `validation_split`, which takes the last files of each class in
    /// name order, the split is random (seeded), so sorted names carrying a bias
    /// (identities, sources) do not all land on one side.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (`validation_split`) unless `0 < fraction < 1` and every
    /// class keeps at least one image on each side.
    pub fn validation_split(&self, fraction: f64, seed: u64) -> Result<(ImageFolder, ImageFolder)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::config(
                "validation_split",
                format!("must be in (0, 1), got {fraction}"),
            ));
        }
        let mut train = Vec::new();
        let mut val = Vec::new();
        for (ci, class) in self.classes.iter().enumerate() {
            let mut members: Vec<&Sample> = self.samples.iter().filter(|s| s.class == ci).collect();
            let n_val = (fraction * members.len() as f64).round() as usize;
            if n_val == 0 || n_val == members.len() {
                return Err(Error::config(
                    "validation_split",
                    format!(
                        "class `{}` has {} image(s): a split of {fraction} leaves one side without it",
                        class.name,
                        members.len()
                    ),
                ));
            }
            let mut rng = keyed_rng(seed, 0, ci as u64, 0x7370_6c69_7421); // "split!"
            members.shuffle(&mut rng);
            let (v, t) = members.split_at(n_val);
            val.extend(v.iter().map(|s| (*s).clone()));
            train.extend(t.iter().map(|s| (*s).clone()));
        }
        let order =
            |v: &mut Vec<Sample>| v.sort_by(|a, b| (a.class, &a.path).cmp(&(b.class, &b.path)));
        order(&mut train);
        order(&mut val);
        Ok((
            self.with_samples(train, self.skipped.clone()),
            self.with_samples(val, Vec::new()),
        ))
    }

    /// `count` samples drawn at random with `seed`, each class keeping its share of the
    /// whole (stratified, rounded by largest remainder; every class keeps at least one):
    /// a smaller set to try a recipe on before the whole. The pick depends only on the file
    /// list and `seed`; the samples stay in the dataset's order and the skip list is kept.
    ///
    /// ```
    /// # mod deepfake { pub mod data { pub use df_data::*; } }
    /// use deepfake::data::synthetic;
    ///
    /// # fn main() -> deepfake::data::Result<()> {
    /// let tmp = tempfile::tempdir().expect("a private temporary folder");
    /// let data = synthetic::generate(&tmp.path().join("data"), 8, 32, 42)?; // 8 real + 8 fake
    /// let few = data.subset(6, 7)?;
    /// assert_eq!(few.label_counts(), (3, 3));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (`subset`) unless `count` is at least the number of classes
    /// and at most [`ImageFolder::len`].
    pub fn subset(&self, count: usize, seed: u64) -> Result<ImageFolder> {
        let total = self.samples.len();
        let sizes: Vec<usize> = (0..self.classes.len())
            .map(|ci| self.samples.iter().filter(|s| s.class == ci).count())
            .collect();
        let present = sizes.iter().filter(|&&n| n > 0).count();
        if count < present.max(1) || count > total {
            return Err(Error::config(
                "subset",
                format!(
                    "{count} of {total} images: need {} to {total} (one per class at least)",
                    present.max(1)
                ),
            ));
        }
        // Exact shares are count·size/total; in units of 1/total, the remainders compare
        // as integers. Start from the floor (at least one), then add to the largest
        // remainders, or take from the smallest, until the quotas make `count`.
        let exact = |ci: usize| (count * sizes[ci]) as i128;
        let mut quota: Vec<usize> = sizes
            .iter()
            .enumerate()
            .map(|(ci, &n)| {
                if n == 0 {
                    0
                } else {
                    (exact(ci) as usize / total).clamp(1, n)
                }
            })
            .collect();
        let gap = |q: &[usize], ci: usize| exact(ci) - (q[ci] * total) as i128;
        while quota.iter().sum::<usize>() < count {
            let ci = (0..quota.len())
                .filter(|&ci| quota[ci] < sizes[ci])
                .max_by_key(|&ci| (gap(&quota, ci), std::cmp::Reverse(ci)))
                .ok_or_else(|| Error::config("subset", "no class has an image left"))?;
            quota[ci] += 1;
        }
        while quota.iter().sum::<usize>() > count {
            let ci = (0..quota.len())
                .filter(|&ci| quota[ci] > 1)
                .min_by_key(|&ci| (gap(&quota, ci), ci))
                .ok_or_else(|| Error::config("subset", "every class is down to one image"))?;
            quota[ci] -= 1;
        }
        let mut picked = Vec::with_capacity(count);
        for (ci, &q) in quota.iter().enumerate() {
            let mut members: Vec<&Sample> = self.samples.iter().filter(|s| s.class == ci).collect();
            let mut rng = keyed_rng(seed, 0, ci as u64, 0x7375_6273_6574); // "subset"
            members.shuffle(&mut rng);
            picked.extend(members.into_iter().take(q).cloned());
        }
        picked.sort_by(|a, b| (a.class, &a.path).cmp(&(b.class, &b.path)));
        Ok(self.with_samples(picked, self.skipped.clone()))
    }

    /// Every `world_size`-th sample starting at `rank`, whatever classes that leaves: the
    /// part of a validation set one rank scores in data-parallel training, whose metrics
    /// are computed once every rank's scores are gathered. The parts are disjoint and
    /// cover the dataset.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (`shard`) unless `rank < world_size`.
    pub fn part(&self, rank: usize, world_size: usize) -> Result<ImageFolder> {
        if world_size == 0 || rank >= world_size {
            return Err(Error::config(
                "shard",
                format!("rank {rank} of world size {world_size}: need rank < world_size"),
            ));
        }
        let samples: Vec<Sample> = self
            .samples
            .iter()
            .skip(rank)
            .step_by(world_size)
            .cloned()
            .collect();
        Ok(self.with_samples(samples, self.skipped.clone()))
    }

    /// The part of the dataset rank `rank` of `world_size` processes reads in
    /// data-parallel training: every `world_size`-th sample starting at `rank` (the
    /// samples are ordered by class, so each shard keeps the class proportions). The
    /// shards are disjoint and cover the dataset; their sizes differ by at most one.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (`shard`) unless `rank < world_size`, or if a shard
    /// would miss a class.
    pub fn shard(&self, rank: usize, world_size: usize) -> Result<ImageFolder> {
        let shard = self.part(rank, world_size)?;
        if let Some(c) = shard.classes.iter().find(|c| c.count == 0) {
            return Err(Error::config(
                "shard",
                format!("class `{}` is too small for {world_size} shards", c.name),
            ));
        }
        Ok(shard)
    }

    /// Refuses two datasets that share a file (under any path: links are resolved), such
    /// as a training set and a separate validation folder.
    ///
    /// # Errors
    /// [`Error::SharedFile`] naming the first shared file; [`Error::Io`] for a path that
    /// no longer resolves.
    pub fn check_disjoint(&self, other: &ImageFolder) -> Result<()> {
        let canonical = |p: &Path| std::fs::canonicalize(p).map_err(|e| Error::io(p, e));
        let mut mine = std::collections::HashMap::new();
        for s in &self.samples {
            mine.insert(canonical(&s.path)?, s.path.clone());
        }
        for s in &other.samples {
            if let Some(file) = mine.get(&canonical(&s.path)?) {
                return Err(Error::SharedFile {
                    file: file.clone(),
                    other: s.path.clone(),
                    first_root: self.root.clone(),
                    second_root: other.root.clone(),
                });
            }
        }
        Ok(())
    }

    fn with_samples(&self, samples: Vec<Sample>, skipped: Vec<SkipReport>) -> ImageFolder {
        let mut classes = self.classes.clone();
        for c in &mut classes {
            c.count = 0;
        }
        for s in &samples {
            classes[s.class].count += 1;
        }
        ImageFolder {
            root: self.root.clone(),
            classes,
            samples,
            skipped,
        }
    }

    fn check(&self) -> Result<()> {
        if let Some(c) = self.classes.iter().find(|c| c.count == 0) {
            return Err(Error::EmptyClass {
                root: self.root.clone(),
                class: c.name.clone(),
            });
        }
        let has = |l: Label| self.classes.iter().any(|c| c.label == l);
        if !(has(Label::Real) && has(Label::Fake)) {
            let found = if self.classes.is_empty() {
                "no class folder".to_string()
            } else if has(Label::Real) {
                "real".to_string()
            } else {
                "fake".to_string()
            };
            return Err(Error::SingleClass {
                root: self.root.clone(),
                found,
                classes: self.classes.iter().map(|c| c.name.clone()).collect(),
            });
        }
        Ok(())
    }
}

impl ImageSource for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn label(&self, index: usize) -> Label {
        self.samples[index].label
    }

    fn path(&self, index: usize) -> PathBuf {
        self.samples[index].path.clone()
    }

    fn load(&self, index: usize) -> std::result::Result<RgbImage, SkipReason> {
        load_rgb(&self.samples[index].path)
    }

    fn skipped(&self) -> Vec<SkipReport> {
        self.skipped.clone()
    }
}

fn is_dir(path: &Path, follow_links: bool) -> bool {
    if follow_links {
        path.is_dir()
    } else {
        std::fs::symlink_metadata(path)
            .map(|m| m.is_dir())
            .unwrap_or(false)
    }
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    Error::Manifest {
        path: path.to_path_buf(),
        line,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A class folder layout of empty `.png` files (opened without reading headers):
    /// `real` files `r0.png`…, `fake` files `f0.png`….
    fn folder(real: usize, fake: usize) -> (tempfile::TempDir, ImageFolder) {
        let tmp = tempfile::tempdir().expect("a temporary folder");
        for (class, prefix, n) in [("real", "r", real), ("fake", "f", fake)] {
            let dir = tmp.path().join(class);
            std::fs::create_dir_all(&dir).expect("a class folder");
            for i in 0..n {
                std::fs::write(dir.join(format!("{prefix}{i:02}.png")), b"").expect("a file");
            }
        }
        let options = FolderOptions {
            check_headers: false,
            ..FolderOptions::default()
        };
        let data = ImageFolder::open_with(tmp.path(), &options).expect("the folder opens");
        (tmp, data)
    }

    fn names(data: &ImageFolder) -> Vec<String> {
        let mut names: Vec<String> = data
            .samples()
            .iter()
            .map(|s| {
                s.path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_real_only_folder_opens_only_when_asked_for() {
        let tmp = tempfile::tempdir().expect("a temporary folder");
        let real = tmp.path().join("real");
        std::fs::create_dir_all(&real).expect("real");
        for i in 0..3 {
            std::fs::write(real.join(format!("r{i}.png")), b"").expect("a file");
        }
        let options = FolderOptions {
            check_headers: false,
            ..FolderOptions::default()
        };
        let real_only = options.clone().with_real_only(true);
        // No fake folder, then an empty one: refused by default, a real-only set if asked.
        for step in ["absent", "empty"] {
            if step == "empty" {
                std::fs::create_dir_all(tmp.path().join("fake")).expect("fake");
            }
            assert!(
                ImageFolder::open_with(tmp.path(), &options).is_err(),
                "{step}"
            );
            let data = ImageFolder::open_with(tmp.path(), &real_only).expect(step);
            assert_eq!(data.label_counts(), (3, 0), "{step}");
            assert_eq!(
                data.classes().len(),
                1,
                "{step}: the empty class is left out"
            );
            assert!(data.samples().iter().all(|s| s.class == 0));
            let (train, val) = data.validation_split(0.34, 1).expect("a split");
            assert_eq!((train.len(), val.len()), (2, 1));
        }
        // With fakes it is an ordinary folder; with no real image it is refused.
        std::fs::write(tmp.path().join("fake").join("f0.png"), b"").expect("a file");
        let both = ImageFolder::open_with(tmp.path(), &real_only).expect("both");
        assert_eq!(both.label_counts(), (3, 1));
        std::fs::remove_dir_all(&real).expect("drop the reals");
        assert!(ImageFolder::open_with(tmp.path(), &real_only).is_err());
    }

    #[test]
    fn subset_keeps_each_class_share_of_distinct_files() {
        // 4 real and 12 fake: a quarter real, so 8 images are 2 real and 6 fake.
        let (_tmp, data) = folder(4, 12);
        let part = data.subset(8, 7).expect("8 of 16");
        assert_eq!(part.len(), 8);
        assert_eq!(part.label_counts(), (2, 6));
        assert_eq!(
            part.classes().iter().map(|c| c.count).collect::<Vec<_>>(),
            [6, 2] // classes sorted by name: fake, real
        );
        let mut all = names(&data);
        let picked = names(&part);
        let mut unique = picked.clone();
        unique.dedup();
        assert_eq!(unique.len(), 8, "no file twice: {picked:?}");
        all.retain(|n| picked.contains(n));
        assert_eq!(all, picked, "only files of the dataset");
        // Ordered as the dataset is: class by class, names sorted within a class.
        let order: Vec<(usize, PathBuf)> = part
            .samples()
            .iter()
            .map(|s| (s.class, s.path.clone()))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
        // The same seed picks the same files; the whole set is every file.
        assert_eq!(names(&data.subset(8, 7).expect("again")), picked);
        assert_eq!(names(&data.subset(16, 3).expect("all")), names(&data));
    }

    #[test]
    fn subset_seeds_pick_different_files() {
        let (_tmp, data) = folder(10, 10);
        let picks: std::collections::BTreeSet<Vec<String>> = (0..8)
            .map(|seed| names(&data.subset(4, seed).expect("4 of 20")))
            .collect();
        // 45² = 2025 ways to take 2 of each class: eight seeds giving one pick would
        // mean the seed is ignored.
        assert!(picks.len() > 1, "{picks:?}");
    }

    #[test]
    fn subset_keeps_a_small_class_and_refuses_impossible_sizes() {
        // 1 real in 20: 4 images still keep the real one (every class at least one).
        let (_tmp, data) = folder(1, 19);
        assert_eq!(data.subset(4, 1).expect("4 of 20").label_counts(), (1, 3));
        for count in [0, 1, 21] {
            let err = data.subset(count, 1).expect_err("not possible").to_string();
            assert!(err.contains("subset"), "{count}: {err}");
        }
    }
}
