//! What a file's header says about how it was made: format, size, JPEG quantisation
//! tables (and the quality they were scaled to), chroma subsampling, progressive coding,
//! EXIF and its software tag, PNG bit depth. Read from the bytes alone, without decoding
//! the pixels.

use serde::Serialize;

/// The container format, from the file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JPEG (JFIF or EXIF).
    Jpeg,
    /// PNG.
    Png,
    /// Windows bitmap.
    Bmp,
    /// WebP.
    Webp,
    /// Anything else the decoder may still read (GIF, TIFF, …).
    Other,
}

impl Format {
    /// The format's name as the report writes it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Bmp => "BMP",
            Format::Webp => "WebP",
            Format::Other => "other",
        }
    }

    /// The format of `bytes`, from its signature.
    pub fn of(bytes: &[u8]) -> Format {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Format::Jpeg
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Format::Png
        } else if bytes.starts_with(b"BM") {
            Format::Bmp
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Format::Webp
        } else {
            Format::Other
        }
    }
}

/// What a JPEG's header says about its encoding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JpegFacts {
    /// The IJG quality (1–100) whose scaled standard tables (libjpeg's
    /// `jpeg_set_quality`, which Pillow, OpenCV and most cameras' software use) come
    /// closest to this file's tables.
    pub quality: u8,
    /// Whether the tables are exactly IJG's at that quality (false: an encoder with
    /// tables of its own, and `quality` is only the nearest).
    pub standard_tables: bool,
    /// The mean step of the luma quantisation table (larger: coarser).
    pub luma_mean_step: f64,
    /// Chroma subsampling: "4:4:4", "4:2:2", "4:2:0", "4:1:1", "4:4:0", "gray", or the
    /// sampling factors where none of those.
    pub subsampling: String,
    /// Progressive (rather than baseline or extended sequential) coding.
    pub progressive: bool,
}

/// Everything the audit reads from one file's bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileFacts {
    /// The container format.
    pub format: Format,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The file's size in bytes.
    pub bytes: u64,
    /// JPEG encoding facts, for JPEG files.
    pub jpeg: Option<JpegFacts>,
    /// Bits per sample, for PNG files.
    pub png_bit_depth: Option<u8>,
    /// Whether the file carries EXIF metadata.
    pub exif: bool,
    /// The EXIF (or PNG text) "Software" tag, control characters removed, at most 64
    /// characters.
    pub software: Option<String>,
}

/// Why a file's header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError(pub String);

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(what: &str) -> HeaderError {
    HeaderError(what.to_string())
}

/// The facts of a file whose whole content is `bytes`.
pub fn read_facts(bytes: &[u8]) -> Result<FileFacts, HeaderError> {
    let format = Format::of(bytes);
    let mut facts = FileFacts {
        format,
        width: 0,
        height: 0,
        bytes: bytes.len() as u64,
        jpeg: None,
        png_bit_depth: None,
        exif: false,
        software: None,
    };
    match format {
        Format::Jpeg => read_jpeg(bytes, &mut facts)?,
        Format::Png => read_png(bytes, &mut facts)?,
        _ => {
            let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
                .with_guessed_format()
                .map_err(|e| HeaderError(e.to_string()))?;
            let (w, h) = reader
                .into_dimensions()
                .map_err(|e| HeaderError(e.to_string()))?;
            facts.width = w;
            facts.height = h;
        }
    }
    if facts.width == 0 || facts.height == 0 {
        return Err(bad("the header gives no image size"));
    }
    Ok(facts)
}

/// The JPEG zig-zag order: entry `k` of a DQT segment is the coefficient at natural
/// (row-major) position `ZIGZAG[k]`.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// The JPEG standard's example luminance table (ITU-T T.81 Annex K, table K.1), in
/// natural order: the base that libjpeg scales by quality.
const STD_LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// The standard's example chrominance table (table K.2), natural order.
const STD_CHROMA: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// libjpeg's `jpeg_quality_scaling` and `jpeg_add_quant_table` with `force_baseline`:
/// the table IJG quality `quality` makes from `base`.
pub fn ijg_table(base: &[u16; 64], quality: u8) -> [u16; 64] {
    let q = i64::from(quality.clamp(1, 100));
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    let mut out = [0u16; 64];
    for (o, &b) in out.iter_mut().zip(base) {
        let v = (i64::from(b) * scale + 50) / 100;
        *o = v.clamp(1, 255) as u16;
    }
    out
}

/// The IJG quality whose tables are nearest `luma` (and `chroma` where given), both in
/// natural order, and whether they match exactly.
pub fn estimate_quality(luma: &[u16; 64], chroma: Option<&[u16; 64]>) -> (u8, bool) {
    let mut best = (0u8, u64::MAX);
    for q in 1..=100u8 {
        let mut diff: u64 = ijg_table(&STD_LUMA, q)
            .iter()
            .zip(luma)
            .map(|(&a, &b)| u64::from(a.abs_diff(b)))
            .sum();
        if let Some(chroma) = chroma {
            diff += ijg_table(&STD_CHROMA, q)
                .iter()
                .zip(chroma)
                .map(|(&a, &b)| u64::from(a.abs_diff(b)))
                .sum::<u64>();
        }
        // Ties (tables clamped at 1 near quality 100) go to the higher quality.
        if diff <= best.1 {
            best = (q, diff);
        }
    }
    (best.0, best.1 == 0)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

struct Frame {
    progressive: bool,
    width: u32,
    height: u32,
    /// (horizontal, vertical sampling factor, quantisation table) per component.
    components: Vec<(u8, u8, u8)>,
}

fn read_jpeg(bytes: &[u8], facts: &mut FileFacts) -> Result<(), HeaderError> {
    let mut tables: [Option<[u16; 64]>; 4] = [None; 4];
    let mut frame: Option<Frame> = None;
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if bytes.get(at) != Some(&0xFF) {
            return Err(bad("a JPEG segment does not start with a marker"));
        }
        let marker = *bytes
            .get(at + 1)
            .ok_or_else(|| bad("the JPEG header is truncated"))?;
        at += 2;
        if marker == 0xD8 || marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue;
        }
        if marker == 0xD9 || marker == 0xDA {
            // End of image, or the first scan: every table a decoder needs for it has
            // been defined.
            break;
        }
        let len = usize::from(be16(bytes, at).ok_or_else(|| bad("the JPEG header is truncated"))?);
        if len < 2 || at + len > bytes.len() {
            return Err(bad("a JPEG segment runs past the end of the file"));
        }
        let body = &bytes[at + 2..at + len];
        match marker {
            0xDB => read_dqt(body, &mut tables)?,
            0xC0..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => {
                frame = Some(read_sof(marker, body)?);
            }
            0xE1 if body.starts_with(b"Exif\0\0") => {
                facts.exif = true;
                facts.software = exif_software(&body[6..]);
            }
            _ => {}
        }
        at += len;
    }
    let frame = frame.ok_or_else(|| bad("the JPEG has no frame header (SOF)"))?;
    facts.width = frame.width;
    facts.height = frame.height;
    let table = |c: usize| -> Option<[u16; 64]> {
        let (_, _, t) = *frame.components.get(c)?;
        tables.get(usize::from(t)).copied().flatten()
    };
    let luma = table(0).ok_or_else(|| bad("the JPEG's luma quantisation table is missing"))?;
    let chroma = table(1);
    let (quality, standard_tables) = estimate_quality(&luma, chroma.as_ref());
    facts.jpeg = Some(JpegFacts {
        quality,
        standard_tables,
        luma_mean_step: luma.iter().map(|&v| f64::from(v)).sum::<f64>() / 64.0,
        subsampling: subsampling(&frame.components),
        progressive: frame.progressive,
    });
    Ok(())
}

fn read_dqt(mut body: &[u8], tables: &mut [Option<[u16; 64]>; 4]) -> Result<(), HeaderError> {
    while let Some((&pq_tq, rest)) = body.split_first() {
        let (precision, id) = (pq_tq >> 4, usize::from(pq_tq & 0x0F));
        let size = if precision == 0 { 64 } else { 128 };
        if rest.len() < size || id > 3 {
            return Err(bad("a JPEG quantisation table is malformed"));
        }
        let mut natural = [0u16; 64];
        for (k, &pos) in ZIGZAG.iter().enumerate() {
            natural[pos] = if precision == 0 {
                u16::from(rest[k])
            } else {
                u16::from_be_bytes([rest[2 * k], rest[2 * k + 1]])
            };
        }
        tables[id] = Some(natural);
        body = &rest[size..];
    }
    Ok(())
}

fn read_sof(marker: u8, body: &[u8]) -> Result<Frame, HeaderError> {
    let truncated = || bad("the JPEG frame header is truncated");
    let height = u32::from(be16(body, 1).ok_or_else(truncated)?);
    let width = u32::from(be16(body, 3).ok_or_else(truncated)?);
    let count = usize::from(*body.get(5).ok_or_else(truncated)?);
    let mut components = Vec::with_capacity(count);
    for c in 0..count {
        let at = 6 + 3 * c;
        let sampling = *body.get(at + 1).ok_or_else(truncated)?;
        let table = *body.get(at + 2).ok_or_else(truncated)?;
        components.push((sampling >> 4, sampling & 0x0F, table));
    }
    Ok(Frame {
        progressive: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE),
        width,
        height,
        components,
    })
}

fn subsampling(components: &[(u8, u8, u8)]) -> String {
    if components.len() == 1 {
        return "gray".into();
    }
    let (h0, v0, _) = components[0];
    let (h1, v1, _) = components.get(1).copied().unwrap_or((h0, v0, 0));
    if h1 == 0 || v1 == 0 || h0 % h1 != 0 || v0 % v1 != 0 {
        return format!("{h0}x{v0},{h1}x{v1}");
    }
    match (h0 / h1, v0 / v1) {
        (1, 1) => "4:4:4".into(),
        (2, 1) => "4:2:2".into(),
        (2, 2) => "4:2:0".into(),
        (4, 1) => "4:1:1".into(),
        (1, 2) => "4:4:0".into(),
        _ => format!("{h0}x{v0},{h1}x{v1}"),
    }
}

fn clean_text(raw: &[u8]) -> Option<String> {
    let text: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The Software tag (0x0131) of the first IFD of a TIFF structure (an EXIF block after
/// its `Exif\0\0` prefix).
fn exif_software(tiff: &[u8]) -> Option<String> {
    let little = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = [*tiff.get(at)?, *tiff.get(at + 1)?];
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = [
            *tiff.get(at)?,
            *tiff.get(at + 1)?,
            *tiff.get(at + 2)?,
            *tiff.get(at + 3)?,
        ];
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let entries = usize::from(u16_at(ifd)?);
    for e in 0..entries.min(512) {
        let at = ifd + 2 + 12 * e;
        if u16_at(at)? != 0x0131 || u16_at(at + 2)? != 2 {
            continue;
        }
        let count = usize::try_from(u32_at(at + 4)?).ok()?;
        let start = if count <= 4 {
            at + 8
        } else {
            usize::try_from(u32_at(at + 8)?).ok()?
        };
        let raw = tiff.get(start..start.checked_add(count)?)?;
        let raw = raw.split(|&b| b == 0).next().unwrap_or(raw);
        return clean_text(raw);
    }
    None
}

fn read_png(bytes: &[u8], facts: &mut FileFacts) -> Result<(), HeaderError> {
    let mut at = 8;
    let mut seen_header = false;
    while at + 8 <= bytes.len() {
        let len = usize::try_from(be32(bytes, at).unwrap_or(0)).unwrap_or(usize::MAX);
        let kind = &bytes[at + 4..at + 8];
        let Some(body) = at
            .checked_add(8)
            .and_then(|s| bytes.get(s..s.checked_add(len)?))
        else {
            break;
        };
        match kind {
            b"IHDR" if body.len() >= 13 => {
                facts.width = be32(body, 0).unwrap_or(0);
                facts.height = be32(body, 4).unwrap_or(0);
                facts.png_bit_depth = Some(body[8]);
                seen_header = true;
            }
            b"eXIf" => {
                facts.exif = true;
                if facts.software.is_none() {
                    facts.software = exif_software(body);
                }
            }
            b"tEXt" | b"iTXt" => {
                if let Some(value) = body.strip_prefix(b"Software\0") {
                    // iTXt: compression flag, method, language and translated keyword
                    // come before the text; an uncompressed one reads as the tail.
                    let value = if kind == b"iTXt" {
                        value
                            .get(2..)
                            .map(|v| v.rsplit(|&b| b == 0).next().unwrap_or(v))
                    } else {
                        Some(value)
                    };
                    facts.software = value.and_then(clean_text);
                }
            }
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    if !seen_header {
        return Err(bad("the PNG has no image header (IHDR)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_50_is_the_standard_table_itself() {
        assert_eq!(ijg_table(&STD_LUMA, 50), STD_LUMA);
        assert_eq!(estimate_quality(&STD_LUMA, Some(&STD_CHROMA)), (50, true));
    }

    #[test]
    fn every_ijg_quality_is_recovered_from_its_tables() {
        // Near 100 several qualities give all-ones tables; the estimate is then the
        // highest of them.
        for q in 1..=97u8 {
            let luma = ijg_table(&STD_LUMA, q);
            let chroma = ijg_table(&STD_CHROMA, q);
            assert_eq!(
                estimate_quality(&luma, Some(&chroma)),
                (q, true),
                "quality {q}"
            );
        }
    }

    #[test]
    fn a_custom_table_is_not_called_standard() {
        let mut luma = ijg_table(&STD_LUMA, 80);
        luma[5] += 7;
        let (q, exact) = estimate_quality(&luma, None);
        assert_eq!(q, 80);
        assert!(!exact);
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors_not_panics() {
        for bytes in [
            &b"\xFF\xD8\xFF"[..],
            b"\xFF\xD8\xFF\xDB\x00\x43\x00",
            b"\x89PNG\r\n\x1a\n",
            b"hello",
        ] {
            assert!(read_facts(bytes).is_err(), "{bytes:?}");
        }
    }
}
