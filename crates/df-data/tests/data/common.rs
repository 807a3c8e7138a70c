//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};

#[path = "../../../../fixtures/lookup.rs"]
mod lookup;

/// A file of the fixture set `set` (made by `scripts/fixtures/<set>.py`; committed or
/// generated, see `fixtures/lookup.rs`).
pub fn fixture(set: &str, file: &str) -> PathBuf {
    lookup::path(set, file)
}

/// Parses a fixture JSON file.
pub fn fixture_json(set: &str, file: &str) -> serde_json::Value {
    lookup::json(set, file)
}

/// A JSON array of numbers as `f32`s.
pub fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

/// A JSON array of numbers as bytes.
pub fn u8s(v: &serde_json::Value) -> Vec<u8> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| u8::try_from(x.as_u64().expect("integer")).expect("byte"))
        .collect()
}

/// A deterministic test image: pixel `(x, y)` of image `seed` has a known value.
pub fn pattern(w: u32, h: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| pixel(x, y, seed))
}

/// The value [`pattern`] puts at `(x, y)`.
pub fn pixel(x: u32, y: u32, seed: u32) -> Rgb<u8> {
    Rgb([
        ((x * 7 + seed * 31) % 256) as u8,
        ((y * 11 + seed * 17) % 256) as u8,
        ((x * 3 + y * 5 + seed * 13) % 256) as u8,
    ])
}

/// Writes [`pattern`] as PNG at `path` (creating parent directories).
pub fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    pattern(w, h, seed).save(path).expect("write png");
}

/// Writes [`pattern`] as JPEG at `path`.
pub fn write_jpeg(path: &Path, w: u32, h: u32, seed: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    pattern(w, h, seed)
        .save_with_format(path, image::ImageFormat::Jpeg)
        .expect("write jpeg");
}

/// A class-folder dataset in a temporary directory: `n_real` PNGs in `real/`, `n_fake`
/// in `fake/` (every third one in a sub-folder, to exercise recursion), of `size`².
pub fn folder(n_real: usize, n_fake: usize, size: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..n_real {
        let sub = if i % 3 == 2 { "nested/" } else { "" };
        write_png(
            &dir.path().join(format!("real/{sub}r{i:03}.png")),
            size,
            size,
            i as u32,
        );
    }
    for i in 0..n_fake {
        let sub = if i % 3 == 2 { "nested/" } else { "" };
        write_png(
            &dir.path().join(format!("fake/{sub}f{i:03}.png")),
            size,
            size,
            1000 + i as u32,
        );
    }
    dir
}
