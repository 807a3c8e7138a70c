//! Face crops to train on, as the `prepare_faces` program makes them: every photo's face
//! (the largest, or every face) found by df-face's MTCNN and cropped by
//! [`df_face::crop_faces`], the code that scores photos too; a video gives the faces of its
//! sampled frames. The [`Manifest`] (`prepare-faces.json`) records the settings, every
//! source done with its crops and every one skipped with the reason, so that an
//! interrupted run continues where it stopped.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use df_data::sbi::FaceGeometry;
use df_data::{FrameSampling, SkipReport};
use df_face::{crop_faces, CropConfig, Face, FaceSelect, Mtcnn, MtcnnConfig};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The manifest's file name in the crops' folder (`df_train::FACE_MANIFEST`, which
/// training reads to record how its faces were cropped).
pub const MANIFEST: &str = df_train::FACE_MANIFEST;

/// What `prepare-faces.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The crop, detector and video settings ([`settings`]).
    pub settings: serde_json::Value,
    /// Source (relative to the input) → its crops (relative to the output).
    pub done: BTreeMap<String, Vec<String>>,
    /// Source → why it has no crop.
    pub skipped: BTreeMap<String, String>,
    /// Crop (relative to the output) → its face's box and five landmarks in the crop's
    /// pixels ([`face_in_crop`]): what `train --pseudo-fakes` blends about. Manifests
    /// written before it have none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub faces: BTreeMap<String, FaceGeometry>,
}

/// `face`, found in a picture, in the pixels of its crop made with `crop` (the inverse of
/// the crop's map, [`df_face::crop_faces`]): the landmarks mapped, the box the bounds of
/// its mapped corners (a turned crop turns the box).
pub fn face_in_crop(face: &Face, crop: &CropConfig) -> FaceGeometry {
    let b = face.bbox;
    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    let grow = 1.0 + crop.margin;
    let (bw, bh) = ((b[2] - b[0]).max(1.0), (b[3] - b[1]).max(1.0));
    let (hx, hy) = if crop.square {
        let s = bw.max(bh) * grow / 2.0;
        (s, s)
    } else {
        (bw * grow / 2.0, bh * grow / 2.0)
    };
    let angle = if crop.align {
        let [l, r] = [face.landmarks[0], face.landmarks[1]];
        (r[1] - l[1]).atan2(r[0] - l[0])
    } else {
        0.0
    };
    let (sin, cos) = angle.sin_cos();
    let side = crop.size as f32;
    // Picture point p = c + R(angle)·(xo·hx, yo·hy), xo = 2u/size − 1 (u in crop pixels).
    let to_crop = |p: [f32; 2]| -> [f32; 2] {
        let (dx, dy) = (p[0] - cx, p[1] - cy);
        let (a, b) = (cos * dx + sin * dy, -sin * dx + cos * dy);
        [(a / hx + 1.0) * side / 2.0, (b / hy + 1.0) * side / 2.0]
    };
    let corners = [[b[0], b[1]], [b[2], b[1]], [b[0], b[3]], [b[2], b[3]]].map(to_crop);
    let min = |k: usize| corners.iter().map(|c| c[k]).fold(f32::INFINITY, f32::min);
    let max = |k: usize| {
        corners
            .iter()
            .map(|c| c[k])
            .fold(f32::NEG_INFINITY, f32::max)
    };
    FaceGeometry {
        bbox: [min(0), min(1), max(0), max(1)],
        landmarks: face.landmarks.map(to_crop),
    }
}

/// The settings a manifest records: the detector's, the crop's and the video sampling.
pub fn settings(crop: &CropConfig, sampling: &FrameSampling) -> serde_json::Value {
    serde_json::json!({
        "detector": "mtcnn (facenet-pytorch 2.6.0 weights)",
        "detector_settings": {"min_face_size": 20, "thresholds": [0.6, 0.7, 0.7], "factor": 0.709},
        "crop": {
            "size": crop.size, "margin": short(crop.margin), "square": crop.square,
            "min_face_size": short(crop.min_face_size), "align": crop.align,
            "select": if crop.select == FaceSelect::All { "all" } else { "largest" },
        },
        "video_frames": {
            "per_second": sampling.per_second, "max_frames": sampling.max_frames,
            "evenly": sampling.evenly,
        },
    })
}

/// An option's value as the user wrote it (f32 → f64 would add digits).
fn short(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

impl Manifest {
    /// The manifest of `out` to continue, or a fresh one for `settings`.
    ///
    /// # Errors
    /// `out`'s manifest records other settings, or is not a manifest; `out` holds files and
    /// no manifest (crops are never written over files not recorded as made); the manifest
    /// cannot be read. Each names the folder or file.
    pub fn open(out: &Path, settings: serde_json::Value) -> Result<Self> {
        let path = out.join(MANIFEST);
        match df_io::read_regular_to_string(&path) {
            Ok(text) => {
                let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::File {
                    path: path.clone(),
                    message: format!("not a prepare-faces manifest: {e}"),
                })?;
                if m.settings != settings {
                    return Err(Error::Message(format!(
                        "{} holds crops made with other settings ({}); these are {}: use \
                         another --out",
                        out.display(),
                        m.settings,
                        settings
                    )));
                }
                Ok(m)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A fresh start writes only into an empty folder (or a new one).
                let first = std::fs::read_dir(out)
                    .ok()
                    .and_then(|mut entries| entries.next())
                    .and_then(|e| e.ok());
                if let Some(entry) = first {
                    return Err(Error::Message(format!(
                        "--out {} holds files ({:?} ...) and no {MANIFEST}: prepare_faces \
                         writes only into an empty folder or one it made, never over files it \
                         did not record; choose another --out",
                        out.display(),
                        entry.file_name()
                    )));
                }
                Ok(Manifest {
                    settings,
                    ..Manifest::default()
                })
            }
            Err(e) => Err(Error::Message(format!("reading {}: {e}", path.display()))),
        }
    }

    /// Writes the manifest to `out`, atomically.
    ///
    /// # Errors
    /// It cannot be written (naming the file).
    pub fn save(&self, out: &Path) -> Result<()> {
        let path = out.join(MANIFEST);
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        df_io::write_atomic(&path, text.as_bytes())?;
        Ok(())
    }

    /// Forgets the sources recorded as done whose crops are not all in `out` (as regular
    /// files), so that they are cropped again; how many.
    pub fn forget_missing(&mut self, out: &Path) -> usize {
        let before = self.done.len();
        self.done.retain(|_, crops| {
            crops
                .iter()
                .all(|c| std::fs::metadata(out.join(c)).is_ok_and(|m| m.is_file()))
        });
        let kept: std::collections::BTreeSet<&String> = self.done.values().flatten().collect();
        self.faces.retain(|crop, _| kept.contains(crop));
        before - self.done.len()
    }

    /// Records what a walk left out (relative to `input`) as skipped, unless done.
    pub fn skip_left_out(&mut self, left_out: Vec<SkipReport>, input: &Path) {
        for report in left_out {
            let rel = relative(&report.path, input);
            if !self.done.contains_key(&rel) {
                self.skipped.insert(rel, report.reason.to_string());
            }
        }
    }

    /// The sources of `sources` neither done nor skipped, with their paths relative to
    /// `input`.
    pub fn to_do(&self, sources: &[PathBuf], input: &Path) -> Vec<(PathBuf, String)> {
        sources
            .iter()
            .map(|p| (p.clone(), relative(p, input)))
            .filter(|(_, rel)| !self.done.contains_key(rel) && !self.skipped.contains_key(rel))
            .collect()
    }

    /// How many crops are recorded.
    pub fn crops(&self) -> usize {
        self.done.values().map(Vec::len).sum()
    }
}

/// The photos and videos under `input`, sorted, walked as the programs walk folders
/// (`df_data::Walker`: each real folder once, each file once whatever links lead to it,
/// hidden entries left out), and the files with photo or video names left out, with the
/// reason (not a regular file; a link to nothing; another path to a file taken).
///
/// # Errors
/// The folder cannot be read (naming it).
pub fn find_sources(input: &Path) -> Result<(Vec<PathBuf>, Vec<SkipReport>)> {
    let wanted = |p: &Path| df_data::has_image_extension(p) || df_data::has_video_extension(p);
    let walked = df_data::Walker::new(true).walk(input)?;
    let found = walked.files.into_iter().filter(|p| wanted(p)).collect();
    let skipped = walked
        .skipped
        .into_iter()
        .filter(|r| wanted(&r.path))
        .collect();
    Ok((found, skipped))
}

/// What to say when `loaded` (read from `weights`), trained on face crops, scores the
/// images of `data` as they are: `None` when it was not trained on crops, or `data` is a
/// folder of crops (it holds a [`MANIFEST`]).
pub fn uncropped_note(
    loaded: &df_models::LoadedModel,
    weights: &Path,
    data: &Path,
) -> Option<String> {
    let faces = loaded.preparation().and_then(|p| p.faces)?;
    if data.join(MANIFEST).is_file() {
        return None;
    }
    Some(format!(
        "{} was trained on face crops ({} px, margin {}); the images of {} are scored as they \
         are, taken as face crops (for whole photos, make crops with `prepare_faces` first, or \
         score them with `predict`, which finds the faces)",
        weights.display(),
        faces.size,
        faces.margin,
        data.display()
    ))
}

/// `path` relative to `root`, with `/` separators.
pub fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The file name of a crop: the source's path without its extension (`stem`), then
/// `_fNNN` for a video's frame NNN (three digits at least), then `_faceK` for face K when
/// every face is cropped.
pub fn crop_name(stem: &str, frame: Option<usize>, face: Option<usize>) -> String {
    let frame = frame.map(|f| format!("_f{f:03}")).unwrap_or_default();
    let face = face.map(|k| format!("_face{k}")).unwrap_or_default();
    format!("{stem}{frame}{face}.png")
}

/// A source's relative path without its extension.
fn stem(rel: &str) -> String {
    Path::new(rel)
        .with_extension("")
        .to_string_lossy()
        .into_owned()
}

/// Whether `text` is how [`crop_name`] writes some frame number.
fn is_frame_number(text: &str) -> bool {
    text.len() >= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text.len() == 3 || !text.starts_with('0'))
}

/// Two sources whose crops would have the same file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameClash<'a> {
    /// The first source.
    pub first: &'a Path,
    /// The second.
    pub second: &'a Path,
    /// The crop name both would be written to (frame 0's for two videos).
    pub name: String,
}

impl std::fmt::Display for NameClash<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Quoted as Rust quotes them: names that differ only in bytes that are not UTF-8
        // print differently.
        write!(
            f,
            "{:?} and {:?} would both be cropped to {}: rename one",
            self.first, self.second, self.name
        )
    }
}

/// Two sources whose crops could have the same file name: two photos or two videos with
/// the same path but for the extension, or a photo named like a video's frame
/// (`clip_f000.jpg` beside `clip.mp4`). A photo and a video with the same stem do not
/// clash (`a.png`, `a_f000.png`).
pub fn name_clash<'a>(
    sources: &'a [PathBuf],
    input: &Path,
    every_face: bool,
) -> Option<NameClash<'a>> {
    let face = every_face.then_some(0);
    let (mut photos, mut videos) = (BTreeMap::new(), BTreeMap::new());
    for p in sources {
        let stem = stem(&relative(p, input));
        let video = df_data::has_video_extension(p);
        let seen = if video { &mut videos } else { &mut photos };
        if let Some(other) = seen.insert(stem.clone(), p.as_path()) {
            return Some(NameClash {
                first: other,
                second: p.as_path(),
                name: crop_name(&stem, video.then_some(0), face),
            });
        }
    }
    for (stem, photo) in &photos {
        let Some((video_stem, number)) = stem.rsplit_once("_f") else {
            continue;
        };
        if let (true, Some(video)) = (is_frame_number(number), videos.get(video_stem)) {
            return Some(NameClash {
                first: video,
                second: photo,
                name: crop_name(stem, None, face),
            });
        }
    }
    None
}

/// Writes `image` as PNG to `out/name`, atomically.
fn write_png(out: &Path, name: &str, image: &image::RgbImage) -> Result<()> {
    let path = out.join(name);
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::File {
            path: path.clone(),
            message: format!("encoding PNG: {e}"),
        })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::File {
            path: dir.to_path_buf(),
            message: format!("creating: {e}"),
        })?;
    }
    df_io::write_atomic(&path, &png)?;
    Ok(())
}

/// The crops of one photo or video (its sampled frames) written into `out`, named after
/// `rel` (the source relative to the input): their paths relative to `out` with each one's
/// face in its pixels ([`face_in_crop`]), or why there is none (unreadable, no face, none
/// large enough), which is not an error.
///
/// # Errors
/// The face detector fails; a crop cannot be written.
pub fn crop_source(
    mtcnn: &Mtcnn,
    crop: &CropConfig,
    sampling: &FrameSampling,
    source: &Path,
    rel: &str,
    out: &Path,
) -> Result<std::result::Result<Vec<(String, FaceGeometry)>, String>> {
    let video = df_data::has_video_extension(source);
    // A video's frames are read one at a time as ffmpeg streams them (none kept), scaled
    // down when larger than df_data::MAX_FRAME_SIDE: crops are taken from them.
    let pictures: Box<dyn Iterator<Item = df_data::Result<image::RgbImage>>> = if video {
        match df_data::open_video(source, sampling) {
            Ok(frames) => Box::new(frames.map(|f| f.map(|f| f.image))),
            Err(e) => return Ok(Err(format!("unreadable video: {e}"))),
        }
    } else {
        match df_data::load_rgb(source) {
            Ok(image) => Box::new(std::iter::once(Ok(image))),
            // "unreadable: " said once, also when the reason says it already.
            Err(why) => {
                let why = why.to_string();
                let why = why.strip_prefix("unreadable: ").unwrap_or(&why);
                return Ok(Err(format!("unreadable: {why}")));
            }
        }
    };
    let stem = stem(rel);
    let (mut written, mut found) = (Vec::new(), 0);
    for (f, picture) in pictures.enumerate() {
        let picture = match picture {
            Ok(p) => p,
            Err(e) => {
                // As if nothing was read: the crops of its earlier frames go.
                for (name, _) in &written {
                    let _ = std::fs::remove_file(out.join(name));
                }
                return Ok(Err(format!("unreadable video: {e}")));
            }
        };
        let faces = mtcnn
            .detect(&picture)
            .map_err(|e| Error::Message(format!("detecting faces in {}: {e}", source.display())))?;
        found += faces.len();
        for (k, c) in crop_faces(&picture, &faces, crop)?.iter().enumerate() {
            let name = crop_name(
                &stem,
                video.then_some(f),
                (crop.select == FaceSelect::All).then_some(k),
            );
            write_png(out, &name, &c.image)?;
            written.push((name, face_in_crop(&c.face, crop)));
        }
    }
    if written.is_empty() {
        return Ok(Err(if found == 0 {
            "no face found".into()
        } else {
            format!("{found} face(s), none of --min-face-size")
        }));
    }
    Ok(Ok(written))
}

/// A face-crop run over the sources to do: `threads` workers, each with its own detector
/// loaded from `weights` (tch modules are not shared between threads).
#[derive(Debug, Clone)]
pub struct CropRun<'a> {
    /// The MTCNN weights.
    pub weights: &'a Path,
    /// How faces are cropped.
    pub crop: &'a CropConfig,
    /// Which frames of a video.
    pub sampling: &'a FrameSampling,
    /// Where the crops and the manifest go.
    pub out: &'a Path,
    /// Worker threads (at least 1).
    pub threads: usize,
}

impl CropRun<'_> {
    /// Crops each of `todo` (source, path relative to the input), recording each result in
    /// `manifest` (saved every 50 sources and at the end, also when a worker failed);
    /// `progress` is called once per source done.
    ///
    /// # Errors
    /// A worker's detector cannot be loaded or fails; a crop or the manifest cannot be
    /// written.
    pub fn run(
        &self,
        todo: &[(PathBuf, String)],
        manifest: &mut Manifest,
        progress: &mut dyn FnMut(),
    ) -> Result<()> {
        let next = AtomicUsize::new(0);
        let (send, receive) = mpsc::channel();
        let outcome = std::thread::scope(|scope| -> Result<()> {
            let mut workers = Vec::new();
            for _ in 0..self.threads.max(1) {
                let (send, next) = (send.clone(), &next);
                workers.push(scope.spawn(move || -> Result<()> {
                    let mtcnn =
                        Mtcnn::load(self.weights, MtcnnConfig::default(), tch::Device::Cpu)?;
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some((source, rel)) = todo.get(i) else {
                            return Ok(());
                        };
                        let result =
                            crop_source(&mtcnn, self.crop, self.sampling, source, rel, self.out)?;
                        if send.send((rel.clone(), result)).is_err() {
                            return Ok(());
                        }
                    }
                }));
            }
            drop(send);
            for (n, (rel, result)) in receive.iter().enumerate() {
                match result {
                    Ok(crops) => {
                        let names = crops.iter().map(|(name, _)| name.clone()).collect();
                        manifest.done.insert(rel, names);
                        manifest.faces.extend(crops);
                    }
                    Err(why) => {
                        manifest.skipped.insert(rel, why);
                    }
                }
                progress();
                if n % 50 == 49 {
                    manifest.save(self.out)?;
                }
            }
            for w in workers {
                w.join()
                    .map_err(|_| Error::Message("a worker thread panicked".into()))??;
            }
            Ok(())
        });
        // What was done is recorded even when a worker failed.
        manifest.save(self.out)?;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(input: &Path, names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(|n| input.join(n)).collect()
    }

    #[test]
    fn crop_names_add_the_frame_and_the_face() {
        assert_eq!(crop_name("real/a", None, None), "real/a.png");
        assert_eq!(crop_name("v", Some(7), None), "v_f007.png");
        assert_eq!(crop_name("v", Some(1234), Some(2)), "v_f1234_face2.png");
        assert_eq!(crop_name("a", None, Some(0)), "a_face0.png");
    }

    /// Exactly the sources whose crops would overwrite one another clash, named with the
    /// file both would be written to.
    #[test]
    fn exactly_the_names_that_would_collide_clash() {
        let input = Path::new("/in");
        for (files, every_face, name) in [
            (&["clip.mp4", "clip_f000.jpg"][..], false, "clip_f000.png"),
            (&["clip.mp4", "clip_f1000.jpg"][..], false, "clip_f1000.png"),
            (
                &["clip.mp4", "clip_f007.jpg"][..],
                true,
                "clip_f007_face0.png",
            ),
            (&["b.png", "b.jpg"][..], false, "b.png"),
            (&["v.mp4", "v.avi"][..], false, "v_f000.png"),
            (&["sub/v.mp4", "sub/v.avi"][..], false, "sub/v_f000.png"),
        ] {
            let all = sources(input, files);
            let clash = name_clash(&all, input, every_face).expect("a clash");
            assert_eq!(clash.name, name, "{files:?}");
            let mut both = [clash.first, clash.second];
            both.sort();
            let mut expected = [all[0].as_path(), all[1].as_path()];
            expected.sort();
            assert_eq!(both, expected, "{files:?}");
            let said = clash.to_string();
            assert!(said.contains(files[0]) && said.contains(files[1]), "{said}");
            assert!(
                said.ends_with(&format!("cropped to {name}: rename one")),
                "{said}"
            );
        }
        // A photo and a video with one stem, a name that is not a frame number, another
        // folder: no clash.
        for files in [
            &[
                "a.mp4",
                "a.jpg",
                "clip.mp4",
                "clip_f12.jpg",
                "clip_f0000.jpg",
            ][..],
            &["x/a.png", "y/a.jpg"][..],
            &["clip.mp4", "clip_fabc.jpg", "clip_f00a.jpg"][..],
        ] {
            let all = sources(input, files);
            assert_eq!(name_clash(&all, input, false), None, "{files:?}");
            assert_eq!(name_clash(&all, input, true), None, "{files:?}");
        }
    }

    fn crop() -> CropConfig {
        CropConfig::default()
    }

    #[test]
    fn settings_record_the_options_as_written() {
        let crop = CropConfig {
            margin: 0.3,
            select: FaceSelect::All,
            ..CropConfig::default()
        };
        let s = settings(&crop, &FrameSampling::default());
        assert_eq!(s["crop"]["margin"], 0.3);
        assert_eq!(s["crop"]["select"], "all");
        assert_eq!(s["crop"]["size"], crop.size);
        assert_eq!(s["video_frames"]["max_frames"], 32);
        let largest = CropConfig {
            select: FaceSelect::Largest,
            ..crop
        };
        assert_eq!(
            settings(&largest, &FrameSampling::default())["crop"]["select"],
            "largest"
        );
    }

    #[test]
    fn a_fresh_manifest_needs_an_empty_or_new_folder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wanted = settings(&crop(), &FrameSampling::default());
        let new = Manifest::open(&tmp.path().join("new"), wanted.clone()).expect("new folder");
        assert_eq!(new.settings, wanted);
        assert!(new.done.is_empty() && new.skipped.is_empty());
        Manifest::open(tmp.path(), wanted.clone()).expect("empty folder");
        std::fs::write(tmp.path().join("mine.png"), b"x").expect("write");
        let e = Manifest::open(tmp.path(), wanted)
            .expect_err("files, no manifest")
            .to_string();
        assert!(
            e.contains("mine.png") && e.contains("no prepare-faces.json"),
            "{e}"
        );
    }

    #[test]
    fn a_manifest_resumes_with_the_same_settings_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path();
        let wanted = settings(&crop(), &FrameSampling::default());
        let mut m = Manifest::open(out, wanted.clone()).expect("fresh");
        m.done
            .insert("real/a.png".into(), vec!["real/a.png".into()]);
        m.skipped
            .insert("fake/b.jpg".into(), "no face found".into());
        m.save(out).expect("save");
        let again = Manifest::open(out, wanted).expect("resume");
        assert_eq!(again, m);
        let other = settings(
            &CropConfig {
                size: 128,
                ..crop()
            },
            &FrameSampling::default(),
        );
        let e = Manifest::open(out, other)
            .expect_err("other settings")
            .to_string();
        assert!(
            e.contains(&out.display().to_string()) && e.contains("other settings"),
            "{e}"
        );
        std::fs::write(out.join(MANIFEST), b"{").expect("write");
        let e = Manifest::open(out, m.settings.clone())
            .expect_err("garbage")
            .to_string();
        assert!(
            e.contains(MANIFEST) && e.contains("not a prepare-faces manifest"),
            "{e}"
        );
    }

    #[test]
    fn sources_done_or_skipped_are_not_redone_unless_their_crops_went() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (input, out) = (Path::new("/in"), tmp.path());
        let mut m = Manifest::default();
        for name in ["kept", "deleted", "now_a_folder"] {
            m.done
                .insert(format!("{name}.jpg"), vec![format!("{name}.png")]);
        }
        std::fs::write(out.join("kept.png"), b"png").expect("write");
        std::fs::create_dir(out.join("now_a_folder.png")).expect("dir");
        assert_eq!(m.forget_missing(out), 2);
        assert_eq!(m.done.keys().collect::<Vec<_>>(), ["kept.jpg"]);
        m.skip_left_out(
            vec![
                SkipReport {
                    path: input.join("fifo.jpg"),
                    reason: df_data::SkipReason::NotRegular("a FIFO".into()),
                },
                SkipReport {
                    path: input.join("kept.jpg"),
                    reason: df_data::SkipReason::Missing,
                },
            ],
            input,
        );
        assert_eq!(m.skipped.keys().collect::<Vec<_>>(), ["fifo.jpg"]);
        assert!(m.skipped["fifo.jpg"].contains("not a regular file"));
        let all = sources(input, &["kept.jpg", "fifo.jpg", "deleted.jpg", "new.mp4"]);
        let todo = m.to_do(&all, input);
        assert_eq!(
            todo,
            vec![
                (input.join("deleted.jpg"), "deleted.jpg".to_string()),
                (input.join("new.mp4"), "new.mp4".to_string()),
            ]
        );
        assert_eq!(m.crops(), 1);
    }

    /// Where a bright dot drawn at each landmark of a picture lands in its crop (the
    /// intensity-weighted centre of the crop's bright pixels) is where [`face_in_crop`]
    /// puts the landmark, square or not, turned or not.
    #[test]
    fn face_in_crop_maps_the_landmarks_where_the_crop_puts_their_pixels() {
        let face = Face {
            bbox: [60.0, 30.0, 140.0, 130.0],
            probability: 0.99,
            landmarks: [
                [85.0, 62.0],
                [115.0, 70.0],
                [100.0, 85.0],
                [88.0, 108.0],
                [112.0, 110.0],
            ],
        };
        for (square, align) in [(true, false), (false, false), (true, true)] {
            let config = CropConfig {
                size: 128,
                margin: 0.3,
                square,
                align,
                ..CropConfig::default()
            };
            let mapped = face_in_crop(&face, &config);
            for (k, lm) in face.landmarks.iter().enumerate() {
                let picture = image::RgbImage::from_fn(200, 160, |x, y| {
                    let (dx, dy) = (x as f32 + 0.5 - lm[0], y as f32 + 0.5 - lm[1]);
                    let v = if dx.abs() <= 1.5 && dy.abs() <= 1.5 {
                        255
                    } else {
                        0
                    };
                    image::Rgb([v, v, v])
                });
                let crops = crop_faces(&picture, &[face], &config).expect("crop");
                let (mut sx, mut sy, mut sw) = (0f32, 0f32, 0f32);
                for (x, y, p) in crops[0].image.enumerate_pixels() {
                    let w = f32::from(p[0]);
                    sx += w * (x as f32 + 0.5);
                    sy += w * (y as f32 + 0.5);
                    sw += w;
                }
                let (cx, cy) = (sx / sw, sy / sw);
                let [mx, my] = mapped.landmarks[k];
                assert!(
                    (cx - mx).abs() < 0.5 && (cy - my).abs() < 0.5,
                    "square {square} align {align} landmark {k}: pixels at ({cx}, {cy}), \
                     mapped to ({mx}, {my})"
                );
            }
            // Unturned, the box maps to its grown square (or stretched) frame.
            if !align {
                let [x1, y1, x2, y2] = mapped.bbox;
                let expect = if square {
                    // A 100-px side grown by 0.3: 130 px across the 128-px crop.
                    let w = 80.0 / 130.0 * 128.0;
                    [
                        64.0 - w / 2.0,
                        64.0 - 128.0 / 1.3 / 2.0,
                        64.0 + w / 2.0,
                        64.0 + 128.0 / 1.3 / 2.0,
                    ]
                } else {
                    let m = 128.0 * 0.15 / 1.3;
                    [m, m, 128.0 - m, 128.0 - m]
                };
                for (got, want) in [x1, y1, x2, y2].iter().zip(expect) {
                    assert!((got - want).abs() < 1e-3, "{:?} vs {expect:?}", mapped.bbox);
                }
            }
        }
    }

    #[test]
    fn a_source_without_crops_says_why() {
        let Ok(weights) = df_face::default_weights_path() else {
            panic!("the MTCNN weights are part of the set-up (scripts/setup.sh)");
        };
        let mtcnn = Mtcnn::load(&weights, MtcnnConfig::default(), tch::Device::Cpu).expect("mtcnn");
        let tmp = tempfile::tempdir().expect("tempdir");
        let (input, out) = (tmp.path().join("in"), tmp.path().join("out"));
        std::fs::create_dir_all(&input).expect("dir");
        std::fs::write(input.join("broken.jpg"), b"not a picture").expect("write");
        std::fs::write(input.join("clip.mp4"), b"not a video").expect("write");
        std::fs::create_dir(input.join("folder.jpg")).expect("dir");
        image::RgbImage::from_pixel(120, 100, image::Rgb([128, 128, 128]))
            .save(input.join("grey.png"))
            .expect("png");
        let why = |name: &str| {
            crop_source(
                &mtcnn,
                &crop(),
                &FrameSampling::default(),
                &input.join(name),
                name,
                &out,
            )
            .expect("no error")
            .expect_err("no crop")
        };
        assert_eq!(why("grey.png"), "no face found");
        // Not a picture, or not readable as a file: "unreadable" said once.
        for name in ["broken.jpg", "folder.jpg"] {
            let said = why(name);
            assert!(
                said.starts_with("unreadable: ") && !said.contains("unreadable: unreadable"),
                "{name}: {said}"
            );
        }
        assert!(why("clip.mp4").starts_with("unreadable video: "));
        assert!(!out.exists(), "nothing written");
    }
}
