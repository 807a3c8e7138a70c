//! Replays the `image_decode` fuzz target's corpus, seeds and crash files (`fuzz/`) on
//! stable: no nightly, no sanitizer. A missing corpus is a failure: it is committed.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

#[test]
fn image_decode_corpus_replays_without_a_panic() {
    replay::replay("image_decode", 100, df_data::fuzz::image_decode);
}

/// The two inputs libFuzzer reported as slow (`fuzz/artifacts/image_decode/slow-unit-*`):
/// JPEGs of a few hundred bytes declaring millions of pixels (62208×2304: 9.6 s and 885 MB
/// to decode before the check). They are refused from their header (the message says so:
/// the size against the byte count), not decoded.
#[test]
fn jpegs_declaring_more_pixels_than_their_bytes_can_hold_are_refused() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/artifacts/image_decode");
    for (file, size) in [
        (
            "slow-unit-7f8b752f84777262495e86f94ce8b30257b53f14",
            "62208x2304",
        ),
        (
            "slow-unit-03098144b91d06d860fc484406988abe0b13c923",
            "1792x2304",
        ),
    ] {
        let bytes = std::fs::read(dir.join(file)).expect("the committed slow unit");
        let err = match df_data::decode_rgb(&bytes) {
            Ok(img) => panic!("{file} decoded to {:?}", img.dimensions()),
            Err(e) => e,
        };
        let text = err.to_string();
        assert!(
            text.contains(&format!("declares {size} pixels in {} bytes", bytes.len())),
            "{file}: {text}"
        );
    }
    // The most compressible real JPEG an encoder writes (one flat colour, 4000×3000)
    // still decodes: its pixels per byte stay far below the limit.
    let flat = image::RgbImage::from_pixel(4000, 3000, image::Rgb([128, 128, 128]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 50)
        .encode_image(&flat)
        .expect("encode");
    let decoded = df_data::decode_rgb(&jpeg).expect("a flat 12-megapixel JPEG decodes");
    assert_eq!(decoded.dimensions(), (4000, 3000));
}
