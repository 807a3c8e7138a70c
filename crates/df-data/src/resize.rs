//! Resizing 8-bit RGB images, bit-exact with Pillow's `Image.resize`.
//!
//! Keras' `load_img` (and so `flow_from_directory`) resizes with Pillow:
//! `img.resize((width, height), resample)`, `nearest` by default. Reproducing Pillow's
//! arithmetic (its affine nearest-neighbour scaler, and its two-pass separable
//! convolution with 22-bit fixed-point coefficients for `BILINEAR` and `BOX`) gives the
//! same pixels as the Keras pipeline, checked against Pillow by the crate's tests.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// A resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeFilter {
    /// Nearest neighbour: Pillow `NEAREST`, Keras' `flow_from_directory` default. The
    /// source pixel of output column `x` is `floor((x + 0.5) * in_w / out_w)`.
    #[default]
    Nearest,
    /// Pillow `BILINEAR`: a triangle filter, widened by the scale factor when
    /// downscaling (antialiased), as torchvision's `Resize` on PIL images does.
    Bilinear,
    /// Area averaging: Pillow `BOX` (each output pixel is the mean of the input area
    /// it covers; exact for integer ratios, like TensorFlow's `area`).
    Area,
}

/// Resizes `img` to `width`×`height` with `filter`, giving the same pixels as Pillow's
/// `Image.resize((width, height), filter)` on an RGB image.
///
/// An image already at the target size is returned unchanged (a copy), as Pillow does.
/// A target with a zero side gives an empty image.
pub fn resize_rgb(img: &RgbImage, width: u32, height: u32, filter: ResizeFilter) -> RgbImage {
    let (in_w, in_h) = img.dimensions();
    if (in_w, in_h) == (width, height) {
        return img.clone();
    }
    if width == 0 || height == 0 || in_w == 0 || in_h == 0 {
        return RgbImage::new(width, height);
    }
    match filter {
        ResizeFilter::Nearest => resize_nearest(img, width, height),
        ResizeFilter::Bilinear => resample(img, width, height, &BILINEAR),
        ResizeFilter::Area => resample(img, width, height, &BOX),
    }
}

/// Pillow's `ImagingScaleAffine`: source coordinates advance by `in/out` per output
/// pixel from `0.5 * in/out`, accumulated in `f64` (the accumulation, not a product,
/// is what Pillow computes, so the rounding matches).
fn resize_nearest(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = img.dimensions();
    let src_index = |out: u32, inn: u32| -> Vec<usize> {
        let step = f64::from(inn) / f64::from(out);
        let mut pos = step * 0.5;
        let mut table = Vec::with_capacity(out as usize);
        for _ in 0..out {
            // `pos` is never negative here; Pillow's COORD truncates.
            let i = (pos as usize).min(inn as usize - 1);
            table.push(i);
            pos += step;
        }
        table
    };
    let xs = src_index(width, in_w);
    let ys = src_index(height, in_h);
    let src = img.as_raw();
    let row_len = in_w as usize * 3;
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for &y in &ys {
        let row = &src[y * row_len..(y + 1) * row_len];
        for &x in &xs {
            out.extend_from_slice(&row[x * 3..x * 3 + 3]);
        }
    }
    rgb_image(width, height, out)
}

/// `buf` as a `width × height` RGB image.
///
/// Invariant: every caller fills `buf` with exactly `width · height · 3` bytes (one RGB
/// triple per output pixel, row after row: the loops run over the output rows and
/// columns), which is all `from_raw` checks. A failure here is a bug in this module,
/// never a property of the input image, so it is not an error the caller could handle.
fn rgb_image(width: u32, height: u32, buf: Vec<u8>) -> RgbImage {
    #[allow(clippy::expect_used)]
    RgbImage::from_raw(width, height, buf)
        .expect("resize filled its buffer with width * height * 3 bytes")
}

struct Filter {
    support: f64,
    eval: fn(f64) -> f64,
}

const BILINEAR: Filter = Filter {
    support: 1.0,
    eval: |x| {
        let x = x.abs();
        if x < 1.0 {
            1.0 - x
        } else {
            0.0
        }
    },
};

const BOX: Filter = Filter {
    support: 0.5,
    eval: |x| if x > -0.5 && x <= 0.5 { 1.0 } else { 0.0 },
};

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point coefficients of one axis: for each output index, the first input index
/// and the weights (`ksize` per output, the unused ones zero).
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`.
fn coeffs(in_size: u32, out_size: u32, filter: &Filter) -> Coeffs {
    let scale = f64::from(in_size) / f64::from(out_size);
    let filterscale = scale.max(1.0);
    let support = filter.support * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size as usize);
    let mut weights = vec![0i32; out_size as usize * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size as usize {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) truncates toward zero; negatives are clamped to 0 anyway.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size)) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = (filter.eval)((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        let row = &mut weights[xx * ksize..(xx + 1) * ksize];
        for x in 0..n {
            let w = if ww != 0.0 { k[x] / ww } else { k[x] };
            let f = w * f64::from(1u32 << PRECISION_BITS);
            row[x] = if w < 0.0 {
                (-0.5 + f) as i32
            } else {
                (0.5 + f) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Coeffs {
        ksize,
        bounds,
        weights,
    }
}

#[inline]
fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Pillow's `ImagingResample` for 8-bit RGB: a horizontal pass into an 8-bit
/// intermediate image (only the rows the vertical pass reads), then a vertical pass.
fn resample(img: &RgbImage, width: u32, height: u32, filter: &Filter) -> RgbImage {
    let (in_w, in_h) = img.dimensions();
    let src = img.as_raw();
    let need_h = width != in_w;
    let need_v = height != in_h;
    let cv = coeffs(in_h, height, filter);
    let half = 1i32 << (PRECISION_BITS - 1);

    // Horizontal pass over the rows the vertical pass uses.
    let (first_row, last_row) = if need_v {
        let first = cv.bounds[0].0;
        let (lmin, ln) = cv.bounds[height as usize - 1];
        (first, lmin + ln)
    } else {
        (0, in_h as usize)
    };
    let (tmp, tmp_w) = if need_h {
        let ch = coeffs(in_w, width, filter);
        let rows = last_row - first_row;
        let mut tmp = vec![0u8; rows * width as usize * 3];
        let row_len = in_w as usize * 3;
        let rows_in = &src[first_row * row_len..last_row * row_len];
        match aligned(&ch, in_w as usize) {
            // Fixed tap counts, unrolled: the common up- and downscales.
            Some(a) if a.ksize == 3 => {
                horizontal_fixed::<3>(rows_in, row_len, &a, &mut tmp, width as usize)
            }
            Some(a) if a.ksize == 5 => {
                horizontal_fixed::<5>(rows_in, row_len, &a, &mut tmp, width as usize)
            }
            Some(a) if a.ksize == 7 => {
                horizontal_fixed::<7>(rows_in, row_len, &a, &mut tmp, width as usize)
            }
            _ => {
                for (in_row, out_row) in rows_in
                    .chunks_exact(row_len)
                    .zip(tmp.chunks_exact_mut(width as usize * 3))
                {
                    for (xx, px) in out_row.chunks_exact_mut(3).enumerate() {
                        let (xmin, n) = ch.bounds[xx];
                        let k = &ch.weights[xx * ch.ksize..xx * ch.ksize + n];
                        let (mut s0, mut s1, mut s2) = (half, half, half);
                        let seg = &in_row[xmin * 3..(xmin + n) * 3];
                        for (w, p) in k.iter().zip(seg.chunks_exact(3)) {
                            s0 += i32::from(p[0]) * w;
                            s1 += i32::from(p[1]) * w;
                            s2 += i32::from(p[2]) * w;
                        }
                        px[0] = clip8(s0);
                        px[1] = clip8(s1);
                        px[2] = clip8(s2);
                    }
                }
            }
        }
        (tmp, width as usize)
    } else {
        (
            src[first_row * in_w as usize * 3..last_row * in_w as usize * 3].to_vec(),
            in_w as usize,
        )
    };
    if !need_v {
        return rgb_image(width, height, tmp);
    }

    // Vertical pass.
    let row_len = tmp_w * 3;
    let mut out = vec![0u8; height as usize * row_len];
    let mut acc = vec![0i32; row_len];
    for (yy, out_row) in out.chunks_exact_mut(row_len).enumerate() {
        let (ymin, n) = cv.bounds[yy];
        let k = &cv.weights[yy * cv.ksize..yy * cv.ksize + n];
        acc.iter_mut().for_each(|a| *a = half);
        for (j, &w) in k.iter().enumerate() {
            let y = ymin - first_row + j;
            let in_row = &tmp[y * row_len..(y + 1) * row_len];
            for (a, &p) in acc.iter_mut().zip(in_row) {
                *a += i32::from(p) * w;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    rgb_image(width, height, out)
}

/// Coefficients with exactly `ksize` taps per output, each window moved left where it
/// would pass the right edge (the extra taps get weight 0, so sums are unchanged).
struct Aligned {
    ksize: usize,
    starts: Vec<usize>,
    weights: Vec<i32>,
}

fn aligned(c: &Coeffs, in_size: usize) -> Option<Aligned> {
    if c.ksize > in_size {
        return None;
    }
    let mut starts = Vec::with_capacity(c.bounds.len());
    let mut weights = vec![0i32; c.bounds.len() * c.ksize];
    for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
        let start = xmin.min(in_size - c.ksize);
        let shift = xmin - start;
        let src = &c.weights[xx * c.ksize..xx * c.ksize + n];
        weights[xx * c.ksize + shift..xx * c.ksize + shift + n].copy_from_slice(src);
        starts.push(start);
    }
    Some(Aligned {
        ksize: c.ksize,
        starts,
        weights,
    })
}

fn horizontal_fixed<const K: usize>(
    rows_in: &[u8],
    row_len: usize,
    a: &Aligned,
    tmp: &mut [u8],
    width: usize,
) {
    let half = 1i32 << (PRECISION_BITS - 1);
    let weights: Vec<[i32; K]> = a
        .weights
        .chunks_exact(K)
        .map(|w| std::array::from_fn(|t| w[t]))
        .collect();
    for (in_row, out_row) in rows_in
        .chunks_exact(row_len)
        .zip(tmp.chunks_exact_mut(width * 3))
    {
        for ((px, &start), k) in out_row.chunks_exact_mut(3).zip(&a.starts).zip(&weights) {
            let seg = &in_row[start * 3..start * 3 + 3 * K];
            let (mut s0, mut s1, mut s2) = (half, half, half);
            for t in 0..K {
                s0 += i32::from(seg[3 * t]) * k[t];
                s1 += i32::from(seg[3 * t + 1]) * k[t];
                s2 += i32::from(seg[3 * t + 2]) * k[t];
            }
            px[0] = clip8(s0);
            px[1] = clip8(s1);
            px[2] = clip8(s2);
        }
    }
}
