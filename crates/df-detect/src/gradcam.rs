//! Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
//! Gradient-based Localization", ICCV 2017): where in a picture the evidence for "fake"
//! lies, as the model's last convolutional stage sees it.
//!
//! For the activation `A` (`[C, h, w]`) of the family's Grad-CAM layer (the catalogue
//! row's `gradcam_layer`, [`df_models::Model::cam_layer`]) and the logit of "fake" `y`
//! (weights that score "real" are converted on import, [`df_models::Polarity`], so the
//! map always explains "fake"):
//!
//! ```text
//! alpha_k = mean over (h, w) of dy/dA_k
//! cam     = ReLU(sum_k alpha_k A_k)
//! map     = cam upsampled bilinearly to the model's input size, divided by its maximum
//! ```
//!
//! [`grad_cam`] computes it for a preprocessed batch (what the tests compare with PyTorch's
//! autograd); [`Detector::explain_image`] and [`Detector::explain_path`] for a picture, as
//! [`Detector::score_image`] scores it, giving a [`CamMap`] per face or for the whole
//! picture.
//!
//! # Where a map lies
//!
//! Every [`CamMap`] is in the pixels of the picture that was scored (the original photo):
//! for a whole picture, the map of the model's input is stretched back over the part of
//! the photo it saw (its centre crop, zero outside); for a face, the map of the face's
//! crop is placed back through the crop's box (and turn, with aligned crops), zero outside
//! it. So every map of a photo overlays that photo ([`CamMap::overlay_png`]), and `peak`
//! is where the photo is most suspicious. A map is a photo's size: 4 bytes a pixel.
//!
//! # What a map tells, and what it does not
//!
//! It says which regions of the last feature map raise the "fake" logit, at that map's
//! coarse resolution (8×8 for MesoNet at 256 px, 7×7 to 8×8 for the ImageNet families):
//! a check that a detector looks at the face rather than the background or a corner
//! watermark. It does not say why, it cannot show a cue spread evenly over the picture
//! (a JPEG quantisation table, a global colour shift: the map is then flat or arbitrary),
//! and an all-zero map means no location raises the logit (a confident "real").
//!
//! # Cost
//!
//! One forward pass to the Grad-CAM layer without a graph, then the rest of the network
//! with one and its gradient back to that layer only: about one forward pass more than
//! scoring (measured in `docs/trust.md`). It runs in f32 whatever the detector's precision.

use std::path::Path;

use df_data::rgb_to_tensor;
use df_face::CropConfig;
use df_models::Model;
use image::{ImageEncoder as _, RgbImage};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::detector::{finite, whole, Detector, ImageVerdict, Label};
use crate::{Error, Result};

/// A Grad-CAM map in the pixels of the picture that was scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CamMap {
    /// Width in pixels (the scored picture's).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × height` values in [0, 1], row-major; 1 at the strongest evidence for
    /// "fake", 0 where none (and outside a face's crop or a centre crop).
    #[serde(skip)]
    pub values: Vec<f32>,
    /// `[x, y]` of the strongest evidence in the pixels of the picture that was scored
    /// (for a face: the peak of its crop's map, mapped back through its crop box; clamped
    /// into the picture).
    pub peak: [u32; 2],
    /// The layer explained (the catalogue's `gradcam_layer`: `batch_normalization_3`,
    /// `conv5_block3_out` ...).
    pub layer: String,
}

/// A scored picture with its Grad-CAM maps ([`Detector::explain_image`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainedImage {
    /// The verdict, as [`Detector::score_image`] gives it.
    pub verdict: ImageVerdict,
    /// One map per face, in `verdict.faces` order (none without a face), or one for the
    /// whole picture.
    pub maps: Vec<CamMap>,
}

/// Grad-CAM maps of a preprocessed batch ([`grad_cam`]).
#[derive(Debug)]
pub struct GradCam {
    /// `[N, H, W]` (the input's size), f32 on the CPU, each map divided by its maximum
    /// (all zero where no location raises the logit).
    pub maps: Tensor,
    /// The logits of "fake" the maps explain, one per picture.
    pub logits: Vec<f32>,
    /// The layer explained ([`Model::cam_layer`]).
    pub layer: String,
}

/// Grad-CAM of a batch of preprocessed inputs `[N, 3, H, W]` (eval mode, f32), at the
/// input's size.
///
/// ```
/// # mod deepfake { pub mod detect { pub use df_detect::*; } pub use df_models as models; pub use tch; }
/// use deepfake::detect::grad_cam;
/// use deepfake::models::{self, BuildOptions};
/// use deepfake::tch::{nn::VarStore, Device, Kind, Tensor};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vs = VarStore::new(Device::Cpu);
/// let model = models::build("meso4", &vs.root(), &BuildOptions::default().with_input_size(64, 64))?;
/// let x = Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu));
/// let cam = grad_cam(model.as_ref(), &x)?;
/// assert_eq!(cam.maps.size(), [2, 64, 64]);
/// assert_eq!(cam.layer, "batch_normalization_3");
/// assert!(cam.maps.max().double_value(&[]) <= 1.0);
/// # Ok(()) }
/// ```
///
/// # Errors
/// The input is not `[N, 3, H, W]`; the model does not give one logit per picture or a
/// feature map at its Grad-CAM layer; a logit that is not finite (damaged weights).
pub fn grad_cam(model: &dyn Model, xs: &Tensor) -> Result<GradCam> {
    let layer = model.cam_layer();
    let dims = xs.size();
    let &[n, 3, h, w] = dims.as_slice() else {
        return Err(Error::Message(format!(
            "Grad-CAM takes a batch of pictures [N, 3, H, W], got {dims:?}"
        )));
    };
    let xs = xs.to_kind(Kind::Float);
    // Up to the layer without a graph; from it, a graph whose only leaf is the activation:
    // the gradient goes back to the layer and no further, and no weight gets one.
    let activation = tch::no_grad(|| model.forward_cam_features(&xs, false))
        .detach()
        .set_requires_grad(true);
    let a_dims = activation.size();
    if a_dims.len() != 4 || a_dims[0] != n {
        return Err(Error::Message(format!(
            "Grad-CAM: the layer `{layer}` of model `{}` gives {a_dims:?}, not a feature \
             map [{n}, C, H', W']",
            model.name()
        )));
    }
    let out = model
        .forward_cam_head(&activation, false)
        .to_kind(Kind::Float);
    if out.size() != [n, 1] {
        return Err(Error::Message(format!(
            "Grad-CAM: model `{}` gives {:?}, not one logit of \"fake\" per picture [{n}, 1] \
             (does the model have a binary top?)",
            model.name(),
            out.size()
        )));
    }
    let logits = Vec::<f32>::try_from(&out.detach().to_device(Device::Cpu).view([-1]))?;
    if let Some(bad) = logits.iter().find(|z| !z.is_finite()) {
        return Err(Error::Message(format!(
            "the model's logit is {bad}: its weights hold NaN or infinite values"
        )));
    }
    let grad = Tensor::f_run_backward(&[out.sum(Kind::Float)], &[&activation], false, false)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Message("Grad-CAM: autograd gave no gradient".into()))?;
    let alpha = grad.f_mean_dim([2i64, 3].as_slice(), true, Kind::Float)?;
    let cam = (alpha * activation.detach())
        .f_sum_dim_intlist([1i64].as_slice(), true, Kind::Float)?
        .relu();
    let up = cam.f_upsample_bilinear2d([h, w], false, None, None)?;
    let peak = up.f_amax([1i64, 2, 3].as_slice(), true)?;
    // 0 / tiny = 0: a map without any positive evidence stays zero.
    let maps = (up / peak.clamp_min(f64::from(f32::MIN_POSITIVE)))
        .clamp(0.0, 1.0)
        .view([n, h, w])
        .to_device(Device::Cpu);
    Ok(GradCam {
        maps,
        logits,
        layer,
    })
}

impl Detector {
    /// Scores a decoded picture as [`Detector::score_image`] does and explains each score
    /// with a Grad-CAM map ([`mod@crate::gradcam`]): one per face (in the verdict's order)
    /// when faces are scored, else one for the whole picture. Every map is in `image`'s
    /// pixels.
    ///
    /// ```no_run
    /// # mod deepfake { pub mod detect { pub use df_detect::*; } pub use df_detect::Detector; pub use image; }
    /// use deepfake::detect::DetectorOptions;
    /// use deepfake::Detector;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let detector = Detector::open("runs/lfw/model.safetensors", &DetectorOptions::default())?;
    /// let photo = deepfake::image::open("photo.jpg")?.to_rgb8();
    /// let explained = detector.explain_image(&photo)?;
    /// for map in &explained.maps {
    ///     println!("{:?}: most suspicious at {:?}", explained.verdict.p_fake, map.peak);
    ///     std::fs::write("photo-cam.png", map.overlay_png(&photo)?)?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Detector::score_image`]; the model has no feature map at its Grad-CAM layer.
    pub fn explain_image(&self, image: &RgbImage) -> Result<ExplainedImage> {
        let model = self.loaded.model.as_ref();
        let (width, height) = image.dimensions();
        if let Some((_, config)) = &self.faces {
            let crops = self.face_crops(image)?;
            if crops.is_empty() {
                let verdict = ImageVerdict {
                    p_fake: None,
                    label: Label::NoFace,
                    faces: Some(Vec::new()),
                };
                return Ok(ExplainedImage {
                    verdict,
                    maps: Vec::new(),
                });
            }
            let x = self.crops_input(&crops)?;
            let faces = self.faces_scored(&crops, &x)?;
            let cam = grad_cam(model, &x)?;
            let maps = crops
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let placement = Placement::Face {
                        face: &c.face,
                        config,
                    };
                    cam_map(
                        &cam.maps.get(i as i64),
                        placement,
                        width,
                        height,
                        &cam.layer,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let p_fake = faces.iter().map(|f| f.p_fake).reduce(f64::max);
            let verdict = ImageVerdict {
                p_fake,
                label: Label::of(p_fake),
                faces: Some(faces),
            };
            return Ok(ExplainedImage { verdict, maps });
        }
        let x = rgb_to_tensor(image, &self.transform)?.to_device(self.device);
        let p_fake = self.p_one(&x)?;
        finite(p_fake)?;
        let cam = grad_cam(model, &x)?;
        let rect = self.transform.center_crop_rect(width, height);
        let map = cam_map(
            &cam.maps.get(0),
            Placement::Whole { rect },
            width,
            height,
            &cam.layer,
        )?;
        Ok(ExplainedImage {
            verdict: whole(p_fake),
            maps: vec![map],
        })
    }

    /// [`Detector::explain_image`] of a photo file.
    ///
    /// # Errors
    /// A video (Grad-CAM explains pictures: decode a frame and explain it); a file that
    /// cannot be read or decoded; as [`Detector::explain_image`]. Each names the file.
    pub fn explain_path(&self, path: impl AsRef<Path>) -> Result<ExplainedImage> {
        let path = path.as_ref();
        if df_data::has_video_extension(path) {
            return Err(Error::File {
                path: path.to_path_buf(),
                message: "a video: Grad-CAM explains photos (decode a frame and explain it \
                          with Detector::explain_image)"
                    .into(),
            });
        }
        let image = df_data::load_rgb(path).map_err(|why| Error::File {
            path: path.to_path_buf(),
            message: why.to_string(),
        })?;
        self.explain_image(&image).map_err(|e| e.in_file(path))
    }
}

/// Where the model's input lay in the scored picture.
#[derive(Clone, Copy)]
enum Placement<'a> {
    /// The whole picture, or its centre crop `(x, y, width, height)`, resized.
    Whole { rect: (u32, u32, u32, u32) },
    /// A face's crop, as df-face's `crop_faces` makes it.
    Face {
        face: &'a df_face::Face,
        config: &'a CropConfig,
    },
}

/// The crop of `face`: its centre, half sides and turn, as df-face's `crop_faces` computes
/// them (a crop point `(xo, yo)` in [-1, 1]² lies at picture pixel
/// `c + R(angle)·(xo·hx, yo·hy)`, pixel `i` covering `[i, i + 1)`).
fn crop_frame(face: &df_face::Face, config: &CropConfig) -> ([f32; 2], [f32; 2], f32) {
    let b = face.bbox;
    let centre = [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0];
    let grow = 1.0 + config.margin;
    let (bw, bh) = ((b[2] - b[0]).max(1.0), (b[3] - b[1]).max(1.0));
    let half = if config.square {
        let s = bw.max(bh) * grow / 2.0;
        [s, s]
    } else {
        [bw * grow / 2.0, bh * grow / 2.0]
    };
    let angle = if config.align {
        let [l, r] = [face.landmarks[0], face.landmarks[1]];
        (r[1] - l[1]).atan2(r[0] - l[0])
    } else {
        0.0
    };
    (centre, half, angle)
}

/// The map `map` (`[H, W]`, the model's input) in the pixels of a `width`×`height`
/// picture, with its peak.
fn cam_map(
    map: &Tensor,
    placement: Placement<'_>,
    width: u32,
    height: u32,
    layer: &str,
) -> Result<CamMap> {
    let dims = map.size();
    let &[h, w] = dims.as_slice() else {
        return Err(Error::Message(format!("Grad-CAM: a map of shape {dims:?}")));
    };
    let (pw, ph) = (i64::from(width), i64::from(height));
    // The first maximum of the input's map, as a point in [-1, 1]² (pixel centres).
    let at = map.view([-1]).argmax(0, false).int64_value(&[]);
    let (ix, iy) = (at % w, at / w);
    let xo = 2.0 * (ix as f32 + 0.5) / w as f32 - 1.0;
    let yo = 2.0 * (iy as f32 + 0.5) / h as f32 - 1.0;
    let map4 = map.view([1, 1, h, w]);
    let (values, peak) = match placement {
        Placement::Whole {
            rect: (x0, y0, cw, ch),
        } => {
            let up =
                map4.f_upsample_bilinear2d([i64::from(ch), i64::from(cw)], false, None, None)?;
            let values = if (cw, ch) == (width, height) {
                up
            } else {
                let out = Tensor::zeros([1, 1, ph, pw], (Kind::Float, Device::Cpu));
                out.narrow(2, i64::from(y0), i64::from(ch))
                    .narrow(3, i64::from(x0), i64::from(cw))
                    .copy_(&up);
                out
            };
            let x = x0 as f32 + (xo + 1.0) / 2.0 * cw as f32;
            let y = y0 as f32 + (yo + 1.0) / 2.0 * ch as f32;
            (values, [x, y])
        }
        Placement::Face { face, config } => {
            let ([cx, cy], [hx, hy], angle) = crop_frame(face, config);
            let (sin, cos) = angle.sin_cos();
            // Picture pixel centre (u, v in [-1, 1]², affine_grid's convention) to the
            // crop's [-1, 1]²: the inverse of the crop's map.
            let (half_w, half_h) = (width as f32 / 2.0, height as f32 / 2.0);
            let (dx, dy) = (half_w - cx, half_h - cy);
            let theta = Tensor::from_slice(&[
                cos * half_w / hx,
                sin * half_h / hx,
                (cos * dx + sin * dy) / hx,
                -sin * half_w / hy,
                cos * half_h / hy,
                (-sin * dx + cos * dy) / hy,
            ])
            .view([1, 2, 3]);
            let grid = Tensor::f_affine_grid_generator(&theta, [1, 1, ph, pw], false)?;
            // Bilinear, zeros outside the crop.
            let values = map4.f_grid_sampler(&grid, 0, 0, false)?;
            let x = cx + cos * hx * xo - sin * hy * yo;
            let y = cy + sin * hx * xo + cos * hy * yo;
            (values, [x, y])
        }
    };
    let values = Vec::<f32>::try_from(&values.clamp(0.0, 1.0).contiguous().view([-1]))?;
    let clamp = |v: f32, side: u32| -> u32 {
        if v.is_finite() {
            (v.floor().max(0.0) as u32).min(side.saturating_sub(1))
        } else {
            0
        }
    };
    Ok(CamMap {
        width,
        height,
        values,
        peak: [clamp(peak[0], width), clamp(peak[1], height)],
        layer: layer.to_string(),
    })
}

/// The "jet" colour of `v` in [0, 1]: blue, cyan, yellow, red.
fn jet(v: f32) -> [f32; 3] {
    let c = |x: f32| (1.5 - x.abs()).clamp(0.0, 1.0);
    [c(4.0 * v - 3.0), c(4.0 * v - 2.0), c(4.0 * v - 1.0)]
}

impl CamMap {
    /// PNG bytes of `base` with the map as a colour overlay ("jet": blue for weak, red for
    /// strong evidence of "fake"; the overlay's opacity grows with the value, so regions
    /// without evidence show `base` unchanged). `base` is the picture that was scored; one
    /// of another size gets the map resized to it (bilinear).
    ///
    /// ```
    /// # mod deepfake { pub mod detect { pub use df_detect::*; } pub use image; }
    /// use deepfake::detect::CamMap;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let map = CamMap { width: 2, height: 1, values: vec![0.0, 1.0], peak: [1, 0], layer: "top".into() };
    /// let base = deepfake::image::RgbImage::from_pixel(2, 1, deepfake::image::Rgb([200, 200, 200]));
    /// let png = map.overlay_png(&base)?;
    /// let back = deepfake::image::load_from_memory(&png)?.to_rgb8();
    /// assert_eq!(back.get_pixel(0, 0).0, [200, 200, 200]); // no evidence: unchanged
    /// assert!(back.get_pixel(1, 0).0[0] > back.get_pixel(1, 0).0[2]); // red over blue
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A map whose values do not fill `width × height`; an empty `base`; encoding.
    pub fn overlay_png(&self, base: &RgbImage) -> Result<Vec<u8>> {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 || self.values.len() as u64 != u64::from(w) * u64::from(h) {
            return Err(Error::Message(format!(
                "Grad-CAM map: {} values for {w}×{h} pixels",
                self.values.len()
            )));
        }
        let (bw, bh) = base.dimensions();
        if bw == 0 || bh == 0 {
            return Err(Error::Message(
                "Grad-CAM overlay: the base picture is empty".into(),
            ));
        }
        let resized;
        let values: &[f32] = if (bw, bh) == (w, h) {
            &self.values
        } else {
            let t = Tensor::from_slice(&self.values)
                .view([1, 1, i64::from(h), i64::from(w)])
                .f_upsample_bilinear2d([i64::from(bh), i64::from(bw)], false, None, None)?;
            resized = Vec::<f32>::try_from(&t.contiguous().view([-1]))?;
            &resized
        };
        let mut out = RgbImage::new(bw, bh);
        for ((dst, src), &v) in out.pixels_mut().zip(base.pixels()).zip(values) {
            let v = if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            };
            let alpha = 0.6 * v;
            let colour = jet(v);
            for ((d, &s), k) in dst.0.iter_mut().zip(&src.0).zip(colour) {
                let blended = (1.0 - alpha) * f32::from(s) + alpha * 255.0 * k;
                *d = blended.round().clamp(0.0, 255.0) as u8;
            }
        }
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(out.as_raw(), bw, bh, image::ExtendedColorType::Rgb8)
            .map_err(|e| Error::Message(format!("encoding the Grad-CAM overlay as PNG: {e}")))?;
        Ok(png)
    }
}

/// One overlay [`ExplainedImage::write_overlays`] wrote: `predict`'s `explain` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overlay {
    /// The PNG file.
    pub png: String,
    /// The map's peak in the picture's pixels ([`CamMap::peak`]).
    pub peak: [u32; 2],
    /// The layer explained.
    pub layer: String,
}

/// A file-name stem for the overlays of the `index`-th input `path`: its number and its
/// stem (letters, digits, `-` and `_` kept, anything else `_`, at most 64 characters), so
/// that `a/x.jpg` and `b/x.jpg` do not clash.
pub fn overlay_stem(index: usize, path: &Path) -> String {
    let stem: String = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{index:05}-{stem}")
}

/// Checks a folder for overlays before anything is written, and creates it: not inside
/// any folder of `inputs` (a later run over that folder would score the overlays as
/// photos), and a folder if it exists. The message names the folder.
///
/// # Errors
/// Why the folder cannot take the overlays.
pub fn prepare_overlay_dir(dir: &Path, inputs: &[std::path::PathBuf]) -> Result<(), String> {
    for input in inputs.iter().filter(|p| p.is_dir()) {
        let inside = df_io::is_inside(dir, input).map_err(|e| format!("{}: {e}", dir.display()))?;
        if inside {
            return Err(format!(
                "{} is inside the input folder {} (the overlays written there would be \
                 scored as photos): choose a folder outside it",
                dir.display(),
                input.display()
            ));
        }
    }
    if dir.exists() && !dir.is_dir() {
        return Err(format!("{} is a file, not a folder", dir.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}

impl ExplainedImage {
    /// Writes the overlay of each map on `image` (the picture that was explained) into
    /// `dir`, atomically: `STEM.png` for a whole picture, `STEM-faceK.png` for its K-th
    /// face ([`overlay_stem`] makes a stem).
    ///
    /// # Errors
    /// [`CamMap::overlay_png`]'s; writing a file (naming it).
    pub fn write_overlays(&self, image: &RgbImage, dir: &Path, stem: &str) -> Result<Vec<Overlay>> {
        let faces = self.verdict.faces.is_some();
        let mut written = Vec::new();
        for (k, map) in self.maps.iter().enumerate() {
            let name = if faces {
                format!("{stem}-face{k}.png")
            } else {
                format!("{stem}.png")
            };
            let png = dir.join(name);
            df_io::write_atomic(&png, map.overlay_png(image)?)?;
            written.push(Overlay {
                png: png.to_string_lossy().into_owned(),
                peak: map.peak,
                layer: map.layer.clone(),
            });
        }
        Ok(written)
    }

    /// The verdict's JSON object for `path`, as `predict` prints it, with each of
    /// `overlays` as `explain`: in each face's object with faces (in order), else in the
    /// picture's.
    ///
    /// # Errors
    /// Serialising the verdict.
    pub fn json_line(&self, path: &Path, overlays: Vec<Overlay>) -> Result<serde_json::Value> {
        let json = |e: serde_json::Error| Error::Message(format!("{}: {e}", path.display()));
        let mut value = self.verdict.json(path).map_err(json)?;
        let mut explains = overlays
            .into_iter()
            .map(serde_json::to_value)
            .collect::<serde_json::Result<Vec<_>>>()
            .map_err(json)?;
        if self.verdict.faces.is_some() {
            if let Some(list) = value.get_mut("faces").and_then(|f| f.as_array_mut()) {
                for (face, explain) in list.iter_mut().zip(explains) {
                    if let Some(face) = face.as_object_mut() {
                        face.insert("explain".into(), explain);
                    }
                }
            }
        } else if let (Some(map), Some(explain)) = (value.as_object_mut(), explains.pop()) {
            map.insert("explain".into(), explain);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Face;

    #[test]
    fn an_overlay_folder_inside_an_input_folder_or_on_a_file_is_refused() {
        let tmp = tempfile::tempdir().expect("temporary folder");
        let photos = tmp.path().join("photos");
        std::fs::create_dir(&photos).expect("folder");
        let inputs = [photos.clone()];
        let inside = photos.join("maps");
        let why = prepare_overlay_dir(&inside, &inputs).expect_err("inside an input folder");
        assert!(why.contains("inside the input folder"), "{why}");
        assert!(!inside.exists(), "nothing is created when refused");
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").expect("file");
        let why = prepare_overlay_dir(&file, &inputs).expect_err("a file");
        assert!(why.contains("is a file"), "{why}");
        let maps = tmp.path().join("out/maps");
        prepare_overlay_dir(&maps, &inputs).expect("a new folder beside the inputs");
        assert!(maps.is_dir());
    }

    #[test]
    fn overlay_stems_number_the_input_and_keep_only_safe_characters() {
        assert_eq!(overlay_stem(3, Path::new("a/b c.ü.jpg")), "00003-b_c__");
        assert_eq!(
            overlay_stem(12, Path::new("x/../we-ird_1.png")),
            "00012-we-ird_1"
        );
        let long = format!("{}.jpg", "n".repeat(100));
        assert_eq!(overlay_stem(0, Path::new(&long)).len(), 6 + 64);
        assert_ne!(
            overlay_stem(0, Path::new("a/x.jpg")),
            overlay_stem(1, Path::new("b/x.jpg"))
        );
    }

    fn explained(faces: Option<usize>) -> ExplainedImage {
        let map = |k: u32| CamMap {
            width: 4,
            height: 2,
            values: (0..8).map(|v| v as f32 / 7.0).collect(),
            peak: [k, 1],
            layer: "conv".into(),
        };
        let face = |k: usize| Face {
            bbox: [0.0, 0.0, 2.0, 2.0],
            probability: 0.99,
            p_fake: 0.1 * k as f64,
        };
        ExplainedImage {
            verdict: ImageVerdict {
                p_fake: Some(0.7),
                label: Label::Fake,
                faces: faces.map(|n| (0..n).map(face).collect()),
            },
            maps: (0..faces.unwrap_or(1) as u32).map(map).collect(),
        }
    }

    #[test]
    fn overlays_are_written_per_face_and_named_in_the_line() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let image = RgbImage::from_pixel(4, 2, image::Rgb([10, 20, 30]));
        let e = explained(Some(2));
        let written = e
            .write_overlays(&image, dir.path(), "00007-p")
            .expect("overlays");
        let names: Vec<String> = written
            .iter()
            .map(|o| {
                Path::new(&o.png)
                    .file_name()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["00007-p-face0.png", "00007-p-face1.png"]);
        for o in &written {
            let back = image::open(&o.png).expect("a PNG").to_rgb8();
            assert_eq!(back.dimensions(), (4, 2));
        }
        let line = e.json_line(Path::new("in/p.jpg"), written).expect("line");
        assert_eq!(line["path"], "in/p.jpg");
        assert_eq!(line["label"], "fake");
        assert!(line.get("explain").is_none(), "{line}");
        for (k, face) in line["faces"].as_array().expect("faces").iter().enumerate() {
            assert_eq!(face["explain"]["peak"], serde_json::json!([k, 1]), "{line}");
            assert_eq!(face["explain"]["layer"], "conv");
        }

        let whole = explained(None);
        let written = whole
            .write_overlays(&image, dir.path(), "00008-q")
            .expect("overlay");
        assert_eq!(written.len(), 1);
        assert!(written[0].png.ends_with("00008-q.png"), "{:?}", written[0]);
        let line = whole.json_line(Path::new("q.jpg"), written).expect("line");
        assert_eq!(line["explain"]["peak"], serde_json::json!([0, 1]), "{line}");
        assert!(line.get("faces").is_none(), "{line}");
    }
    use df_face::{crop_faces, FaceSelect};

    /// A smooth blob about `(cx, cy)` in a `w`×`h` picture, as a grey image.
    fn blob(w: u32, h: u32, (cx, cy): (f32, f32), sigma: f32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let d2 = (x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2);
            let v = (255.0 * (-d2 / (2.0 * sigma * sigma)).exp()).round() as u8;
            image::Rgb([v, v, v])
        })
    }

    /// A face's map placed back through its crop is the photo's own content there: a
    /// blob cropped by df-face's `crop_faces` (turned: aligned eyes) and placed back by
    /// `cam_map` lands where it was, its peak included.
    #[test]
    fn a_faces_map_goes_back_where_df_face_cropped_it() {
        let (w, h) = (160, 120);
        let centre = (92.0, 58.0);
        let photo = blob(w, h, centre, 9.0);
        let face = df_face::Face {
            bbox: [60.0, 30.0, 120.0, 100.0],
            probability: 0.99,
            // Eyes at a slant: the aligned crop is turned by atan2(8, 30).
            landmarks: [
                [75.0, 50.0],
                [105.0, 58.0],
                [90.0, 70.0],
                [80.0, 85.0],
                [100.0, 88.0],
            ],
        };
        for align in [false, true] {
            let config = CropConfig {
                size: 64,
                margin: 0.3,
                square: true,
                align,
                min_face_size: 0.0,
                select: FaceSelect::All,
            };
            let crops = crop_faces(&photo, &[face], &config).expect("crop");
            let crop = &crops[0].image;
            let values: Vec<f32> = crop.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect();
            let map = Tensor::from_slice(&values).view([64, 64]);
            let placed = cam_map(
                &map,
                Placement::Face {
                    face: &face,
                    config: &config,
                },
                w,
                h,
                "layer",
            )
            .expect("placed");
            assert_eq!((placed.width, placed.height), (w, h));
            let [px, py] = placed.peak;
            assert!(
                (px as f32 - centre.0).abs() <= 2.0 && (py as f32 - centre.1).abs() <= 2.0,
                "align {align}: peak {:?}, blob at {centre:?}",
                placed.peak
            );
            // Within the face's box the placed map is the photo (two bilinear resamplings).
            let mut worst = 0.0f32;
            for y in 35..95u32 {
                for x in 65..115u32 {
                    let got = placed.values[(y * w + x) as usize];
                    let want = f32::from(photo.get_pixel(x, y).0[0]) / 255.0;
                    worst = worst.max((got - want).abs());
                }
            }
            assert!(worst < 0.08, "align {align}: {worst}");
            // Far outside the crop: nothing.
            assert_eq!(placed.values[(5 * w + 5) as usize], 0.0);
        }
    }
}
