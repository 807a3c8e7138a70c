//! # A data audit: shortcuts a detector could learn instead of manipulation
//!
//! A detector that scores 0.98 may have learned how the data set's real and fake images
//! were *saved* rather than what was done to the faces: the shared lfw-faceswap set
//! stores every real image at JPEG quality 90 and every fake at 95. [`audit()`] reads each
//! file's header (format, size, JPEG quantisation tables and the IJG quality they were
//! scaled to, chroma subsampling, progressive coding, bytes per pixel, EXIF and its
//! software tag, PNG bit depth) and a perceptual hash of its pixels, and reports:
//!
//! - for each feature, how well it *alone* separates real from fake: the AUC of the best
//!   one-feature rule (a threshold on a number, or the best ordering of categories).
//!   At [`AuditOptions::flag_auc`] (0.8) or more, a plain sentence says what differs
//!   ("real images are JPEG quality 90, fake 95: a model can tell them apart without
//!   looking at faces");
//! - files with identical bytes in both classes (a label conflict), and validation images
//!   identical or nearly identical (perceptual hash) to a training image (a leak between
//!   the sets); near-duplicates across classes are counted as information (face-swap sets
//!   pair each fake with its source photo).
//!
//! ```no_run
//! # mod deepfake { pub mod data { pub use df_data::*; } }
//! use deepfake::data::{audit, AuditOptions, ImageFolder};
//! # fn main() -> deepfake::data::Result<()> {
//! let train = ImageFolder::open("data/train")?;
//! let val = ImageFolder::open("data/val")?;
//! let report = audit::audit(&train, Some(&val), &AuditOptions::default())?;
//! print!("{report}");
//! for finding in report.findings() {
//!     eprintln!("note: {}", finding.sentence);
//! }
//! # Ok(()) }
//! ```

pub mod headers;
pub mod stats;

use crate::{Error, ImageFolder, Label, Result};
use headers::{read_facts, FileFacts};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Which set a file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// The training set.
    Train,
    /// The validation set.
    Validation,
}

/// One file to audit.
#[derive(Debug, Clone)]
pub struct AuditFile {
    /// The file.
    pub path: PathBuf,
    /// Its label.
    pub label: Label,
    /// Its set.
    pub split: Split,
}

/// Settings of [`audit`].
#[derive(Debug, Clone, Serialize)]
pub struct AuditOptions {
    /// A feature whose one-feature AUC reaches this is flagged (default 0.8).
    pub flag_auc: f64,
    /// Two images whose 64-bit difference hashes differ in at most this many bits, and
    /// whose 16×16 grey thumbnails differ by at most [`NEAR_MEAN_DIFFERENCE`] levels on
    /// average, are near duplicates (default 4).
    pub near_duplicate_bits: u32,
    /// Whether to decode every image for its perceptual hash (near duplicates); the
    /// header features need no decoding (default true).
    pub perceptual_hash: bool,
    /// Threads reading files (default: the machine's, at most 8).
    pub threads: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            flag_auc: 0.8,
            near_duplicate_bits: 4,
            perceptual_hash: true,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
        }
    }
}

/// Files larger than this are not read (an image data set's files are far smaller).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// A file the audit could not read, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// One class's values of one feature.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Summary {
    /// A number: its median and range over the files that have it.
    Number {
        /// Files with a value.
        count: usize,
        /// The median.
        median: f64,
        /// The smallest value.
        min: f64,
        /// The largest value.
        max: f64,
    },
    /// A category: the most common values with their share of the class (at most 3).
    Category {
        /// `(value, share)` pairs, most common first.
        top: Vec<(String, f64)>,
    },
    /// No file of the class has the feature.
    None,
}

/// One feature's finding.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureReport {
    /// The feature's name ("jpeg_quality", "format", …).
    pub name: &'static str,
    /// The AUC of the best one-feature rule (0.5: no information, 1: the feature alone
    /// separates the classes); `None` when a class is empty.
    pub separability: Option<f64>,
    /// Whether it reaches the flag level.
    pub flagged: bool,
    /// The real class's values.
    pub real: Summary,
    /// The fake class's values.
    pub fake: Summary,
}

/// A pair of files, by path.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pair {
    /// The first file (the real one, or the training one).
    pub a: PathBuf,
    /// The second.
    pub b: PathBuf,
}

/// Examples kept per duplicate kind in the report (all are counted).
pub const PAIR_EXAMPLES: usize = 10;

/// Duplicate pairs of one kind: how many, and the first few.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Duplicates {
    /// Number of pairs.
    pub count: usize,
    /// The first [`PAIR_EXAMPLES`] pairs.
    pub examples: Vec<Pair>,
}

/// What the audit found between files.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DuplicateReport {
    /// Identical bytes, one file real and one fake.
    pub exact_across_classes: Duplicates,
    /// Identical bytes, one file in training and one in validation.
    pub exact_train_validation: Duplicates,
    /// Near-identical pixels (perceptual hash), one in training and one in validation.
    pub near_train_validation: Duplicates,
    /// Near-identical pixels, one real and one fake (information: paired data).
    pub near_across_classes: Duplicates,
}

/// A shortcut found, as a sentence.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The feature or check ("jpeg_quality", "exact_train_validation", …).
    pub check: String,
    /// The one-feature AUC, for feature findings.
    pub separability: Option<f64>,
    /// What a person should know.
    pub sentence: String,
}

/// The audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// The settings it ran with.
    pub options: AuditOptions,
    /// Real files audited.
    pub real: usize,
    /// Fake files audited.
    pub fake: usize,
    /// Training files audited.
    pub train: usize,
    /// Validation files audited.
    pub validation: usize,
    /// Each feature, in a fixed order.
    pub features: Vec<FeatureReport>,
    /// Duplicates.
    pub duplicates: DuplicateReport,
    /// The shortcuts found, as sentences (empty: none reached the flag level).
    pub findings: Vec<Finding>,
    /// Files that could not be read.
    pub unreadable: Vec<Unreadable>,
}

impl AuditReport {
    /// The shortcuts found.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Whether any shortcut was found.
    pub fn flagged(&self) -> bool {
        !self.findings.is_empty()
    }

    /// The feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&FeatureReport> {
        self.features.iter().find(|f| f.name == name)
    }
}

/// What was read from one file.
struct Read {
    facts: FileFacts,
    /// Content hash (crc32 and a second 64-bit hash of the bytes, with the length).
    content: (u32, u64, u64),
    /// Difference hash of the pixels, where decoded.
    dhash: Option<u64>,
    /// A 16×16 grey thumbnail, where decoded: confirms a near duplicate the hash found.
    thumb: Option<Vec<u8>>,
}

/// Near duplicates' thumbnails (16×16 grey) differ by at most this many grey levels on
/// average. The hash alone is not enough for aligned face crops: lfw-faceswap has pairs
/// of different people within 4 bits whose pixels are 10–15 dB apart.
pub const NEAR_MEAN_DIFFERENCE: f64 = 8.0;

fn thumbnail(image: &image::DynamicImage) -> Vec<u8> {
    image
        .resize_exact(16, 16, image::imageops::FilterType::Triangle)
        .to_luma8()
        .into_raw()
}

fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x.abs_diff(y)))
        .sum::<f64>()
        / a.len().max(1) as f64
}

fn content_hash(bytes: &[u8]) -> (u32, u64, u64) {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    (crc32fast::hash(bytes), h.finish(), bytes.len() as u64)
}

/// The 64-bit difference hash of an image: its grey levels at 9×8 (bilinear), each bit
/// whether a pixel is darker than its right neighbour (Krawetz's dHash).
pub fn dhash(image: &image::DynamicImage) -> u64 {
    // `DynamicImage`'s own (non-generic) methods: compiled, optimised, in `image`.
    let small = image
        .resize_exact(9, 8, image::imageops::FilterType::Triangle)
        .to_luma8();
    let mut bits = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            let left = small.get_pixel(x, y)[0];
            let right = small.get_pixel(x + 1, y)[0];
            bits = bits << 1 | u64::from(left < right);
        }
    }
    bits
}

fn read_one(path: &Path, options: &AuditOptions) -> Result<Read, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!("larger than {} MiB", MAX_FILE_BYTES >> 20));
    }
    let bytes = df_io::read_regular(path).map_err(|e| e.to_string())?;
    let facts = read_facts(&bytes).map_err(|e| e.to_string())?;
    let (dhash, thumb) = if options.perceptual_hash {
        let image = image::load_from_memory(&bytes).map_err(|e| format!("cannot decode: {e}"))?;
        (Some(dhash(&image)), Some(thumbnail(&image)))
    } else {
        (None, None)
    };
    Ok(Read {
        facts,
        content: content_hash(&bytes),
        dhash,
        thumb,
    })
}

fn read_all(files: &[AuditFile], options: &AuditOptions) -> Vec<Result<Read, String>> {
    let threads = options.threads.clamp(1, 64).min(files.len().max(1));
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|f| read_one(&f.path, options))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("the reading thread failed".to_string())])
            })
            .collect()
    })
}

/// The value of one feature for one file.
enum Value {
    Number(f64),
    Category(String),
}

/// How a feature is read from a file's facts.
type Reader = fn(&FileFacts) -> Value;

/// The features, in report order: name and how to read it from a file's facts.
const FEATURES: &[(&str, Reader)] = &[
    ("format", |f| Value::Category(f.format.name().into())),
    ("jpeg_quality", |f| {
        Value::Number(f.jpeg.as_ref().map_or(f64::NAN, |j| f64::from(j.quality)))
    }),
    ("jpeg_tables", |f| {
        Value::Category(
            f.jpeg
                .as_ref()
                .map_or(
                    "not JPEG",
                    |j| if j.standard_tables { "IJG" } else { "custom" },
                )
                .into(),
        )
    }),
    ("chroma_subsampling", |f| {
        Value::Category(
            f.jpeg
                .as_ref()
                .map_or("not JPEG".into(), |j| j.subsampling.clone()),
        )
    }),
    ("jpeg_coding", |f| {
        Value::Category(
            f.jpeg
                .as_ref()
                .map_or("not JPEG", |j| {
                    if j.progressive {
                        "progressive"
                    } else {
                        "baseline"
                    }
                })
                .into(),
        )
    }),
    ("width", |f| Value::Number(f64::from(f.width))),
    ("height", |f| Value::Number(f64::from(f.height))),
    ("aspect_ratio", |f| {
        Value::Number(f64::from(f.width) / f64::from(f.height))
    }),
    ("bytes_per_pixel", |f| {
        Value::Number(f.bytes as f64 / (f64::from(f.width) * f64::from(f.height)))
    }),
    ("exif", |f| {
        Value::Category(if f.exif { "EXIF" } else { "no EXIF" }.into())
    }),
    ("software", |f| {
        Value::Category(f.software.clone().unwrap_or_else(|| "none".into()))
    }),
    ("png_bit_depth", |f| {
        Value::Category(
            f.png_bit_depth
                .map_or("not PNG".into(), |d| format!("{d}-bit")),
        )
    }),
];

fn summarise_numbers(mut values: Vec<f64>) -> Summary {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return Summary::None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Summary::Number {
        count: n,
        median,
        min: values[0],
        max: values[n - 1],
    }
}

fn summarise_categories(values: &[&String]) -> Summary {
    if values.is_empty() {
        return Summary::None;
    }
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for v in values {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    let mut top: Vec<(String, f64)> = counts
        .into_iter()
        .map(|(k, c)| (k.to_string(), c as f64 / values.len() as f64))
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(3);
    Summary::Category { top }
}

fn typical(summary: &Summary) -> Option<String> {
    match summary {
        Summary::Number { median, .. } => Some(short(*median)),
        Summary::Category { top } => top.first().map(|(v, _)| v.clone()),
        Summary::None => None,
    }
}

/// A number as a person writes it: integers without decimals, others to two places.
fn short(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        format!("{v:.2}")
    }
}

/// The sentence for a flagged feature: what differs, in the feature's own words.
fn sentence(feature: &FeatureReport) -> String {
    let (real, fake) = (typical(&feature.real), typical(&feature.fake));
    let (r, f) = (
        real.clone().unwrap_or_default(),
        fake.clone().unwrap_or_default(),
    );
    let what = if real == fake {
        // Same typical value, different distributions.
        format!(
            "the {} of real and fake images is distributed differently ({})",
            feature.name.replace('_', " "),
            describe(feature)
        )
    } else {
        match feature.name {
            "format" => format!("real images are {r}, fake {f}"),
            "jpeg_quality" => format!("real images are JPEG quality {r}, fake {f}"),
            "jpeg_tables" => format!("real images have {r} quantisation tables, fake {f}"),
            "chroma_subsampling" => format!("real images have chroma subsampling {r}, fake {f}"),
            "jpeg_coding" => format!("real images are {r} JPEG, fake {f}"),
            "width" => format!("real images are {r} px wide, fake {f}"),
            "height" => format!("real images are {r} px high, fake {f}"),
            "aspect_ratio" => format!("real images have aspect ratio {r}, fake {f}"),
            "bytes_per_pixel" => format!("real images take {r} bytes per pixel, fake {f}"),
            "exif" if r == "EXIF" => "real images carry EXIF metadata, fake do not".into(),
            "exif" => "fake images carry EXIF metadata, real do not".into(),
            "software" => {
                let saved = |s: &str| {
                    if s == "none" {
                        "carry no software tag".to_string()
                    } else {
                        format!("were saved by {s:?}")
                    }
                };
                format!("real images {}, fake {}", saved(&r), saved(&f))
            }
            "png_bit_depth" => format!("real images are {r} PNG, fake {f}"),
            other => format!("{other}: real {r}, fake {f}"),
        }
    };
    format!(
        "{what}: a model can tell them apart without looking at faces (this alone separates the classes with AUC {:.2})",
        feature.separability.unwrap_or(f64::NAN)
    )
}

fn describe(feature: &FeatureReport) -> String {
    let one = |s: &Summary| match s {
        Summary::Number {
            median, min, max, ..
        } => format!("median {}, {}–{}", short(*median), short(*min), short(*max)),
        Summary::Category { top } => top
            .iter()
            .map(|(v, p)| format!("{v} {:.0} %", 100.0 * p))
            .collect::<Vec<_>>()
            .join(", "),
        Summary::None => "none".into(),
    };
    format!("real: {}; fake: {}", one(&feature.real), one(&feature.fake))
}

fn pairs_of(
    found: Vec<(usize, usize)>,
    files: &[&AuditFile],
    order: impl Fn(usize, usize) -> (usize, usize),
) -> Duplicates {
    let count = found.len();
    let examples = found
        .into_iter()
        .take(PAIR_EXAMPLES)
        .map(|(i, j)| {
            let (a, b) = order(i, j);
            Pair {
                a: files[a].path.clone(),
                b: files[b].path.clone(),
            }
        })
        .collect();
    Duplicates { count, examples }
}

impl AuditOptions {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting at fault.
    pub fn check(&self) -> Result<()> {
        if !(self.flag_auc > 0.5 && self.flag_auc <= 1.0) {
            return Err(Error::InvalidConfig {
                option: "flag_auc",
                message: format!("{} is not in (0.5, 1]", self.flag_auc),
            });
        }
        if self.near_duplicate_bits > 16 {
            return Err(Error::InvalidConfig {
                option: "near_duplicate_bits",
                message: format!(
                    "{} is more than 16 of the hash's 64 bits",
                    self.near_duplicate_bits
                ),
            });
        }
        if self.threads == 0 {
            return Err(Error::InvalidConfig {
                option: "threads",
                message: "0 threads".into(),
            });
        }
        Ok(())
    }
}

/// Audits a training set and, where given, its validation set (see the module's
/// documentation). Files the sets skipped when they were opened are not audited.
///
/// # Errors
/// [`Error::InvalidConfig`] for a setting out of its domain.
pub fn audit(
    train: &ImageFolder,
    validation: Option<&ImageFolder>,
    options: &AuditOptions,
) -> Result<AuditReport> {
    let mut files: Vec<AuditFile> = train
        .samples()
        .iter()
        .map(|s| AuditFile {
            path: s.path.clone(),
            label: s.label,
            split: Split::Train,
        })
        .collect();
    if let Some(validation) = validation {
        files.extend(validation.samples().iter().map(|s| AuditFile {
            path: s.path.clone(),
            label: s.label,
            split: Split::Validation,
        }));
    }
    audit_files(&files, options)
}

/// Audits `files` (see the module's documentation).
///
/// # Errors
/// [`Error::InvalidConfig`] for a setting out of its domain.
pub fn audit_files(files: &[AuditFile], options: &AuditOptions) -> Result<AuditReport> {
    options.check()?;
    let reads = read_all(files, options);
    let mut unreadable = Vec::new();
    let mut ok: Vec<(&AuditFile, Read)> = Vec::new();
    for (file, read) in files.iter().zip(reads) {
        match read {
            Ok(r) => ok.push((file, r)),
            Err(reason) => unreadable.push(Unreadable {
                path: file.path.clone(),
                reason,
            }),
        }
    }
    let positive: Vec<bool> = ok.iter().map(|(f, _)| f.label == Label::Fake).collect();
    let features: Vec<FeatureReport> = FEATURES
        .iter()
        .map(|(name, get)| {
            let values: Vec<Value> = ok.iter().map(|(_, r)| get(&r.facts)).collect();
            let (separability, real, fake) = match values.first() {
                Some(Value::Number(_)) | None => {
                    let nums: Vec<f64> = values
                        .iter()
                        .map(|v| {
                            if let Value::Number(x) = v {
                                *x
                            } else {
                                f64::NAN
                            }
                        })
                        .collect();
                    let class = |fake: bool| {
                        nums.iter()
                            .zip(&positive)
                            .filter(|(_, &p)| p == fake)
                            .map(|(v, _)| *v)
                            .collect()
                    };
                    (
                        stats::separability(&nums, &positive),
                        summarise_numbers(class(false)),
                        summarise_numbers(class(true)),
                    )
                }
                Some(Value::Category(_)) => {
                    let cats: Vec<String> = values
                        .into_iter()
                        .map(|v| {
                            if let Value::Category(c) = v {
                                c
                            } else {
                                String::new()
                            }
                        })
                        .collect();
                    let class = |fake: bool| -> Vec<&String> {
                        cats.iter()
                            .zip(&positive)
                            .filter(|(_, &p)| p == fake)
                            .map(|(v, _)| v)
                            .collect()
                    };
                    (
                        stats::categorical_separability(&cats, &positive),
                        summarise_categories(&class(false)),
                        summarise_categories(&class(true)),
                    )
                }
            };
            let flagged = separability.is_some_and(|s| s >= options.flag_auc);
            FeatureReport {
                name,
                separability,
                flagged,
                real,
                fake,
            }
        })
        .collect();

    let audited: Vec<&AuditFile> = ok.iter().map(|(f, _)| *f).collect();
    let real_first = |i: usize, j: usize| {
        if audited[i].label == Label::Fake {
            (j, i)
        } else {
            (i, j)
        }
    };
    let train_first = |i: usize, j: usize| {
        if audited[i].split == Split::Validation {
            (j, i)
        } else {
            (i, j)
        }
    };
    let across = |i: usize, j: usize| audited[i].label != audited[j].label;
    let between = |i: usize, j: usize| audited[i].split != audited[j].split;

    let mut by_content: std::collections::HashMap<(u32, u64, u64), Vec<usize>> = Default::default();
    for (i, (_, r)) in ok.iter().enumerate() {
        by_content.entry(r.content).or_default().push(i);
    }
    let mut exact_classes = Vec::new();
    let mut exact_splits = Vec::new();
    for group in by_content.values() {
        for (a, &i) in group.iter().enumerate() {
            for &j in &group[a + 1..] {
                let (i, j) = (i.min(j), i.max(j));
                if across(i, j) {
                    exact_classes.push((i, j));
                }
                if between(i, j) {
                    exact_splits.push((i, j));
                }
            }
        }
    }
    exact_classes.sort_unstable();
    exact_splits.sort_unstable();

    let hashed: Vec<usize> = (0..ok.len()).filter(|&i| ok[i].1.dhash.is_some()).collect();
    let hashes: Vec<u64> = hashed.iter().map(|&i| ok[i].1.dhash.unwrap_or(0)).collect();
    let bits = options.near_duplicate_bits;
    let near = |keep: &dyn Fn(usize, usize) -> bool| -> Vec<(usize, usize)> {
        let mut pairs: Vec<(usize, usize)> = stats::near_pairs(&hashes, bits, |a, b| {
            let (i, j) = (hashed[a], hashed[b]);
            let close = match (&ok[i].1.thumb, &ok[j].1.thumb) {
                (Some(x), Some(y)) => mean_difference(x, y) <= NEAR_MEAN_DIFFERENCE,
                _ => false,
            };
            close && keep(i, j)
        })
        .into_iter()
        .map(|(a, b)| (hashed[a].min(hashed[b]), hashed[a].max(hashed[b])))
        .collect();
        pairs.sort_unstable();
        pairs
    };
    let duplicates = DuplicateReport {
        exact_across_classes: pairs_of(exact_classes, &audited, real_first),
        exact_train_validation: pairs_of(exact_splits, &audited, train_first),
        near_train_validation: pairs_of(near(&between), &audited, train_first),
        near_across_classes: pairs_of(near(&across), &audited, real_first),
    };

    let mut findings: Vec<Finding> = features
        .iter()
        .filter(|f| f.flagged)
        .map(|f| Finding {
            check: f.name.into(),
            separability: f.separability,
            sentence: sentence(f),
        })
        .collect();
    let d = &duplicates;
    if d.exact_across_classes.count > 0 {
        findings.push(Finding {
            check: "exact_across_classes".into(),
            separability: None,
            sentence: format!(
                "{} pair(s) of files have identical bytes but one is labelled real and the other fake (e.g. {} and {})",
                d.exact_across_classes.count,
                d.exact_across_classes.examples[0].a.display(),
                d.exact_across_classes.examples[0].b.display()
            ),
        });
    }
    for (check, dups, how) in [
        (
            "exact_train_validation",
            &d.exact_train_validation,
            "identical bytes",
        ),
        (
            "near_train_validation",
            &d.near_train_validation,
            "near-identical pixels",
        ),
    ] {
        if dups.count > 0 {
            findings.push(Finding {
                check: check.into(),
                separability: None,
                sentence: format!(
                    "{} training/validation pair(s) have {how} (e.g. {} and {}): validation figures measure memory, not detection",
                    dups.count,
                    dups.examples[0].a.display(),
                    dups.examples[0].b.display()
                ),
            });
        }
    }
    Ok(AuditReport {
        options: options.clone(),
        real: positive.iter().filter(|&&p| !p).count(),
        fake: positive.iter().filter(|&&p| p).count(),
        train: audited.iter().filter(|f| f.split == Split::Train).count(),
        validation: audited
            .iter()
            .filter(|f| f.split == Split::Validation)
            .count(),
        features,
        duplicates,
        findings,
        unreadable,
    })
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "audited {} real and {} fake images ({} training, {} validation; {} unreadable)",
            self.real,
            self.fake,
            self.train,
            self.validation,
            self.unreadable.len()
        )?;
        writeln!(
            f,
            "{:<20} {:>6}  {:<34} {:<34}",
            "feature", "AUC", "real", "fake"
        )?;
        let cell = |s: &Summary| -> String {
            let text = match s {
                Summary::Number {
                    median, min, max, ..
                } if min == max => short(*median),
                Summary::Number {
                    median, min, max, ..
                } => format!("{} ({}–{})", short(*median), short(*min), short(*max)),
                Summary::Category { top } => top
                    .iter()
                    .map(|(v, p)| format!("{v} {:.0}%", 100.0 * p))
                    .collect::<Vec<_>>()
                    .join(", "),
                Summary::None => "-".into(),
            };
            text.chars().take(34).collect()
        };
        for feature in &self.features {
            let auc = feature
                .separability
                .map_or("-".into(), |a| format!("{a:.2}"));
            let mark = if feature.flagged { " !" } else { "" };
            writeln!(
                f,
                "{:<20} {:>6}  {:<34} {:<34}{mark}",
                feature.name,
                auc,
                cell(&feature.real),
                cell(&feature.fake)
            )?;
        }
        let d = &self.duplicates;
        writeln!(
            f,
            "duplicates: {} identical across classes, {} identical and {} near-identical between training and validation, {} near-identical across classes",
            d.exact_across_classes.count, d.exact_train_validation.count, d.near_train_validation.count, d.near_across_classes.count
        )?;
        if self.findings.is_empty() {
            writeln!(
                f,
                "no shortcut found: no feature alone reaches AUC {:.2}",
                self.options.flag_auc
            )?;
        }
        for finding in &self.findings {
            writeln!(f, "shortcut: {}", finding.sentence)?;
        }
        Ok(())
    }
}
