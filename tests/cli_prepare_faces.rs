//! `prepare_faces` from the command line: its summary line, its manifest, resuming, and
//! the options and folders it refuses before writing anything. The manifest, resume and
//! name-clash logic itself is tested in df-detect (`crops`).
//!
//! `cargo test` builds the examples before the tests; this runs the binaries it built
//! (`target/<profile>/examples/`).

mod common;
use common::cli::{json, ok, run, s};

/// `prepare_faces` without faces to find (photos with faces: the shared-data suite): what
/// it skips and why, resuming, refusing other settings for the same folder, and a bad
/// option refused before anything is written.
#[test]
fn prepare_faces_records_what_it_skips_resumes_and_guards_its_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("photos");
    std::fs::create_dir_all(input.join("real")).expect("dirs");
    std::fs::create_dir_all(input.join("fake")).expect("dirs");
    let grey = image::RgbImage::from_pixel(120, 100, image::Rgb([128, 128, 128]));
    grey.save(input.join("real/grey.png")).expect("png");
    std::fs::write(input.join("fake/broken.jpg"), b"not a picture").expect("write");
    std::fs::write(input.join("fake/clip.mp4"), b"not a video either").expect("write");
    std::fs::write(input.join("notes.txt"), b"ignored").expect("write");
    let out = dir.path().join("faces");
    let (stdout, _) = ok("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
    assert!(
        stdout.contains("3 photos and videos, 0 with a face (0 crops), 3 skipped"),
        "{stdout}"
    );
    let manifest = json(&out.join("prepare-faces.json"));
    let skipped = &manifest["skipped"];
    assert_eq!(skipped["real/grey.png"], "no face found");
    assert!(
        skipped["fake/broken.jpg"]
            .as_str()
            .is_some_and(|r| r.starts_with("unreadable")),
        "{skipped}"
    );
    assert!(
        skipped["fake/clip.mp4"]
            .as_str()
            .is_some_and(|r| r.starts_with("unreadable video")),
        "{skipped}"
    );
    assert_eq!(manifest["settings"]["crop"]["margin"], 0.3);
    assert_eq!(manifest["settings"]["crop"]["size"], 256);
    // Started again: what the manifest records is not redone, even a photo that changed
    // since (the broken file is now a readable picture).
    grey.save_with_format(input.join("fake/broken.jpg"), image::ImageFormat::Png)
        .expect("png");
    let before = std::fs::read_to_string(out.join("prepare-faces.json")).expect("manifest");
    ok("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
    let after = std::fs::read_to_string(out.join("prepare-faces.json")).expect("manifest");
    assert_eq!(before, after);
    // Other settings for the same folder are refused, naming it.
    let other = run(
        "prepare_faces",
        &["--input", s(&input), "--out", s(&out), "--size", "128"],
    );
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success() && err.contains("other settings"),
        "{err}"
    );
    // A bad option or an output inside the input: refused, nothing written.
    for (args, says) in [
        (vec!["--margin=-1"], "margin"),
        (vec!["--size", "0"], "crop size"),
        (vec!["--threads", "0"], "--threads"),
        (vec!["--fps=0"], "--fps"),
    ] {
        let fresh = dir.path().join("never");
        let mut all = vec!["--input", s(&input), "--out", s(&fresh)];
        all.extend(args);
        let r = run("prepare_faces", &all);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success() && err.contains(says), "{says}: {err}");
        assert!(!fresh.exists(), "{says}: {} was written", fresh.display());
    }
    let inside = input.join("crops");
    let r = run(
        "prepare_faces",
        &["--input", s(&input), "--out", s(&inside)],
    );
    assert!(!r.status.success() && String::from_utf8_lossy(&r.stderr).contains("inside --input"));
    assert!(!inside.exists());
}

/// `prepare_faces` refuses, before writing anything, inputs whose crops would overwrite
/// one another, naming both and the file (a photo named like a video's frame, two videos
/// with one path but for the extension), and crops sources whose names do not clash.
/// Which names clash, case by case, is df-detect's `crops::name_clash` (unit tests there).
#[test]
fn prepare_faces_refuses_names_that_would_clash_before_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grey = image::RgbImage::from_pixel(60, 50, image::Rgb([128, 128, 128]));
    let folder = |name: &str, files: &[&str]| {
        let input = dir.path().join(name);
        std::fs::create_dir_all(&input).expect("dir");
        for f in files {
            let path = input.join(f);
            if f.ends_with(".mp4") {
                std::fs::write(&path, b"not a video").expect("write");
            } else {
                grey.save_with_format(&path, image::ImageFormat::Png)
                    .expect("picture");
            }
        }
        input
    };
    for (files, every_face, says) in [
        (
            &["clip.mp4", "clip_f007.jpg"][..],
            true,
            "clip_f007_face0.png",
        ),
        (&["v.mp4", "v.avi"][..], false, "v_f000.png"),
    ] {
        let input = folder(&format!("clash-{}", files[1]), files);
        let out = dir.path().join(format!("out-{}", files[1]));
        let mut args = vec!["--input", s(&input), "--out", s(&out)];
        if every_face {
            args.push("--every-face");
        }
        let r = run("prepare_faces", &args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            !r.status.success()
                && err.contains(&format!("cropped to {says}"))
                && err.contains(files[0])
                && err.contains(files[1]),
            "{files:?}: {err}"
        );
        assert!(!out.exists(), "{files:?}: {} was written", out.display());
    }
    // No clash: each source is looked at (here none has a face).
    let input = folder(
        "fine",
        &[
            "a.mp4",
            "a.jpg",
            "clip.mp4",
            "clip_f12.jpg",
            "clip_f0000.jpg",
        ],
    );
    let out = dir.path().join("out-fine");
    let (stdout, _) = ok("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
    assert!(stdout.contains("5 photos and videos"), "{stdout}");
}
