//! A deterministic synthetic forgery set: face-like images and face-swapped versions of
//! them, for the demo and for tests that must run without downloaded data.
//!
//! A **real** image is a rendered face: a background gradient, shoulders, hair, a
//! skin-toned ellipsoidal face lit from a random direction, eyes with irises, brows, a
//! nose shadow and a mouth, then camera blur and sensor noise.
//!
//! A **fake** image is a real-style image of one identity (the target) whose inner face
//! is replaced by the inner face of another identity (the source), the way classical
//! face-swap tools work: the source face is rendered at the target's pose, passes
//! through a low-resolution stage (downscaled to 35–60 % and upscaled back, which
//! smooths its sensor noise and features: resampling artifacts), is colour-corrected
//! towards the target's skin only part of the way (a residual colour mismatch), and is
//! blended in with a feathered mask (a blurred seam).
//!
//! The identities of both classes come from the same distributions, so the mean colour
//! of an image says almost nothing about its class; what separates them is local
//! texture (noise and sharpness inside versus outside the face) and the seam, which a
//! small CNN learns in a couple of epochs.
//!
//! Everything is a function of `(seed, class, index, size)`.

use std::path::{Path, PathBuf};

use image::{Rgb32FImage, RgbImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::augment::{gaussian_blur, keyed_rng, to_rgb32f, to_rgb8};
use crate::dataset::{FolderOptions, ImageFolder, ImageSource, Label};
use crate::error::{Error, Result};
use crate::resize::{resize_rgb, ResizeFilter};
use crate::skip::SkipReason;

const TAG_REAL: u64 = 0x7265_616c; // "real"
const TAG_TARGET: u64 = 0x7461_7267; // "targ"
const TAG_SOURCE: u64 = 0x736f_7572; // "sour"
const TAG_SWAP: u64 = 0x7377_6170; // "swap"

/// File format of a generated set (the same for both classes, so it is no cue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SyntheticFormat {
    /// Lossless PNG.
    Png,
    /// JPEG at `quality` (1–100).
    Jpeg {
        /// Encoder quality.
        quality: u8,
    },
}

/// What [`generate_with`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticConfig {
    /// Images per class.
    pub n_per_class: usize,
    /// Side of the square images, in pixels (at least 32).
    pub size: u32,
    /// Seed of the whole set.
    pub seed: u64,
    /// File format.
    pub format: SyntheticFormat,
}

impl SyntheticConfig {
    /// `n_per_class` images per class of `size`×`size` pixels as JPEG (quality 95).
    pub fn new(n_per_class: usize, size: u32, seed: u64) -> Self {
        SyntheticConfig {
            n_per_class,
            size,
            seed,
            format: SyntheticFormat::Jpeg { quality: 95 },
        }
    }
}

/// Writes `n_per_class` real and fake `size`×`size` JPEG images (quality 95) to
/// `dir/real/` and `dir/fake/` and opens the result.
///
/// # Errors
/// [`Error::InvalidConfig`] for `size` < 32 or `n_per_class` = 0, [`Error::Io`] or
/// [`Error::Image`] if writing fails.
pub fn generate(
    dir: impl AsRef<Path>,
    n_per_class: usize,
    size: u32,
    seed: u64,
) -> Result<ImageFolder> {
    generate_with(dir, &SyntheticConfig::new(n_per_class, size, seed))
}

/// Writes the set described by `config` under `dir` (`real/NNNNN.ext`,
/// `fake/NNNNN.ext`), using all cores, and opens it.
///
/// # Errors
/// As [`generate`].
pub fn generate_with(dir: impl AsRef<Path>, config: &SyntheticConfig) -> Result<ImageFolder> {
    check(config.n_per_class, config.size)?;
    if let SyntheticFormat::Jpeg { quality } = config.format {
        if !(1..=100).contains(&quality) {
            return Err(Error::config(
                "synthetic.format.quality",
                format!("must be 1..=100, got {quality}"),
            ));
        }
    }
    let dir = dir.as_ref();
    for class in ["real", "fake"] {
        let d = dir.join(class);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    let total = 2 * config.n_per_class;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(total);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> Result<()> {
                    for k in (t..total).step_by(threads) {
                        let (label, i) = if k < config.n_per_class {
                            (Label::Real, k)
                        } else {
                            (Label::Fake, k - config.n_per_class)
                        };
                        let img = image(label, i as u64, config.size, config.seed);
                        let path = dir.join(file_name(label, i, config.format));
                        write(&img, &path, config.format)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::WorkerPanic("synthetic writer".into())))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    ImageFolder::open_with(dir, &FolderOptions::default())
}

/// The files [`generate_with`] writes for `config`, relative to its folder (`real/00000.jpg`
/// ...), in the order of the classes: what a program records before generating, so that
/// it can later remove exactly these (`df_io::owned`).
pub fn planned_files(config: &SyntheticConfig) -> Vec<PathBuf> {
    [Label::Real, Label::Fake]
        .into_iter()
        .flat_map(|label| (0..config.n_per_class).map(move |i| file_name(label, i, config.format)))
        .collect()
}

fn file_name(label: Label, index: usize, format: SyntheticFormat) -> PathBuf {
    let ext = match format {
        SyntheticFormat::Png => "png",
        SyntheticFormat::Jpeg { .. } => "jpg",
    };
    PathBuf::from(label.to_string()).join(format!("{index:05}.{ext}"))
}

fn write(img: &RgbImage, path: &Path, format: SyntheticFormat) -> Result<()> {
    let err = |e| Error::Image {
        what: path.display().to_string(),
        source: e,
    };
    // Through df-io's one writer: a generated set never holds half an image.
    df_io::write_atomic_with(path, |file: &mut std::fs::File| -> Result<()> {
        let mut w = std::io::BufWriter::new(file);
        match format {
            SyntheticFormat::Png => img.write_to(&mut w, image::ImageFormat::Png).map_err(err)?,
            SyntheticFormat::Jpeg { quality } => {
                let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, quality);
                img.write_with_encoder(enc).map_err(err)?
            }
        }
        std::io::Write::flush(&mut w).map_err(|e| Error::io(path, e))
    })
}

fn check(n_per_class: usize, size: u32) -> Result<()> {
    if n_per_class == 0 {
        return Err(Error::config("synthetic.n_per_class", "must be at least 1"));
    }
    if !(32..=4096).contains(&size) {
        return Err(Error::config(
            "synthetic.size",
            format!("must be in 32..=4096, got {size}"),
        ));
    }
    Ok(())
}

/// Image `index` of class `label` (see [`real_face`], [`fake_face`]).
pub fn image(label: Label, index: u64, size: u32, seed: u64) -> RgbImage {
    match label {
        Label::Real => real_face(index, size, seed),
        Label::Fake => fake_face(index, size, seed),
    }
}

/// Real image `index`: one rendered identity with camera blur and noise.
pub fn real_face(index: u64, size: u32, seed: u64) -> RgbImage {
    let mut rng = keyed_rng(seed, 0, index, TAG_REAL);
    let scene = Scene::random(&mut rng, size);
    let face = Face::random(&mut rng);
    let mut img = render(&scene, &face, size);
    camera(&mut img, &mut rng);
    to_rgb8(&img)
}

/// Fake image `index`: a target identity whose inner face is swapped for a source
/// identity's, with a resampling stage, a colour mismatch and a feathered seam.
pub fn fake_face(index: u64, size: u32, seed: u64) -> RgbImage {
    let mut rng = keyed_rng(seed, 0, index, TAG_TARGET);
    let scene = Scene::random(&mut rng, size);
    let target = Face::random(&mut rng);
    let mut base = render(&scene, &target, size);
    camera(&mut base, &mut rng);

    let mut src_rng = keyed_rng(seed, 0, index, TAG_SOURCE);
    let _ = Scene::random(&mut src_rng, size); // keep the source stream shaped like a real one
    let source = Face::random(&mut src_rng);
    let mut donor = render(&scene, &source, size);
    camera(&mut donor, &mut src_rng);

    let mut rng = keyed_rng(seed, 0, index, TAG_SWAP);
    // The generator's low-resolution stage.
    let factor: f32 = rng.random_range(0.3..0.5);
    let small = ((size as f32 * factor).round() as u32).max(8);
    let donor8 = to_rgb8(&donor);
    let down = resize_rgb(&donor8, small, small, ResizeFilter::Bilinear);
    let donor = to_rgb32f(&resize_rgb(&down, size, size, ResizeFilter::Bilinear));
    // Imperfect colour correction: the source skin is pulled most of the way towards
    // the target's, leaving a residual mismatch and a small random cast.
    let transfer: f32 = rng.random_range(0.4..0.8);
    let gain: [f32; 3] = std::array::from_fn(|c| {
        (target.skin[c] / source.skin[c]).powf(transfer) * rng.random_range(0.93..1.07)
    });
    let bias: f32 = rng.random_range(-6.0..6.0);
    // The blending mask: the inner face, feathered.
    let s = size as f32;
    let (fcx, fcy) = (scene.cx * s, scene.cy * s);
    let (fa, fb) = (scene.a * s, scene.b * s);
    let mrx = fa * rng.random_range(0.72..0.86);
    let mry = fb * rng.random_range(0.68..0.8);
    let mcy = fcy + fb * rng.random_range(0.02..0.12);
    let feather: f32 = rng.random_range(0.08..0.22);
    let (cos, sin) = (scene.tilt.cos(), scene.tilt.sin());
    let w = size as usize;
    let out: &mut [f32] = &mut base;
    let don = donor.as_raw();
    for y in 0..w {
        for x in 0..w {
            let dx = x as f32 + 0.5 - fcx;
            let dy = y as f32 + 0.5 - mcy;
            let u = (cos * dx + sin * dy) / mrx;
            let v = (-sin * dx + cos * dy) / mry;
            let r = (u * u + v * v).sqrt();
            let m = 1.0 - smoothstep(1.0 - feather, 1.0 + feather, r);
            if m <= 0.0 {
                continue;
            }
            let p = (y * w + x) * 3;
            for c in 0..3 {
                let d = (don[p + c] * gain[c] + bias).clamp(0.0, 255.0);
                out[p + c] = out[p + c] * (1.0 - m) + d * m;
            }
        }
    }
    to_rgb8(&base)
}

/// An in-memory synthetic set: `n_per_class` real images (indices `0..n`) then
/// `n_per_class` fake ones, rendered on demand, usable by the
/// [`Loader`](crate::Loader) like an [`ImageFolder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticSet {
    n_per_class: usize,
    size: u32,
    seed: u64,
}

impl SyntheticSet {
    /// A set of `2 × n_per_class` images of `size`×`size` pixels.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for `size` outside 32..=4096 or `n_per_class` = 0.
    pub fn new(n_per_class: usize, size: u32, seed: u64) -> Result<Self> {
        check(n_per_class, size)?;
        Ok(SyntheticSet {
            n_per_class,
            size,
            seed,
        })
    }

    /// Images per class.
    pub fn n_per_class(&self) -> usize {
        self.n_per_class
    }

    /// Side of the images.
    pub fn size(&self) -> u32 {
        self.size
    }

    fn split(&self, index: usize) -> (Label, usize) {
        if index < self.n_per_class {
            (Label::Real, index)
        } else {
            (Label::Fake, index - self.n_per_class)
        }
    }
}

impl ImageSource for SyntheticSet {
    fn len(&self) -> usize {
        2 * self.n_per_class
    }

    fn label(&self, index: usize) -> Label {
        self.split(index).0
    }

    fn path(&self, index: usize) -> PathBuf {
        let (label, i) = self.split(index);
        PathBuf::from("synthetic")
            .join(label.to_string())
            .join(format!("{i:05}"))
    }

    fn load(&self, index: usize) -> std::result::Result<RgbImage, SkipReason> {
        if index >= self.len() {
            return Err(SkipReason::Missing);
        }
        let (label, i) = self.split(index);
        Ok(image(label, i as u64, self.size, self.seed))
    }
}

/// Pose and framing, shared by the target and the swapped-in source face.
#[derive(Debug, Clone, Copy)]
struct Scene {
    /// Face centre and half-axes, as fractions of the image side.
    cx: f32,
    cy: f32,
    a: f32,
    b: f32,
    /// Head tilt, radians.
    tilt: f32,
    bg0: [f32; 3],
    bg1: [f32; 3],
    bg_angle: f32,
    shirt: [f32; 3],
    hair: [f32; 3],
    hair_volume: f32,
    light: [f32; 3],
}

impl Scene {
    fn random(rng: &mut ChaCha8Rng, _size: u32) -> Self {
        let colour = |rng: &mut ChaCha8Rng| -> [f32; 3] {
            std::array::from_fn(|_| rng.random_range(20.0..235.0))
        };
        let hair_palette: [[f32; 3]; 6] = [
            [25.0, 20.0, 18.0],
            [60.0, 40.0, 25.0],
            [110.0, 75.0, 40.0],
            [190.0, 160.0, 100.0],
            [150.0, 150.0, 150.0],
            [140.0, 60.0, 30.0],
        ];
        let hair = hair_palette[rng.random_range(0..hair_palette.len())];
        let jitter: f32 = rng.random_range(0.85..1.15);
        let lx: f32 = rng.random_range(-0.7..0.7);
        let ly: f32 = rng.random_range(-0.6..0.3);
        let lz = (1.0 - lx * lx - ly * ly).max(0.1).sqrt();
        let a = rng.random_range(0.2..0.27);
        Scene {
            cx: rng.random_range(0.45..0.55),
            cy: rng.random_range(0.45..0.53),
            a,
            b: a * rng.random_range(1.22..1.42),
            tilt: rng.random_range(-0.18..0.18),
            bg0: colour(rng),
            bg1: colour(rng),
            bg_angle: rng.random_range(0.0..std::f32::consts::TAU),
            shirt: colour(rng),
            hair: hair.map(|v| (v * jitter).min(255.0)),
            hair_volume: rng.random_range(1.05..1.25),
            light: [lx, ly, lz],
        }
    }
}

/// Appearance of one identity.
#[derive(Debug, Clone, Copy)]
struct Face {
    skin: [f32; 3],
    iris: [f32; 3],
    lips: [f32; 3],
    eye_y: f32,
    eye_dx: f32,
    eye_w: f32,
    eye_h: f32,
    brow_lift: f32,
    brow_thick: f32,
    nose_len: f32,
    mouth_y: f32,
    mouth_w: f32,
    mouth_h: f32,
}

impl Face {
    fn random(rng: &mut ChaCha8Rng) -> Self {
        let t: f32 = rng.random();
        let light = [250.0, 220.0, 195.0];
        let dark = [105.0, 70.0, 50.0];
        let skin: [f32; 3] = std::array::from_fn(|c| {
            (light[c] + (dark[c] - light[c]) * t) * rng.random_range(0.94..1.06)
        });
        let irises: [[f32; 3]; 4] = [
            [70.0, 45.0, 25.0],
            [60.0, 100.0, 150.0],
            [70.0, 110.0, 70.0],
            [35.0, 25.0, 20.0],
        ];
        let iris = irises[rng.random_range(0..irises.len())];
        let lips: [f32; 3] = [(skin[0] * 0.85).min(255.0), skin[1] * 0.55, skin[2] * 0.6];
        Face {
            skin,
            iris,
            lips,
            eye_y: rng.random_range(-0.28..-0.14),
            eye_dx: rng.random_range(0.34..0.46),
            eye_w: rng.random_range(0.15..0.21),
            eye_h: rng.random_range(0.07..0.1),
            brow_lift: rng.random_range(0.1..0.16),
            brow_thick: rng.random_range(0.025..0.05),
            nose_len: rng.random_range(0.25..0.38),
            mouth_y: rng.random_range(0.4..0.52),
            mouth_w: rng.random_range(0.28..0.42),
            mouth_h: rng.random_range(0.06..0.12),
        }
    }
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A canvas with soft-edged ellipse painting in face coordinates.
struct Canvas<'a> {
    data: &'a mut [f32],
    size: usize,
}

impl Canvas<'_> {
    /// Paints an ellipse centred at `(cx, cy)` (pixels) with half-axes `rx`, `ry`,
    /// rotated by `angle`, with `shade(u, v)` giving the colour at normalised ellipse
    /// coordinates (u² + v² ≤ 1 inside), antialiased over about one pixel.
    #[allow(clippy::too_many_arguments)]
    fn ellipse(
        &mut self,
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
        angle: f32,
        opacity: f32,
        shade: impl Fn(f32, f32) -> [f32; 3],
    ) {
        let (rx, ry) = (rx.max(0.5), ry.max(0.5));
        let reach = rx.max(ry) + 2.0;
        let n = self.size as i64;
        let x0 = ((cx - reach).floor() as i64).clamp(0, n);
        let x1 = ((cx + reach).ceil() as i64).clamp(0, n);
        let y0 = ((cy - reach).floor() as i64).clamp(0, n);
        let y1 = ((cy + reach).ceil() as i64).clamp(0, n);
        let (cos, sin) = (angle.cos(), angle.sin());
        let edge = rx.min(ry);
        for y in y0..y1 {
            for x in x0..x1 {
                let dx = x as f32 + 0.5 - cx;
                let dy = y as f32 + 0.5 - cy;
                let u = (cos * dx + sin * dy) / rx;
                let v = (-sin * dx + cos * dy) / ry;
                let r = (u * u + v * v).sqrt();
                // Approximate signed distance to the outline, in pixels.
                let d = (r - 1.0) * edge;
                let cover = (0.5 - d).clamp(0.0, 1.0) * opacity;
                if cover <= 0.0 {
                    continue;
                }
                let col = shade(u, v);
                let p = (y as usize * self.size + x as usize) * 3;
                for (dst, src) in self.data[p..p + 3].iter_mut().zip(col) {
                    *dst = *dst * (1.0 - cover) + src * cover;
                }
            }
        }
    }
}

fn render(scene: &Scene, face: &Face, size: u32) -> Rgb32FImage {
    let n = size as usize;
    let s = size as f32;
    let mut img = Rgb32FImage::new(size, size);
    {
        let data: &mut [f32] = &mut img;
        let (gx, gy) = (scene.bg_angle.cos(), scene.bg_angle.sin());
        for y in 0..n {
            for x in 0..n {
                let u =
                    ((x as f32 / s - 0.5) * gx + (y as f32 / s - 0.5) * gy + 0.5).clamp(0.0, 1.0);
                let p = (y * n + x) * 3;
                for c in 0..3 {
                    data[p + c] = scene.bg0[c] + (scene.bg1[c] - scene.bg0[c]) * u;
                }
            }
        }
    }
    let (cx, cy, a, b) = (scene.cx * s, scene.cy * s, scene.a * s, scene.b * s);
    let tilt = scene.tilt;
    let (cos, sin) = (tilt.cos(), tilt.sin());
    // A point at face coordinates (u, v) (units of a and b) to pixels.
    let at = |u: f32, v: f32| -> (f32, f32) {
        let (dx, dy) = (u * a, v * b);
        (cx + cos * dx - sin * dy, cy + sin * dx + cos * dy)
    };
    let light = scene.light;
    let lit = move |colour: [f32; 3], nx: f32, ny: f32| -> [f32; 3] {
        let nz = (1.0 - nx * nx - ny * ny).max(0.0).sqrt();
        let k = 0.55 + 0.55 * (nx * light[0] + ny * light[1] + nz * light[2]).max(0.0);
        colour.map(|v| (v * k).min(255.0))
    };
    let mut canvas = Canvas {
        data: &mut img,
        size: n,
    };
    // Shoulders and neck.
    let shirt = scene.shirt;
    canvas.ellipse(cx, cy + b * 2.1, a * 2.3, b * 1.0, 0.0, 1.0, |u, _| {
        lit(shirt, u * 0.6, -0.3)
    });
    let skin = face.skin;
    let (nx_, ny_) = at(0.0, 1.05);
    canvas.ellipse(nx_, ny_, a * 0.5, b * 0.45, tilt, 1.0, |u, _| {
        lit(skin, u * 0.7, 0.3).map(|v| v * 0.85)
    });
    // Hair behind the head.
    let hair = scene.hair;
    let (hx, hy) = at(0.0, -0.18);
    canvas.ellipse(hx, hy, a * scene.hair_volume, b * 1.0, tilt, 1.0, |u, v| {
        lit(hair, u * 0.8, v * 0.8)
    });
    // The face, lit as an ellipsoid.
    canvas.ellipse(cx, cy, a, b, tilt, 1.0, |u, v| lit(skin, u * 0.9, v * 0.9));
    // Fringe: hair over the forehead.
    let (fx, fy) = at(0.0, -0.88);
    canvas.ellipse(fx, fy, a * 0.98, b * 0.32, tilt, 1.0, |u, v| {
        lit(hair, u * 0.8, v * 0.5 - 0.3)
    });
    // Eyes, irises, pupils, brows.
    for side in [-1.0f32, 1.0] {
        let (ex, ey) = at(side * face.eye_dx, face.eye_y);
        canvas.ellipse(ex, ey, a * face.eye_w, b * face.eye_h, tilt, 1.0, |_, v| {
            [
                235.0 - 25.0 * v.abs(),
                232.0 - 25.0 * v.abs(),
                228.0 - 25.0 * v.abs(),
            ]
        });
        let ir = a * face.eye_h * 1.05;
        let iris = face.iris;
        canvas.ellipse(ex, ey, ir, ir, 0.0, 1.0, |u, v| {
            let r = (u * u + v * v).sqrt();
            iris.map(|c| c * (1.1 - 0.4 * r))
        });
        canvas.ellipse(ex, ey, ir * 0.45, ir * 0.45, 0.0, 1.0, |_, _| {
            [12.0, 10.0, 10.0]
        });
        canvas.ellipse(
            ex + ir * 0.3,
            ey - ir * 0.3,
            ir * 0.18,
            ir * 0.18,
            0.0,
            0.9,
            |_, _| [250.0, 250.0, 250.0],
        );
        let (bx, by) = at(side * face.eye_dx, face.eye_y - face.brow_lift);
        let brow = hair.map(|v| v * 0.7);
        canvas.ellipse(
            bx,
            by,
            a * face.eye_w * 1.25,
            b * face.brow_thick,
            tilt + side * 0.12,
            0.95,
            |_, _| brow,
        );
    }
    // Nose: a shadow on the lit side and nostrils.
    let shadow = skin.map(|v| v * 0.72);
    let (nx, ny) = at(-light[0].signum() * 0.06, 0.05 + face.nose_len * 0.3);
    canvas.ellipse(
        nx,
        ny,
        a * 0.07,
        b * face.nose_len * 0.5,
        tilt,
        0.6,
        |_, _| shadow,
    );
    for side in [-1.0f32, 1.0] {
        let (px, py) = at(side * 0.09, 0.05 + face.nose_len * 0.62);
        canvas.ellipse(px, py, a * 0.05, b * 0.025, tilt, 0.8, |_, _| {
            skin.map(|v| v * 0.45)
        });
    }
    // Mouth.
    let lips = face.lips;
    let (mx, my) = at(0.0, face.mouth_y);
    canvas.ellipse(
        mx,
        my,
        a * face.mouth_w,
        b * face.mouth_h,
        tilt,
        1.0,
        |_, v| lips.map(|c| c * (1.0 - 0.25 * v.abs())),
    );
    canvas.ellipse(
        mx,
        my,
        a * face.mouth_w * 0.9,
        b * face.mouth_h * 0.18,
        tilt,
        0.9,
        |_, _| lips.map(|c| c * 0.45),
    );
    img
}

/// Lens blur and sensor noise of a random strength.
fn camera(img: &mut Rgb32FImage, rng: &mut ChaCha8Rng) {
    let sigma: f32 = rng.random_range(0.4..0.8);
    gaussian_blur(img, sigma);
    let std: f32 = rng.random_range(3.0..5.0);
    if let Ok(normal) = Normal::new(0.0f32, std) {
        for v in img.iter_mut() {
            *v = (*v + normal.sample(rng)).clamp(0.0, 255.0);
        }
    }
}
