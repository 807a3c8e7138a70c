//! Decoding image files to 8-bit RGB.

use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use image::{DynamicImage, ImageReader, RgbImage};

use crate::skip::SkipReason;

/// The file extensions read as images (lower case; matched case-insensitively).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "webp"];

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`].
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
        .unwrap_or(false)
}

/// The most pixels an image may declare: Pillow's decompression-bomb error threshold
/// (`2 * Image.MAX_IMAGE_PIXELS`), above which Pillow, hence Keras, refuses to open it.
pub const MAX_PIXELS: u64 = 2 * 89_478_485;

/// The most pixels one byte of a Huffman-coded JPEG can describe, with a 4x margin: each
/// 8×8 block of each component costs at least one bit of DC code (progressive scans code
/// runs of empty AC blocks in a few bits, never the DC), which puts the ceiling near 512
/// pixels per byte for grayscale and below for colour.
const JPEG_MAX_PIXELS_PER_BYTE: u64 = 2_048;

/// Refuses, from the header alone, an image that declares more pixels than it can hold:
/// above [`MAX_PIXELS`], or a JPEG whose data is far too short for its size (fuzzing
/// found a 631-byte JPEG declaring 62208×2304 pixels: 9.6 s and 885 MB to decode, the
/// missing data made up by the decoder).
fn check_declared_size(bytes: &[u8], format: image::ImageFormat) -> Result<(), SkipReason> {
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| SkipReason::Corrupt(e.to_string()))?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > MAX_PIXELS {
        return Err(SkipReason::Corrupt(format!(
            "declares {w}x{h} pixels, more than {MAX_PIXELS} (Pillow's decompression-bomb \
             limit)"
        )));
    }
    let bytes_len = bytes.len() as u64;
    if format == image::ImageFormat::Jpeg && pixels > bytes_len * JPEG_MAX_PIXELS_PER_BYTE {
        return Err(SkipReason::Corrupt(format!(
            "declares {w}x{h} pixels in {bytes_len} bytes, which no JPEG that short can hold \
             (corrupt, or a decompression bomb)"
        )));
    }
    Ok(())
}

/// Decodes an image held in memory to 8-bit RGB, as Keras' `load_img` does with
/// Pillow's `convert("RGB")`: grayscale is replicated, alpha is dropped (not
/// composited), palettes are expanded, CMYK JPEGs are converted, 16-bit samples are
/// rounded to 8 bits. The format is taken from the content, not the file name.
///
/// # Errors
/// A [`SkipReason`]: [`ZeroBytes`](SkipReason::ZeroBytes) for empty input,
/// [`NotAnImage`](SkipReason::NotAnImage) when the content is no supported format,
/// [`Corrupt`](SkipReason::Corrupt) when it does not decode.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, SkipReason> {
    if bytes.is_empty() {
        return Err(SkipReason::ZeroBytes);
    }
    let format = supported_format(bytes)?;
    // JPEG decoders conceal missing data (zune-jpeg and libjpeg fill it in); Pillow,
    // hence Keras, refuses a truncated file, and so does this crate.
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(SkipReason::Corrupt(
            "truncated JPEG: the data ends before the end-of-image marker".into(),
        ));
    }
    check_declared_size(bytes, format)?;
    let img = ImageReader::with_format(Cursor::new(bytes), format)
        .decode()
        .map_err(|e| SkipReason::Corrupt(e.to_string()))?;
    if img.width() == 0 || img.height() == 0 {
        return Err(SkipReason::Corrupt(format!(
            "image of size {}x{}",
            img.width(),
            img.height()
        )));
    }
    Ok(to_rgb8(img))
}

/// The supported format of content starting with `head`, from its magic bytes.
fn supported_format(head: &[u8]) -> Result<image::ImageFormat, SkipReason> {
    use image::ImageFormat as F;
    match image::guess_format(head) {
        Ok(f @ (F::Jpeg | F::Png | F::Bmp | F::WebP)) => Ok(f),
        Ok(other) => Err(SkipReason::NotAnImage(format!(
            "{other:?} content is not a supported format (JPEG, PNG, BMP, WebP)"
        ))),
        Err(_) => Err(SkipReason::NotAnImage(
            "content is not JPEG, PNG, BMP or WebP".into(),
        )),
    }
}

/// Reads and decodes the file at `path` (see [`decode_rgb`]).
///
/// # Errors
/// As [`decode_rgb`], plus [`Missing`](SkipReason::Missing) and
/// [`Unreadable`](SkipReason::Unreadable) for files that cannot be read, and
/// [`NotRegular`](SkipReason::NotRegular) for paths that are not a regular file (a FIFO, a
/// device, a folder), refused unread.
pub fn load_rgb(path: &Path) -> Result<RgbImage, SkipReason> {
    let bytes = df_io::read_regular(path).map_err(unreadable)?;
    decode_rgb(&bytes)
}

/// The [`SkipReason`] of a file that cannot be opened or read: missing, not a regular
/// file (refused unread by [`df_io::open_regular`]: a FIFO, a device, a folder), or
/// unreadable.
pub(crate) fn unreadable(e: std::io::Error) -> SkipReason {
    if let Some(not_regular) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<df_io::NotRegular>())
    {
        return SkipReason::NotRegular(not_regular.what.to_string());
    }
    match e.kind() {
        std::io::ErrorKind::NotFound => SkipReason::Missing,
        _ => SkipReason::Unreadable(e.to_string()),
    }
}

/// Checks the header of the file at `path` without decoding the pixels: that it is
/// non-empty, of a supported format and has a readable size. Used to list bad files
/// when a dataset is opened; truncated pixel data is only found when decoding.
///
/// # Errors
/// The [`SkipReason`] the loader would report.
pub fn check_header(path: &Path) -> Result<(u32, u32), SkipReason> {
    // Only a regular file is opened (a FIFO would block, `/dev/zero` never end); what is
    // read is that one opened file.
    let mut file = df_io::open_regular(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if meta.len() == 0 {
        return Err(SkipReason::ZeroBytes);
    }
    // The format comes from the content (as Pillow does), not the extension.
    let mut head = Vec::with_capacity(64);
    (&mut file)
        .take(64)
        .read_to_end(&mut head)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .map_err(unreadable)?;
    let format = supported_format(&head)?;
    let reader = ImageReader::with_format(BufReader::new(file), format);
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| SkipReason::Corrupt(e.to_string()))?;
    if w == 0 || h == 0 {
        return Err(SkipReason::Corrupt(format!("image of size {w}x{h}")));
    }
    Ok((w, h))
}

fn to_rgb8(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

/// Whether a JPEG stream reaches its end-of-image marker: walks the marker segments
/// (skipping each by its length) and the entropy-coded data after each start-of-scan
/// (where `FF` is only ever followed by a `00` stuffing byte, a restart marker or the
/// next marker), so an `FF D9` inside an embedded thumbnail or the scan data is not
/// mistaken for the end.
pub(crate) fn jpeg_is_complete(b: &[u8]) -> bool {
    let n = b.len();
    if n < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return false;
    }
    let mut i = 2;
    loop {
        // A marker: one or more FF fill bytes, then the code.
        while i < n && b[i] != 0xFF {
            i += 1;
        }
        while i < n && b[i] == 0xFF {
            i += 1;
        }
        if i >= n {
            return false;
        }
        let code = b[i];
        i += 1;
        match code {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => {}
            _ => {
                if i + 2 > n {
                    return false;
                }
                let len = usize::from(u16::from_be_bytes([b[i], b[i + 1]]));
                if len < 2 {
                    return false;
                }
                i += len;
                if i > n {
                    return false;
                }
                if code == 0xDA {
                    // Entropy-coded data up to the next real marker.
                    loop {
                        while i < n && b[i] != 0xFF {
                            i += 1;
                        }
                        if i + 1 >= n {
                            return false;
                        }
                        match b[i + 1] {
                            0x00 | 0xD0..=0xD7 => i += 2,
                            0xFF => i += 1,
                            _ => break,
                        }
                    }
                }
            }
        }
    }
}
