//! `?explain=1`: Grad-CAM maps of a picture, as PNG overlays (base64) per face or image.
//!
//! The one place that calls df-detect's Grad-CAM (`Detector::explain_image`, whose `maps`
//! are `CamMap`s in the picture's pixels, laid over it by `overlay_png`). It runs on the
//! inference thread, alone (it needs gradients). Should it fail, the verdict is still
//! given, with `explain_error`.

use df_detect::Detector;
use image::RgbImage;
use serde::Serialize;

/// One map of an explained picture, as the response carries it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MapOut {
    /// The map's width and height (the picture's pixels).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// The strongest evidence, `[x, y]` in the picture's pixels.
    pub peak: [u32; 2],
    /// The layer the map was taken at.
    pub layer: String,
    /// The map over the picture (or the face's crop), as a base64 PNG.
    pub png: String,
}

/// The Grad-CAM maps of `image` (one per face, in the verdict's order, or one for the
/// whole picture), each laid over the picture as a PNG.
///
/// # Errors
/// A message saying why there are none (the model has no Grad-CAM layer ...).
pub(crate) fn explain(detector: &Detector, image: &RgbImage) -> Result<Vec<MapOut>, String> {
    use base64::Engine as _;
    let explained = detector
        .explain_image(image)
        .map_err(|e| format!("Grad-CAM: {e}"))?;
    explained
        .maps
        .iter()
        .map(|m| {
            let png = m
                .overlay_png(image)
                .map_err(|e| format!("Grad-CAM overlay: {e}"))?;
            Ok(MapOut {
                width: m.width,
                height: m.height,
                peak: m.peak,
                layer: m.layer.clone(),
                png: base64::engine::general_purpose::STANDARD.encode(png),
            })
        })
        .collect()
}
