//! The faces pseudo-fakes are made about (`train --pseudo-fakes sbi`): each real training
//! image's face (MTCNN's box and five landmarks, the largest face), found once and kept.
//!
//! Where they come from, in order: a `prepare_faces` folder's manifest
//! (`prepare-faces.json`, which records each crop's face in the crop's pixels); the run's
//! landmark cache (`landmarks.json` in the run folder, each image keyed by its path relative
//! to the data folder, its size and modification time); else MTCNN, run once over the
//! images neither holds, whose results (a face or none) the cache then keeps, so that a
//! resumed run does not detect again. An image without a face gets no pseudo-fake.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use df_data::image::RgbImage;
use df_data::sbi::FaceGeometry;
use df_data::{ImageFolder, Label};
use serde::{Deserialize, Serialize};

use crate::error::{config, Result};

/// The cache's file name in a run folder.
pub const LANDMARKS_FILE: &str = "landmarks.json";

/// What finds the face of an image: MTCNN ([`MtcnnFinder`]) in a run, anything in tests.
pub trait FaceFinder {
    /// The largest face of `image`, `None` when there is none.
    ///
    /// # Errors
    /// The detector fails.
    fn find(&mut self, image: &RgbImage) -> Result<Option<FaceGeometry>>;
}

/// df-face's MTCNN with its default settings, the largest face.
pub struct MtcnnFinder(df_face::Mtcnn);

impl MtcnnFinder {
    /// The detector from the set-up's weights ([`df_face::default_weights_path`]), on the CPU.
    ///
    /// # Errors
    /// [`crate::Error::Config`] (`pseudo_fakes`) when the weights are missing or unreadable.
    pub fn load() -> Result<Self> {
        let bad = |e: df_face::Error| {
            config(
                "pseudo_fakes",
                format!("the faces of the real images are found with MTCNN: {e}"),
            )
        };
        let path = df_face::default_weights_path().map_err(bad)?;
        let mtcnn = df_face::Mtcnn::load(&path, df_face::MtcnnConfig::default(), tch::Device::Cpu)
            .map_err(bad)?;
        Ok(Self(mtcnn))
    }
}

impl FaceFinder for MtcnnFinder {
    fn find(&mut self, image: &RgbImage) -> Result<Option<FaceGeometry>> {
        let faces = self
            .0
            .detect(image)
            .map_err(|e| config("pseudo_fakes", format!("MTCNN: {e}")))?;
        Ok(faces
            .iter()
            .max_by(|a, b| a.area().total_cmp(&b.area()))
            .map(|f| FaceGeometry {
                bbox: f.bbox,
                landmarks: f.landmarks,
            }))
    }
}

/// One image's entry in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CachedFace {
    /// The file's size in bytes when its face was found.
    pub size: u64,
    /// Its modification time then, nanoseconds since the Unix epoch (0 when unknown).
    pub mtime_ns: u64,
    /// Its largest face, `None` when it has none.
    pub face: Option<FaceGeometry>,
}

/// The landmark cache (`landmarks.json`): each image's face by its path relative to the
/// data folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LandmarkCache {
    /// The detector that found the faces.
    pub detector: String,
    /// Path relative to the data folder → its face.
    pub images: BTreeMap<String, CachedFace>,
}

const DETECTOR: &str = "mtcnn (facenet-pytorch 2.6.0 weights), largest face";

impl LandmarkCache {
    /// The cache in `path`; `None` when there is none, or when it cannot be read (a note
    /// says so: the faces are then found again).
    pub fn read(path: &Path) -> Option<Self> {
        let text = match df_io::read_regular_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                eprintln!("note: {}: {e}; the faces are found again", path.display());
                return None;
            }
        };
        match serde_json::from_str::<LandmarkCache>(&text) {
            Ok(c) if c.detector == DETECTOR => Some(c),
            Ok(_) => None,
            Err(e) => {
                eprintln!(
                    "note: {} is not a landmark cache ({e}); the faces are found again",
                    path.display()
                );
                None
            }
        }
    }
}

/// The faces of a set's real images and where they came from.
#[derive(Debug, Clone, Default)]
pub struct FaceTable {
    /// Each real image's face, by its path as the set lists it.
    pub faces: BTreeMap<PathBuf, FaceGeometry>,
    /// Real images without a face (no pseudo-fake for them).
    pub no_face: Vec<PathBuf>,
    /// Faces taken from the `prepare_faces` manifest.
    pub from_manifest: usize,
    /// Faces (or their absence) taken from the cache.
    pub from_cache: usize,
    /// Images the detector was run on.
    pub detected: usize,
    /// The cache to keep: every image not covered by the manifest.
    pub cache: LandmarkCache,
}

/// The size and modification time that key an image in the cache.
fn file_key(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(crate::error::io(path))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Ok((meta.len(), mtime))
}

/// The faces a `prepare_faces` manifest in `root` records, by crop path relative to
/// `root`; empty when there is no manifest or it records none (older manifests).
///
/// # Errors
/// A manifest that is there but not JSON, or whose faces are malformed.
pub fn manifest_faces(root: &Path) -> Result<BTreeMap<String, FaceGeometry>> {
    let path = root.join(crate::source::FACE_MANIFEST);
    let text = match df_io::read_regular_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(config(path.display().to_string(), e.to_string())),
    };
    #[derive(Deserialize)]
    struct Faces {
        #[serde(default)]
        faces: BTreeMap<String, FaceGeometry>,
    }
    let m: Faces = serde_json::from_str(&text)
        .map_err(|e| config(path.display().to_string(), format!("its faces: {e}")))?;
    Ok(m.faces)
}

/// Makes a face finder: called once by each detecting thread, on that thread (a libtorch
/// module is not shared between threads).
pub type FinderFactory<'a> = dyn Fn() -> Result<Box<dyn FaceFinder>> + Sync + 'a;

/// The faces of `set`'s real images (see the module's documentation): from `manifest`
/// (crop paths relative to `root`), then `cache`, then a finder made by `finder`, only
/// when an image needs one (a run whose faces are all known loads no detector), on up to
/// `threads` threads, each with its own.
///
/// # Errors
/// A file's size cannot be read; the detector cannot be made or fails.
pub fn find_faces(
    set: &ImageFolder,
    root: &Path,
    manifest: &BTreeMap<String, FaceGeometry>,
    cache: Option<&LandmarkCache>,
    finder: &FinderFactory<'_>,
    threads: usize,
) -> Result<FaceTable> {
    let mut table = FaceTable {
        cache: LandmarkCache {
            detector: DETECTOR.into(),
            images: BTreeMap::new(),
        },
        ..FaceTable::default()
    };
    // (sample path, relative path, size, mtime) of each image to detect.
    let mut todo = Vec::new();
    let mut known: Vec<(PathBuf, String, CachedFace)> = Vec::new();
    for sample in set.samples().iter().filter(|s| s.label == Label::Real) {
        let rel = sample
            .path
            .strip_prefix(root)
            .unwrap_or(&sample.path)
            .to_string_lossy()
            .into_owned();
        if let Some(face) = manifest.get(&rel) {
            table.faces.insert(sample.path.clone(), *face);
            table.from_manifest += 1;
            continue;
        }
        let (size, mtime_ns) = file_key(&sample.path)?;
        let cached = cache
            .and_then(|c| c.images.get(&rel))
            .filter(|c| c.size == size && c.mtime_ns == mtime_ns);
        match cached {
            Some(c) => {
                table.from_cache += 1;
                known.push((sample.path.clone(), rel, *c));
            }
            None => todo.push((sample.path.clone(), rel, size, mtime_ns)),
        }
    }
    let found = detect_all(&todo, finder, threads)?;
    table.detected = todo.len();
    for ((path, rel, size, mtime_ns), face) in todo.into_iter().zip(found) {
        known.push((
            path,
            rel,
            CachedFace {
                size,
                mtime_ns,
                face,
            },
        ));
    }
    for (path, rel, entry) in known {
        match entry.face {
            Some(f) => {
                table.faces.insert(path, f);
            }
            None => table.no_face.push(path),
        }
        table.cache.images.insert(rel, entry);
    }
    table.no_face.sort();
    Ok(table)
}

/// The face of each image of `todo` (in its order), found on up to `threads` threads.
fn detect_all(
    todo: &[(PathBuf, String, u64, u64)],
    finder: &FinderFactory<'_>,
    threads: usize,
) -> Result<Vec<Option<FaceGeometry>>> {
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = threads.clamp(1, todo.len());
    let parts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<Vec<(usize, Option<FaceGeometry>)>> {
                    let mut detector: Option<Box<dyn FaceFinder>> = None;
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some((path, ..)) = todo.get(i) else {
                            return Ok(out);
                        };
                        let face = match df_data::load_rgb(path) {
                            // Unreadable now: no face; the loader reports it when it reads it.
                            Err(_) => None,
                            Ok(image) => {
                                if detector.is_none() {
                                    detector = Some(finder()?);
                                }
                                match detector.as_mut() {
                                    Some(d) => d.find(&image)?,
                                    None => None,
                                }
                            }
                        };
                        out.push((i, face));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| {
                    Err(config("pseudo_fakes", "a face-finding thread panicked"))
                })
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut faces = vec![None; todo.len()];
    for (i, face) in parts.into_iter().flatten() {
        faces[i] = face;
    }
    Ok(faces)
}
