//! Resizing and decoding against Pillow (`scripts/fixtures/pillow_resize.py`).

use df_data::{decode_rgb, resize_rgb, ResizeFilter};
use image::RgbImage;

use crate::common::{fixture, fixture_json, u8s};

fn filter(name: &str) -> ResizeFilter {
    match name {
        "nearest" => ResizeFilter::Nearest,
        "bilinear" => ResizeFilter::Bilinear,
        "area" => ResizeFilter::Area,
        other => panic!("unknown filter {other}"),
    }
}

#[test]
fn resize_matches_pillow_exactly() {
    let v = fixture_json("pillow_resize", "resize.json");
    let mut checked = 0;
    for case in v["cases"].as_array().expect("cases") {
        let (w, h) = (
            case["width"].as_u64().expect("w") as u32,
            case["height"].as_u64().expect("h") as u32,
        );
        let img = RgbImage::from_raw(w, h, u8s(&case["data"])).expect("input size");
        for out in case["outputs"].as_array().expect("outputs") {
            let f = out["filter"].as_str().expect("filter");
            let (ow, oh) = (
                out["width"].as_u64().expect("w") as u32,
                out["height"].as_u64().expect("h") as u32,
            );
            let want = u8s(&out["data"]);
            let got = resize_rgb(&img, ow, oh, filter(f));
            assert_eq!(got.dimensions(), (ow, oh));
            let diff = got
                .as_raw()
                .iter()
                .zip(&want)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap_or(0);
            let n_diff = got
                .as_raw()
                .iter()
                .zip(&want)
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(
                diff, 0,
                "{} {w}x{h} -> {ow}x{oh} {f}: {n_diff} values differ from Pillow, max by {diff}",
                case["name"]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 39);
}

#[test]
fn decoding_matches_pillow_convert_rgb() {
    let v = fixture_json("pillow_resize", "decode.json");
    let mut report = Vec::new();
    for f in v["files"].as_array().expect("files") {
        let name = f["file"].as_str().expect("file");
        let bytes =
            std::fs::read(fixture("pillow_resize", &format!("decode/{name}"))).expect("read");
        let img = decode_rgb(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (w, h) = (
            f["width"].as_u64().expect("w") as u32,
            f["height"].as_u64().expect("h") as u32,
        );
        assert_eq!(img.dimensions(), (w, h), "{name}");
        let want = u8s(&f["data"]);
        let max = img
            .as_raw()
            .iter()
            .zip(&want)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        let mean = img
            .as_raw()
            .iter()
            .zip(&want)
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / want.len() as f64;
        let tol = f["tolerance"].as_u64().expect("tolerance") as u8;
        report.push(format!("{name} ({}): max {max}, mean {mean:.3}", f["mode"]));
        assert!(
            max <= tol,
            "{name}: max |diff| {max} > {tol} (mean {mean:.3})"
        );
        if tol == 0 {
            assert_eq!(max, 0, "{name}");
        } else {
            assert!(mean < 1.5, "{name}: mean |diff| {mean}");
        }
    }
    println!("decode vs Pillow:\n  {}", report.join("\n  "));
}

#[test]
fn truncated_jpegs_are_refused_and_trailing_data_is_accepted() {
    for name in [
        "rgb444.jpg",
        "rgb420.jpg",
        "gray.jpg",
        "cmyk.jpg",
        "progressive.jpg",
    ] {
        let bytes =
            std::fs::read(fixture("pillow_resize", &format!("decode/{name}"))).expect("read");
        let full = decode_rgb(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Data after the end-of-image marker (camera trailers, appended files) is ignored,
        // as Pillow ignores it, even when it holds marker-like bytes.
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"\xFF\xDA\x00\x04junk\xFF\xD8trailer");
        assert_eq!(
            decode_rgb(&trailing).expect("trailing data"),
            full,
            "{name}"
        );
        for cut in [bytes.len() / 2, bytes.len() * 9 / 10, bytes.len() - 2] {
            match decode_rgb(&bytes[..cut]) {
                Err(df_data::SkipReason::Corrupt(_)) => {}
                other => panic!("{name} cut to {cut} of {} bytes: {other:?}", bytes.len()),
            }
        }
    }
}
