//! Self-blended images (Shiohara and Yamasaki, CVPR 2022): a pseudo-fake made from one
//! real face by blending a slightly altered copy of it back into itself through a soft
//! face mask. A detector trained on real faces and these learns the blending boundary and
//! statistics mismatch that face swaps leave, without ever seeing a swap.
//!
//! The mask comes from MTCNN's five landmarks and the face box (what `df-face` gives and
//! `prepare_faces` records): a convex hull of the landmarks extended to the brow and chin,
//! or an ellipse about them; elastically deformed, blurred, scaled by a blend ratio, and
//! zero outside the face box grown by [`SbiConfig::grow`]. The source copy is altered in
//! colour (per-channel shift, contrast, saturation), sharpness (blur or unsharp mask),
//! scale and position. Everything is drawn from the RNG passed in, so a seed gives the
//! same pseudo-fake.

use image::{Rgb32FImage, RgbImage};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::augment::{gaussian_blur, to_rgb32f, to_rgb8, warp_affine, Affine, AffineParams};
use crate::enhance::{adjust_contrast, adjust_saturation};
use crate::error::{Error, Result};

/// A face as MTCNN reports it, in the image's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceGeometry {
    /// `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
    /// Left eye, right eye, nose, left and right mouth corners, `[x, y]` each.
    pub landmarks: [[f32; 2]; 5],
}

/// The mask's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskShape {
    /// Convex hull of the landmarks with brow and chin points.
    Hull,
    /// An ellipse about the landmarks, sized by the box.
    Ellipse,
    /// Either, drawn with equal probability.
    Either,
}

/// Settings of [`self_blend`]. The defaults follow the paper, adapted to five landmarks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SbiConfig {
    /// The mask's shape.
    pub shape: MaskShape,
    /// The mask is zero outside the face box grown by this factor about its centre.
    pub grow: f32,
    /// Hull or ellipse scale about the landmarks' centre, drawn in this range.
    pub mask_scale: [f32; 2],
    /// Amplitude of the elastic deformation, as a fraction of the box's side.
    pub elastic: f32,
    /// Blur of the mask edge, standard deviation as a fraction of the box's side, drawn.
    pub edge_blur: [f32; 2],
    /// Blend ratios, one drawn (1: the altered copy replaces the face inside the mask).
    pub blend: [f32; 2],
    /// Per-channel shift of the source, in 0–255 units, drawn in `[-v, v]` per channel.
    pub color_shift: f32,
    /// Contrast and saturation factors of the source, drawn in this range.
    pub color_factor: [f32; 2],
    /// Source scale, drawn in this range (about the face's centre).
    pub scale: [f32; 2],
    /// Source shift, as a fraction of the box's side, drawn in `[-v, v]` per axis.
    pub shift: f32,
}

impl Default for SbiConfig {
    fn default() -> Self {
        SbiConfig {
            shape: MaskShape::Either,
            grow: 1.3,
            mask_scale: [1.0, 1.2],
            elastic: 0.04,
            edge_blur: [0.02, 0.06],
            blend: [0.5, 1.0],
            color_shift: 20.0,
            color_factor: [0.8, 1.2],
            scale: [0.95, 1.05],
            shift: 0.03,
        }
    }
}

impl SbiConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        let range = |name: &'static str, r: [f32; 2], lo: f32, hi: f32| {
            if r.iter().all(|v| v.is_finite() && *v >= lo && *v <= hi) && r[0] <= r[1] {
                Ok(())
            } else {
                Err(Error::config(
                    name,
                    format!("must be [a, b] with {lo} <= a <= b <= {hi}, got {r:?}"),
                ))
            }
        };
        let one = |name: &'static str, v: f32, lo: f32, hi: f32| range(name, [v, v], lo, hi);
        one("sbi.grow", self.grow, 1.0, 3.0)?;
        range("sbi.mask_scale", self.mask_scale, 0.5, 2.0)?;
        one("sbi.elastic", self.elastic, 0.0, 0.2)?;
        range("sbi.edge_blur", self.edge_blur, 0.0, 0.2)?;
        range("sbi.blend", self.blend, 0.0, 1.0)?;
        one("sbi.color_shift", self.color_shift, 0.0, 128.0)?;
        range("sbi.color_factor", self.color_factor, 0.0, 3.0)?;
        range("sbi.scale", self.scale, 0.5, 2.0)?;
        one("sbi.shift", self.shift, 0.0, 0.5)
    }
}

/// A pseudo-fake and what made it.
#[derive(Debug, Clone)]
pub struct SelfBlended {
    /// The pseudo-fake: `round(mask · source + (1 − mask) · real)`, per pixel.
    pub image: RgbImage,
    /// The blend weight of each pixel, in [0, 1], row-major, the image's size.
    pub mask: Vec<f32>,
    /// The altered copy blended in (0–255 values).
    pub source: Rgb32FImage,
    /// The grown face box `[x1, y1, x2, y2]` outside which the mask is zero.
    pub region: [f32; 4],
}

fn span<R: Rng + ?Sized>(rng: &mut R, r: [f32; 2]) -> f32 {
    if r[0] < r[1] {
        rng.random_range(r[0]..=r[1])
    } else {
        r[0]
    }
}

/// Andrew's monotone chain: the convex hull, counter-clockwise.
fn convex_hull(mut points: Vec<[f32; 2]>) -> Vec<[f32; 2]> {
    points.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let cross = |o: [f32; 2], a: [f32; 2], b: [f32; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<[f32; 2]> = Vec::new();
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f32; 2]>> = if pass == 0 {
            Box::new(points.iter())
        } else {
            Box::new(points.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

fn inside_convex(hull: &[[f32; 2]], p: [f32; 2]) -> bool {
    hull.len() >= 3
        && (0..hull.len()).all(|i| {
            let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
            (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0.0
        })
}

/// The hard mask: whether a point is inside the face region.
enum Region {
    Hull(Vec<[f32; 2]>),
    Ellipse { centre: [f32; 2], axes: [f32; 2] },
}

impl Region {
    fn contains(&self, p: [f32; 2]) -> bool {
        match self {
            Region::Hull(hull) => inside_convex(hull, p),
            Region::Ellipse { centre, axes } => {
                let (dx, dy) = ((p[0] - centre[0]) / axes[0], (p[1] - centre[1]) / axes[1]);
                dx * dx + dy * dy <= 1.0
            }
        }
    }
}

/// A pseudo-fake of `real` (the face `face`), drawn from `rng` (see the module's
/// documentation).
///
/// # Errors
/// [`Error::InvalidConfig`] for a setting out of range or a face box that is empty or
/// outside the image.
pub fn self_blend<R: Rng + ?Sized>(
    real: &RgbImage,
    face: &FaceGeometry,
    config: &SbiConfig,
    rng: &mut R,
) -> Result<SelfBlended> {
    config.validate()?;
    let (w, h) = real.dimensions();
    let [x1, y1, x2, y2] = face.bbox;
    let (bw, bh) = (x2 - x1, y2 - y1);
    let finite = face
        .bbox
        .iter()
        .chain(face.landmarks.iter().flatten())
        .all(|v| v.is_finite());
    if !finite || bw < 4.0 || bh < 4.0 || x2 <= 0.0 || y2 <= 0.0 || x1 >= w as f32 || y1 >= h as f32
    {
        return Err(Error::config(
            "sbi.face",
            format!(
                "face box {:?} is empty or outside the {w}×{h} image",
                face.bbox
            ),
        ));
    }
    let side = bw.max(bh);
    let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    let g = config.grow / 2.0;
    let region = [cx - g * bw, cy - g * bh, cx + g * bw, cy + g * bh];

    // The hard region.
    let lm = face.landmarks;
    let centre = [
        lm.iter().map(|p| p[0]).sum::<f32>() / 5.0,
        lm.iter().map(|p| p[1]).sum::<f32>() / 5.0,
    ];
    let scale = span(rng, config.mask_scale);
    let hull = match config.shape {
        MaskShape::Hull => true,
        MaskShape::Ellipse => false,
        MaskShape::Either => rng.random::<bool>(),
    };
    let hard = if hull {
        let eyes = [(lm[0][0] + lm[1][0]) / 2.0, (lm[0][1] + lm[1][1]) / 2.0];
        let mouth = [(lm[3][0] + lm[4][0]) / 2.0, (lm[3][1] + lm[4][1]) / 2.0];
        let eye_gap = (lm[1][0] - lm[0][0]).abs().max(bw * 0.2);
        let mut points = lm.to_vec();
        // Brow above the eyes, chin below the mouth, cheeks beside the eyes.
        points.push([eyes[0], eyes[1] - 0.25 * bh]);
        points.push([mouth[0], mouth[1] + 0.2 * bh]);
        points.push([lm[0][0] - 0.3 * eye_gap, lm[0][1]]);
        points.push([lm[1][0] + 0.3 * eye_gap, lm[1][1]]);
        let points = points
            .into_iter()
            .map(|p| {
                [
                    centre[0] + scale * (p[0] - centre[0]),
                    centre[1] + scale * (p[1] - centre[1]),
                ]
            })
            .collect();
        Region::Hull(convex_hull(points))
    } else {
        Region::Ellipse {
            centre,
            axes: [0.4 * bw * scale, 0.5 * bh * scale],
        }
    };

    // Elastic deformation: a 4×4 grid of displacements over the region, bilinear.
    let amp = config.elastic * side;
    let grid: Vec<[f32; 2]> = (0..16)
        .map(|_| {
            [
                rng.random_range(-1.0..=1.0) * amp,
                rng.random_range(-1.0..=1.0) * amp,
            ]
        })
        .collect();
    let displacement = |x: f32, y: f32| -> [f32; 2] {
        let u = ((x - region[0]) / (region[2] - region[0])).clamp(0.0, 1.0) * 3.0;
        let v = ((y - region[1]) / (region[3] - region[1])).clamp(0.0, 1.0) * 3.0;
        let (i, j) = ((u as usize).min(2), (v as usize).min(2));
        let (fu, fv) = (u - i as f32, v - j as f32);
        let at = |a: usize, b: usize| grid[b * 4 + a];
        let mut out = [0.0; 2];
        for (k, o) in out.iter_mut().enumerate() {
            let top = at(i, j)[k] * (1.0 - fu) + at(i + 1, j)[k] * fu;
            let bottom = at(i, j + 1)[k] * (1.0 - fu) + at(i + 1, j + 1)[k] * fu;
            *o = top * (1.0 - fv) + bottom * fv;
        }
        out
    };
    let inside_region =
        |x: f32, y: f32| x >= region[0] && x < region[2] && y >= region[1] && y < region[3];
    let mut mask_img = Rgb32FImage::new(w, h);
    for (x, y, p) in mask_img.enumerate_pixels_mut() {
        let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
        if inside_region(px, py) {
            let d = displacement(px, py);
            if hard.contains([px + d[0], py + d[1]]) {
                *p = image::Rgb([1.0, 1.0, 1.0]);
            }
        }
    }
    gaussian_blur(&mut mask_img, span(rng, config.edge_blur) * side);
    let ratio = span(rng, config.blend);
    let mask: Vec<f32> = mask_img
        .enumerate_pixels()
        .map(|(x, y, p)| {
            if inside_region(x as f32 + 0.5, y as f32 + 0.5) {
                (p[0] * ratio).clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();

    // The altered copy.
    let mut source = to_rgb32f(real);
    let shift: [f32; 3] =
        std::array::from_fn(|_| rng.random_range(-1.0..=1.0) * config.color_shift);
    for p in source.pixels_mut() {
        for (v, s) in p.0.iter_mut().zip(shift) {
            *v = (*v + s).clamp(0.0, 255.0);
        }
    }
    adjust_contrast(&mut source, span(rng, config.color_factor));
    adjust_saturation(&mut source, span(rng, config.color_factor));
    let sigma = rng.random_range(0.5..=1.5f32);
    if rng.random::<bool>() {
        gaussian_blur(&mut source, sigma);
    } else {
        // Unsharp mask: the image plus its difference from a blurred copy.
        let mut blurred = source.clone();
        gaussian_blur(&mut blurred, sigma);
        for (v, b) in source.iter_mut().zip(blurred.iter()) {
            *v = (*v + (*v - b)).clamp(0.0, 255.0);
        }
    }
    let zoom = span(rng, config.scale);
    let params = AffineParams {
        rotation_deg: 0.0,
        shift_x: rng.random_range(-1.0..=1.0) * config.shift * side,
        shift_y: rng.random_range(-1.0..=1.0) * config.shift * side,
        shear_deg: 0.0,
        zoom_x: zoom,
        zoom_y: zoom,
    };
    let source = warp_affine(&source, &Affine::from_params(&params, w, h));

    let target = to_rgb32f(real);
    let mut blended = Rgb32FImage::new(w, h);
    for (i, ((o, s), t)) in blended
        .pixels_mut()
        .zip(source.pixels())
        .zip(target.pixels())
        .enumerate()
    {
        let m = mask[i];
        for c in 0..3 {
            o[c] = m * s[c] + (1.0 - m) * t[c];
        }
    }
    Ok(SelfBlended {
        image: to_rgb8(&blended),
        mask,
        source,
        region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hull_is_convex_and_contains_its_points() {
        let hull = convex_hull(vec![
            [0.0, 0.0],
            [4.0, 0.0],
            [4.0, 4.0],
            [0.0, 4.0],
            [2.0, 2.0],
            [1.0, 3.0],
        ]);
        assert_eq!(hull.len(), 4);
        assert!(inside_convex(&hull, [2.0, 2.0]));
        assert!(inside_convex(&hull, [0.5, 3.5]));
        assert!(!inside_convex(&hull, [4.5, 2.0]));
        assert!(!inside_convex(&hull, [-0.1, 2.0]));
    }
}
