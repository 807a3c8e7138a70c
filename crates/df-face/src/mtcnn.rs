//! MTCNN as facenet-pytorch 2.6.0 runs it (`models/mtcnn.py`, `models/utils/detect_face.py`):
//! the same networks, pyramid, area resampling, thresholds, box arithmetic (in `f32`) and
//! suppressions, for one image at a time.

use std::path::Path;

use image::RgbImage;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::nms::{nms_iou, nms_min};
use crate::{Error, Result};

/// The detector's settings (facenet-pytorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MtcnnConfig {
    /// The smallest face searched for, in pixels (20): it sets the pyramid's first scale,
    /// 12 / `min_face_size` (P-Net sees 12×12 windows).
    pub min_face_size: f64,
    /// The probability a candidate needs at P-Net, R-Net and O-Net (0.6, 0.7, 0.7).
    pub thresholds: [f64; 3],
    /// The pyramid's scale step (0.709).
    pub factor: f64,
}

impl Default for MtcnnConfig {
    fn default() -> Self {
        Self {
            min_face_size: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
        }
    }
}

impl MtcnnConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting out of range.
    pub fn validate(&self) -> Result<()> {
        if !(self.min_face_size.is_finite() && self.min_face_size >= 12.0) {
            return Err(Error::Config {
                option: "min_face_size",
                reason: format!("{} px: at least 12 (P-Net's window)", self.min_face_size),
            });
        }
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::Config {
                option: "factor",
                reason: format!("{}: the pyramid's step must be in (0, 1)", self.factor),
            });
        }
        if let Some(t) = self.thresholds.iter().find(|t| !(0.0..=1.0).contains(*t)) {
            return Err(Error::Config {
                option: "thresholds",
                reason: format!("{t} is not a probability"),
            });
        }
        Ok(())
    }
}

/// A face found in an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    /// `[x1, y1, x2, y2]` in pixels of the image (may reach past its edges).
    pub bbox: [f32; 4],
    /// O-Net's probability that the box holds a face.
    pub probability: f32,
    /// `[x, y]` of the left eye, right eye, nose, left and right mouth corners (as seen in
    /// the image).
    pub landmarks: [[f32; 2]; 5],
}

impl Face {
    /// Width × height of the box.
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]) * (self.bbox[3] - self.bbox[1])
    }
}

fn prelu(p: nn::Path<'_>, channels: i64) -> Tensor {
    p.var("weight", &[channels], nn::Init::Const(0.25))
}

fn conv(p: nn::Path<'_>, cin: i64, cout: i64, k: i64) -> nn::Conv2D {
    nn::conv2d(p, cin, cout, k, Default::default())
}

fn pool(x: &Tensor, k: i64, s: i64) -> Tensor {
    x.max_pool2d([k, k], [s, s], [0, 0], [1, 1], true)
}

/// facenet-pytorch's dense layers read the feature map transposed (`permute(0, 3, 2, 1)`,
/// the layout of the original Caffe/TensorFlow weights).
fn flatten_transposed(x: &Tensor) -> Tensor {
    let n = x.size()[0];
    x.permute([0, 3, 2, 1]).contiguous().view([n, -1])
}

struct PNet {
    conv1: nn::Conv2D,
    prelu1: Tensor,
    conv2: nn::Conv2D,
    prelu2: Tensor,
    conv3: nn::Conv2D,
    prelu3: Tensor,
    conv4_1: nn::Conv2D,
    conv4_2: nn::Conv2D,
}

impl PNet {
    fn new(p: &nn::Path<'_>) -> Self {
        Self {
            conv1: conv(p / "conv1", 3, 10, 3),
            prelu1: prelu(p / "prelu1", 10),
            conv2: conv(p / "conv2", 10, 16, 3),
            prelu2: prelu(p / "prelu2", 16),
            conv3: conv(p / "conv3", 16, 32, 3),
            prelu3: prelu(p / "prelu3", 32),
            conv4_1: conv(p / "conv4_1", 32, 2, 1),
            conv4_2: conv(p / "conv4_2", 32, 4, 1),
        }
    }

    /// (box regression `[N, 4, h, w]`, face probability `[N, 2, h, w]`).
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let x = pool(&self.conv1.forward(x).prelu(&self.prelu1), 2, 2);
        let x = self.conv2.forward(&x).prelu(&self.prelu2);
        let x = self.conv3.forward(&x).prelu(&self.prelu3);
        let probs = self.conv4_1.forward(&x).softmax(1, Kind::Float);
        (self.conv4_2.forward(&x), probs)
    }
}

struct RNet {
    conv1: nn::Conv2D,
    prelu1: Tensor,
    conv2: nn::Conv2D,
    prelu2: Tensor,
    conv3: nn::Conv2D,
    prelu3: Tensor,
    dense4: nn::Linear,
    prelu4: Tensor,
    dense5_1: nn::Linear,
    dense5_2: nn::Linear,
}

impl RNet {
    fn new(p: &nn::Path<'_>) -> Self {
        Self {
            conv1: conv(p / "conv1", 3, 28, 3),
            prelu1: prelu(p / "prelu1", 28),
            conv2: conv(p / "conv2", 28, 48, 3),
            prelu2: prelu(p / "prelu2", 48),
            conv3: conv(p / "conv3", 48, 64, 2),
            prelu3: prelu(p / "prelu3", 64),
            dense4: nn::linear(p / "dense4", 576, 128, Default::default()),
            prelu4: prelu(p / "prelu4", 128),
            dense5_1: nn::linear(p / "dense5_1", 128, 2, Default::default()),
            dense5_2: nn::linear(p / "dense5_2", 128, 4, Default::default()),
        }
    }

    /// (box regression `[N, 4]`, face probability `[N, 2]`) of 24×24 crops.
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let x = pool(&self.conv1.forward(x).prelu(&self.prelu1), 3, 2);
        let x = pool(&self.conv2.forward(&x).prelu(&self.prelu2), 3, 2);
        let x = self.conv3.forward(&x).prelu(&self.prelu3);
        let x = self
            .dense4
            .forward(&flatten_transposed(&x))
            .prelu(&self.prelu4);
        let probs = self.dense5_1.forward(&x).softmax(1, Kind::Float);
        (self.dense5_2.forward(&x), probs)
    }
}

struct ONet {
    conv1: nn::Conv2D,
    prelu1: Tensor,
    conv2: nn::Conv2D,
    prelu2: Tensor,
    conv3: nn::Conv2D,
    prelu3: Tensor,
    conv4: nn::Conv2D,
    prelu4: Tensor,
    dense5: nn::Linear,
    prelu5: Tensor,
    dense6_1: nn::Linear,
    dense6_2: nn::Linear,
    dense6_3: nn::Linear,
}

impl ONet {
    fn new(p: &nn::Path<'_>) -> Self {
        Self {
            conv1: conv(p / "conv1", 3, 32, 3),
            prelu1: prelu(p / "prelu1", 32),
            conv2: conv(p / "conv2", 32, 64, 3),
            prelu2: prelu(p / "prelu2", 64),
            conv3: conv(p / "conv3", 64, 64, 3),
            prelu3: prelu(p / "prelu3", 64),
            conv4: conv(p / "conv4", 64, 128, 2),
            prelu4: prelu(p / "prelu4", 128),
            dense5: nn::linear(p / "dense5", 1152, 256, Default::default()),
            prelu5: prelu(p / "prelu5", 256),
            dense6_1: nn::linear(p / "dense6_1", 256, 2, Default::default()),
            dense6_2: nn::linear(p / "dense6_2", 256, 4, Default::default()),
            dense6_3: nn::linear(p / "dense6_3", 256, 10, Default::default()),
        }
    }

    /// (box regression `[N, 4]`, landmarks `[N, 10]` (x₁..x₅, y₁..y₅ in the crop's unit
    /// square), face probability `[N, 2]`) of 48×48 crops.
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let x = pool(&self.conv1.forward(x).prelu(&self.prelu1), 3, 2);
        let x = pool(&self.conv2.forward(&x).prelu(&self.prelu2), 3, 2);
        let x = pool(&self.conv3.forward(&x).prelu(&self.prelu3), 2, 2);
        let x = self.conv4.forward(&x).prelu(&self.prelu4);
        let x = self
            .dense5
            .forward(&flatten_transposed(&x))
            .prelu(&self.prelu5);
        let probs = self.dense6_1.forward(&x).softmax(1, Kind::Float);
        (self.dense6_2.forward(&x), self.dense6_3.forward(&x), probs)
    }
}

/// A candidate box with its score and the regression that refines it.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    bbox: [f32; 4],
    score: f32,
    reg: [f32; 4],
}

/// The MTCNN face detector (see the crate's documentation).
///
/// Load it once (its weights come from the set-up, [`crate::default_weights_path`]) and
/// call [`Mtcnn::detect`] on decoded pictures: the faces come largest first, each with its
/// box, probability and five landmarks, ready for [`crate::crop_faces`].
///
/// ```no_run
/// # mod deepfake { pub mod face { pub use df_face::*; } pub use image; pub use tch; }
/// use deepfake::face::{crop_faces, default_weights_path, CropConfig, Mtcnn, MtcnnConfig};
/// use deepfake::tch::Device;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mtcnn = Mtcnn::load(&default_weights_path()?, MtcnnConfig::default(), Device::Cpu)?;
/// let photo: deepfake::image::RgbImage = deepfake::image::open("photo.jpg")?.to_rgb8();
/// let faces = mtcnn.detect(&photo)?; // largest first
/// for face in &faces {
///     println!("{:?} p={:.3}", face.bbox, face.probability);
/// }
/// let crops = crop_faces(&photo, &faces, &CropConfig::default())?; // the largest, 256×256
/// # let _ = crops;
/// # Ok(()) }
/// ```
pub struct Mtcnn {
    _vs: nn::VarStore,
    pnet: PNet,
    rnet: RNet,
    onet: ONet,
    config: MtcnnConfig,
    device: Device,
}

impl std::fmt::Debug for Mtcnn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mtcnn")
            .field("config", &self.config)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// facenet-pytorch's `imresample` (`interpolate(mode="area")`, libtorch's adaptive average
/// pooling) from a summed-area table: an output pixel averages the input pixels of its
/// bin, bins as libtorch's `start_index`/`end_index` make them. The pixels are whole
/// numbers, so the f64 table sums them exactly, and a bin's sum divided by its height,
/// then its width, in f32, is what libtorch's kernel computes (checked bit for bit in
/// the tests); one table serves every pyramid level and every crop, where pooling the
/// image again at each level and for each crop cost more than the networks.
struct AreaSampler {
    /// `[3, H + 1, W + 1]`, zero first row and column.
    table: Tensor,
}

/// libtorch's adaptive-pooling bins of `n` outputs over `len` inputs starting at `from`:
/// (first, one past the last) input index of each.
fn bins(from: i64, len: i64, n: i64) -> (Vec<i64>, Vec<i64>) {
    (0..n)
        .map(|a| {
            let start = (a / n) * len + ((a % n) * len) / n;
            let end = 1 + ((a + 1) * len - 1) / n;
            (from + start, from + end)
        })
        .unzip()
}

impl AreaSampler {
    /// The table of a `[1, 3, H, W]` image, kept `[H + 1, W + 1, 3]`, summed here in one
    /// pass (libtorch's two `cumsum`s took ~100 ms on a 1080p frame).
    fn new(img: &Tensor) -> Result<Self> {
        let size = img.size();
        let (h, w) = (size[2] as usize, size[3] as usize);
        let device = img.device();
        let hwc = to_vec(&img.squeeze_dim(0).permute([1, 2, 0]))?;
        let stride = (w + 1) * 3;
        let mut table = vec![0f64; (h + 1) * stride];
        for y in 0..h {
            let mut run = [0f64; 3];
            for x in 0..w {
                for c in 0..3 {
                    run[c] += f64::from(hwc[(y * w + x) * 3 + c]);
                    table[(y + 1) * stride + (x + 1) * 3 + c] =
                        table[y * stride + (x + 1) * 3 + c] + run[c];
                }
            }
        }
        Ok(Self {
            table: Tensor::from_slice(&table)
                .view([(h + 1) as i64, (w + 1) as i64, 3])
                .to_device(device),
        })
    }

    /// The regions `(y, h, x, w)` (rows `y..y + h`, columns `x..x + w`) each resampled to
    /// `oh`×`ow`: `[N, 3, oh, ow]`, channels-last strides (the networks' convolutions run
    /// NHWC, twice as fast as NCHW for P-Net's 3- and 10-channel layers).
    fn regions(&self, regions: &[(i64, i64, i64, i64)], oh: i64, ow: i64) -> Tensor {
        let device = self.table.device();
        let (mut y0, mut y1, mut x0, mut x1) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &(y, h, x, w) in regions {
            let (a, b) = bins(y, h, oh);
            let (c, d) = bins(x, w, ow);
            y0.extend(a);
            y1.extend(b);
            x0.extend(c);
            x1.extend(d);
        }
        let n = regions.len() as i64;
        let index = |v: &[i64]| Tensor::from_slice(v).to_device(device);
        let (ty0, ty1, tx0, tx1) = (index(&y0), index(&y1), index(&x0), index(&x1));
        // Sums over each bin, exact in f64: [N, oh, ow, 3].
        let sums = if n == 1 {
            // Rows, then columns: contiguous copies, not a gather per output value.
            let rows = self.table.index_select(0, &ty1) - self.table.index_select(0, &ty0);
            (rows.index_select(1, &tx1) - rows.index_select(1, &tx0)).unsqueeze(0)
        } else {
            let (ys0, ys1) = (ty0.view([n, oh, 1]), ty1.view([n, oh, 1]));
            let (xs0, xs1) = (tx0.view([n, 1, ow]), tx1.view([n, 1, ow]));
            let at = |ys: &Tensor, xs: &Tensor| {
                self.table
                    .index(&[Some(ys.shallow_clone()), Some(xs.shallow_clone())])
            };
            (at(&ys1, &xs1) - at(&ys0, &xs1)) - (at(&ys1, &xs0) - at(&ys0, &xs0))
        };
        let kh = (&ty1 - &ty0).to_kind(Kind::Float).view([n, oh, 1, 1]);
        let kw = (&tx1 - &tx0).to_kind(Kind::Float).view([n, 1, ow, 1]);
        (sums.to_kind(Kind::Float) / kh / kw).permute([0, 3, 1, 2])
    }
}

fn normalise(x: Tensor) -> Tensor {
    (x - 127.5) * 0.0078125
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    let t = t
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .view([-1]);
    Ok(Vec::<f32>::try_from(&t)?)
}

/// Squares each box about its centre, keeping its longer side (`rerec`).
fn square(b: &mut [f32; 4]) {
    let h = b[3] - b[1];
    let w = b[2] - b[0];
    let l = w.max(h);
    b[0] = b[0] + w * 0.5 - l * 0.5;
    b[1] = b[1] + h * 0.5 - l * 0.5;
    b[2] = b[0] + l;
    b[3] = b[1] + l;
}

/// Applies a regression with the box's inclusive size (`bbreg`).
fn refine(b: &mut [f32; 4], reg: &[f32; 4]) {
    let w = b[2] - b[0] + 1.0;
    let h = b[3] - b[1] + 1.0;
    *b = [
        b[0] + reg[0] * w,
        b[1] + reg[1] * h,
        b[2] + reg[2] * w,
        b[3] + reg[3] * h,
    ];
}

impl Mtcnn {
    /// The detector with the weights at `path` (safetensors, facenet-pytorch's names:
    /// `pnet.conv1.weight` ...), on `device`.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings; [`Error::Weights`] naming the file when it
    /// cannot be read, is not a regular file (a FIFO, a device: refused unread) or lacks a
    /// weight.
    pub fn load(path: &Path, config: MtcnnConfig, device: Device) -> Result<Self> {
        config.validate()?;
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let pnet = PNet::new(&(&root / "pnet"));
        let rnet = RNet::new(&(&root / "rnet"));
        let onet = ONet::new(&(&root / "onet"));
        // libtorch opens the file by its path: a FIFO there would block it, `/dev/zero`
        // fill the memory. Only a regular file is handed over.
        df_io::open_regular(path).map_err(|e| Error::Weights {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        vs.load(path).map_err(|e| Error::Weights {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        vs.freeze();
        Ok(Self {
            _vs: vs,
            pnet,
            rnet,
            onet,
            config,
            device,
        })
    }

    /// The settings.
    pub fn config(&self) -> &MtcnnConfig {
        &self.config
    }

    /// The faces in an RGB image, the largest first.
    ///
    /// # Errors
    /// [`Error::Torch`] when libtorch fails.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Face>> {
        let (w, h) = image.dimensions();
        let pixels = Tensor::from_slice(image.as_raw())
            .view([i64::from(h), i64::from(w), 3])
            .permute([2, 0, 1])
            .to_kind(Kind::Float);
        self.detect_tensor(&pixels)
    }

    /// The faces in an image given as a `[3, H, W]` tensor of RGB values in 0..=255, the
    /// largest first.
    ///
    /// # Errors
    /// [`Error::Config`] for a tensor of another shape; [`Error::Torch`].
    pub fn detect_tensor(&self, image: &Tensor) -> Result<Vec<Face>> {
        let size = image.size();
        if size.len() != 3 || size[0] != 3 {
            return Err(Error::Config {
                option: "image",
                reason: format!("a [3, H, W] RGB tensor, not {size:?}"),
            });
        }
        let img = image
            .to_device(self.device)
            .to_kind(Kind::Float)
            .unsqueeze(0);
        let (h, w) = (size[1], size[2]);
        let mut faces = tch::no_grad(|| -> Result<Vec<Face>> {
            let area = AreaSampler::new(&img)?;
            let candidates = self.stage_one(&area, h, w)?;
            let candidates = self.stage_two(&area, h, w, candidates)?;
            self.stage_three(&area, h, w, candidates)
        })?;
        // MTCNN.detect's order with select_largest: by area, descending.
        faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
        Ok(faces)
    }

    /// P-Net over the pyramid: candidates, suppressed per scale (IoU 0.5) and across
    /// scales (0.7), regressed and squared.
    fn stage_one(&self, area: &AreaSampler, h: i64, w: i64) -> Result<Vec<Candidate>> {
        let m = 12.0 / self.config.min_face_size;
        let mut minl = h.min(w) as f64 * m;
        let mut scale = m;
        let mut all = Vec::new();
        let threshold = self.config.thresholds[0] as f32;
        while minl >= 12.0 {
            let (hs, ws) = (
                (h as f64 * scale + 1.0) as i64,
                (w as f64 * scale + 1.0) as i64,
            );
            let level = area.regions(&[(0, h, 0, w)], hs, ws);
            let (reg, probs) = self.pnet.forward(&normalise(level));
            let (gh, gw) = (probs.size()[2], probs.size()[3]);
            let p = to_vec(&probs.select(1, 1))?;
            let r = to_vec(&reg)?;
            let plane = (gh * gw) as usize;
            let s = scale as f32;
            let mut found = Vec::new();
            for (i, &score) in p.iter().enumerate() {
                if score < threshold {
                    continue;
                }
                let (y, x) = ((i / gw as usize) as f32, (i % gw as usize) as f32);
                let q1 = |v: f32| ((2.0 * v + 1.0) / s).floor();
                let q2 = |v: f32| ((2.0 * v + 12.0) / s).floor();
                found.push(Candidate {
                    bbox: [q1(x), q1(y), q2(x), q2(y)],
                    score,
                    reg: [r[i], r[plane + i], r[2 * plane + i], r[3 * plane + i]],
                });
            }
            let boxes: Vec<[f32; 4]> = found.iter().map(|c| c.bbox).collect();
            let scores: Vec<f32> = found.iter().map(|c| c.score).collect();
            all.extend(nms_iou(&boxes, &scores, 0.5).into_iter().map(|i| found[i]));
            scale *= self.config.factor;
            minl *= self.config.factor;
        }
        let boxes: Vec<[f32; 4]> = all.iter().map(|c| c.bbox).collect();
        let scores: Vec<f32> = all.iter().map(|c| c.score).collect();
        Ok(nms_iou(&boxes, &scores, 0.7)
            .into_iter()
            .map(|i| {
                let c = all[i];
                let (rw, rh) = (c.bbox[2] - c.bbox[0], c.bbox[3] - c.bbox[1]);
                let mut bbox = [
                    c.bbox[0] + c.reg[0] * rw,
                    c.bbox[1] + c.reg[1] * rh,
                    c.bbox[2] + c.reg[2] * rw,
                    c.bbox[3] + c.reg[3] * rh,
                ];
                square(&mut bbox);
                Candidate { bbox, ..c }
            })
            .collect())
    }

    /// The candidates' pixels, cropped (clipped to the image, `pad`) and resampled to
    /// `side`×`side`, normalised; with the candidates that have a non-empty crop.
    fn crops(
        &self,
        area: &AreaSampler,
        h: i64,
        w: i64,
        candidates: Vec<Candidate>,
        side: i64,
    ) -> (Option<Tensor>, Vec<Candidate>) {
        let mut kept = Vec::new();
        let mut regions = Vec::new();
        for c in candidates {
            let t = |v: f32| v.trunc() as i64;
            let (x, y) = (t(c.bbox[0]).max(1), t(c.bbox[1]).max(1));
            let (ex, ey) = (t(c.bbox[2]).min(w), t(c.bbox[3]).min(h));
            if ey > y - 1 && ex > x - 1 {
                regions.push((y - 1, ey - y + 1, x - 1, ex - x + 1));
                kept.push(c);
            }
        }
        if regions.is_empty() {
            return (None, kept);
        }
        (Some(normalise(area.regions(&regions, side, side))), kept)
    }

    /// R-Net on 24×24 crops: threshold, suppression (IoU 0.7), regression, squaring.
    fn stage_two(
        &self,
        area: &AreaSampler,
        h: i64,
        w: i64,
        candidates: Vec<Candidate>,
    ) -> Result<Vec<Candidate>> {
        let (Some(data), candidates) = self.crops(area, h, w, candidates, 24) else {
            return Ok(Vec::new());
        };
        let mut regs = Vec::new();
        let mut probs = Vec::new();
        for chunk in data.split(BATCH, 0) {
            let (r, p) = self.rnet.forward(&chunk);
            regs.push(r);
            probs.push(p);
        }
        let reg = to_vec(&Tensor::cat(&regs, 0))?;
        let prob = to_vec(&Tensor::cat(&probs, 0))?;
        let threshold = self.config.thresholds[1] as f32;
        let passed: Vec<Candidate> = candidates
            .iter()
            .enumerate()
            .filter(|&(i, _)| prob[2 * i + 1] > threshold)
            .map(|(i, c)| Candidate {
                bbox: c.bbox,
                score: prob[2 * i + 1],
                reg: [reg[4 * i], reg[4 * i + 1], reg[4 * i + 2], reg[4 * i + 3]],
            })
            .collect();
        let boxes: Vec<[f32; 4]> = passed.iter().map(|c| c.bbox).collect();
        let scores: Vec<f32> = passed.iter().map(|c| c.score).collect();
        Ok(nms_iou(&boxes, &scores, 0.7)
            .into_iter()
            .map(|i| {
                let mut c = passed[i];
                refine(&mut c.bbox, &c.reg);
                square(&mut c.bbox);
                c
            })
            .collect())
    }

    /// O-Net on 48×48 crops: threshold, landmarks, regression, suppression ("Min" 0.7).
    fn stage_three(
        &self,
        area: &AreaSampler,
        h: i64,
        w: i64,
        candidates: Vec<Candidate>,
    ) -> Result<Vec<Face>> {
        let (Some(data), candidates) = self.crops(area, h, w, candidates, 48) else {
            return Ok(Vec::new());
        };
        let (mut regs, mut marks, mut probs) = (Vec::new(), Vec::new(), Vec::new());
        for chunk in data.split(BATCH, 0) {
            let (r, l, p) = self.onet.forward(&chunk);
            regs.push(r);
            marks.push(l);
            probs.push(p);
        }
        let reg = to_vec(&Tensor::cat(&regs, 0))?;
        let mark = to_vec(&Tensor::cat(&marks, 0))?;
        let prob = to_vec(&Tensor::cat(&probs, 0))?;
        let threshold = self.config.thresholds[2] as f32;
        let mut faces = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            let score = prob[2 * i + 1];
            if score <= threshold {
                continue;
            }
            let b = c.bbox;
            let (wi, hi) = (b[2] - b[0] + 1.0, b[3] - b[1] + 1.0);
            let mut landmarks = [[0.0f32; 2]; 5];
            for (k, point) in landmarks.iter_mut().enumerate() {
                *point = [
                    wi * mark[10 * i + k] + b[0] - 1.0,
                    hi * mark[10 * i + 5 + k] + b[1] - 1.0,
                ];
            }
            let mut bbox = b;
            refine(
                &mut bbox,
                &[reg[4 * i], reg[4 * i + 1], reg[4 * i + 2], reg[4 * i + 3]],
            );
            faces.push(Face {
                bbox,
                probability: score,
                landmarks,
            });
        }
        let boxes: Vec<[f32; 4]> = faces.iter().map(|f| f.bbox).collect();
        let scores: Vec<f32> = faces.iter().map(|f| f.probability).collect();
        Ok(nms_min(&boxes, &scores, 0.7)
            .into_iter()
            .map(|i| faces[i])
            .collect())
    }
}

/// facenet-pytorch runs R-Net and O-Net on at most this many crops at a time.
const BATCH: i64 = 512;

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's resampling is libtorch's adaptive average pooling, bit for bit, on
    /// whole-number pixels: whole images and crops, up and down, odd sizes.
    #[test]
    fn the_summed_area_table_resamples_as_adaptive_average_pooling() {
        let img = (Tensor::rand([1, 3, 97, 131], (Kind::Float, Device::Cpu)) * 255.0).floor();
        let area = AreaSampler::new(&img).expect("table");
        // (A 1×1 output, which MTCNN never asks for, is libtorch's `mean`: summed in
        // another order.)
        for (oh, ow) in [(58, 79), (12, 12), (97, 131), (150, 200), (3, 2)] {
            let want = img.adaptive_avg_pool2d([oh, ow]);
            let got = area.regions(&[(0, 97, 0, 131)], oh, ow);
            assert_eq!(got.size(), want.size());
            assert!(
                got.equal(&want),
                "{oh}x{ow}: {}",
                (&got - &want).abs().max()
            );
        }
        let regions = [(0, 40, 5, 33), (50, 47, 90, 41), (10, 3, 10, 2)];
        let got = area.regions(&regions, 24, 24);
        for (k, &(y, h, x, w)) in regions.iter().enumerate() {
            let want = img
                .narrow(2, y, h)
                .narrow(3, x, w)
                .adaptive_avg_pool2d([24, 24]);
            assert!(got.narrow(0, k as i64, 1).equal(&want), "crop {k}");
        }
    }
}
