//! Class folders, manifests, splits, shards, bad files and construction errors.

use std::collections::BTreeSet;
use std::path::PathBuf;

use df_data::{
    ClassMapping, Error, FolderOptions, ImageFolder, Label, Loader, LoaderConfig, SkipReason,
    SkipSummary, Transform,
};

use crate::common::{folder, write_jpeg, write_png};

fn paths(ds: &ImageFolder) -> BTreeSet<PathBuf> {
    ds.samples().iter().map(|s| s.path.clone()).collect()
}

#[test]
fn classes_are_sorted_labelled_by_name_and_walked_recursively() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The MesoNet authors' layout: df/ (fake) and real/, with nested folders.
    write_png(&dir.path().join("real/b.png"), 8, 8, 1);
    write_png(&dir.path().join("real/a.png"), 8, 8, 2);
    write_png(&dir.path().join("real/x/y/deep.png"), 8, 8, 3);
    write_jpeg(&dir.path().join("df/one.JPG"), 8, 8, 4);
    write_png(&dir.path().join("df/two.png"), 8, 8, 5);
    write_png(&dir.path().join("loose.png"), 8, 8, 6); // not in a class folder: ignored
    std::fs::write(dir.path().join("real/.DS_Store"), b"junk").expect("write");

    let ds = ImageFolder::open(dir.path()).expect("open");
    let names: Vec<_> = ds
        .classes()
        .iter()
        .map(|c| (c.name.as_str(), c.label, c.count))
        .collect();
    assert_eq!(names, [("df", Label::Fake, 2), ("real", Label::Real, 3)]);
    let rel: Vec<String> = ds
        .samples()
        .iter()
        .map(|s| {
            s.path
                .strip_prefix(dir.path())
                .expect("under root")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        rel,
        [
            "df/one.JPG",
            "df/two.png",
            "real/a.png",
            "real/b.png",
            "real/x/y/deep.png"
        ]
    );
    assert_eq!(ds.label_counts(), (3, 2));
    assert!(
        ds.skipped().is_empty(),
        "hidden files are ignored: {:?}",
        ds.skipped()
    );
}

#[test]
fn class_mapping_defaults_and_overrides() {
    let m = ClassMapping::default();
    for fake in ["fake", "DF", "deepfake", "Manipulated"] {
        assert_eq!(m.label(fake), Some(Label::Fake), "{fake}");
    }
    for real in ["real", "Original", "pristine"] {
        assert_eq!(m.label(real), Some(Label::Real), "{real}");
    }
    assert_eq!(m.label("swapped"), None);

    let dir = tempfile::tempdir().expect("tempdir");
    write_png(&dir.path().join("swapped/a.png"), 8, 8, 1);
    write_png(&dir.path().join("camera/a.png"), 8, 8, 2);
    write_png(&dir.path().join("web/a.png"), 8, 8, 3);
    match ImageFolder::open(dir.path()) {
        Err(Error::UnknownClass { class, .. }) => assert_eq!(class, "camera"),
        other => panic!("expected UnknownClass, got {other:?}"),
    }
    let opts = FolderOptions::default().with_mapping(ClassMapping::positive("swapped"));
    let ds = ImageFolder::open_with(dir.path(), &opts).expect("open");
    let labels: Vec<_> = ds
        .classes()
        .iter()
        .map(|c| (c.name.as_str(), c.label))
        .collect();
    assert_eq!(
        labels,
        [
            ("camera", Label::Real),
            ("swapped", Label::Fake),
            ("web", Label::Real)
        ]
    );
    let opts =
        FolderOptions::default().with_mapping(ClassMapping::new(["swapped"], ["camera", "web"]));
    assert_eq!(
        ImageFolder::open_with(dir.path(), &opts)
            .expect("open")
            .label_counts(),
        (2, 1)
    );
}

#[test]
fn validation_split_is_deterministic_stratified_and_disjoint() {
    let dir = folder(30, 20, 4);
    let ds = ImageFolder::open(dir.path()).expect("open");
    let (train, val) = ds.validation_split(0.2, 7).expect("split");
    // round(0.2 × 20) fake and round(0.2 × 30) real go to validation.
    assert_eq!(val.label_counts(), (6, 4));
    assert_eq!(train.label_counts(), (24, 16));
    let (t, v) = (paths(&train), paths(&val));
    assert!(t.is_disjoint(&v));
    assert_eq!(t.union(&v).cloned().collect::<BTreeSet<_>>(), paths(&ds));

    let (train2, val2) = ds.validation_split(0.2, 7).expect("split");
    assert_eq!((paths(&train2), paths(&val2)), (t.clone(), v.clone()));
    let (_, val3) = ds.validation_split(0.2, 8).expect("split");
    assert_ne!(paths(&val3), v, "another seed gives another split");
    // Reopening the folder gives the same split (it depends on the files, not the run).
    let again = ImageFolder::open(dir.path()).expect("open");
    assert_eq!(paths(&again.validation_split(0.2, 7).expect("split").1), v);

    for bad in [0.0, 1.0, -0.1, f64::NAN] {
        assert!(
            matches!(
                ds.validation_split(bad, 1),
                Err(Error::InvalidConfig { .. })
            ),
            "{bad}"
        );
    }
    // A class too small for the split is an error, not an empty validation class.
    let tiny = folder(2, 10, 4);
    let tiny = ImageFolder::open(tiny.path()).expect("open");
    assert!(matches!(
        tiny.validation_split(0.2, 1),
        Err(Error::InvalidConfig {
            option: "validation_split",
            ..
        })
    ));
}

#[test]
fn shards_partition_the_dataset_and_keep_class_proportions() {
    let dir = folder(21, 12, 4);
    let ds = ImageFolder::open(dir.path()).expect("open");
    let world = 3;
    let shards: Vec<ImageFolder> = (0..world)
        .map(|r| ds.shard(r, world).expect("shard"))
        .collect();
    let mut all = BTreeSet::new();
    for s in &shards {
        let p = paths(s);
        assert!(all.is_disjoint(&p));
        all.extend(p);
        assert_eq!(s.label_counts(), (7, 4));
    }
    assert_eq!(all, paths(&ds));
    assert!(ds.shard(3, 3).is_err());
    assert!(ds.shard(0, 0).is_err());
    assert_eq!(paths(&ds.shard(0, 1).expect("shard")), paths(&ds));
}

#[test]
fn csv_manifest_with_relative_paths_names_and_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_png(&d.join("imgs/a.png"), 8, 8, 1);
    write_png(&d.join("imgs/b.png"), 8, 8, 2);
    write_png(&d.join("imgs/c.png"), 8, 8, 3);
    let abs = d.join("elsewhere/d.png");
    write_png(&abs, 8, 8, 4);
    let manifest = d.join("list.csv");
    std::fs::write(
        &manifest,
        format!("path,label\nimgs/a.png,real\nimgs/b.png,1\nimgs/c.png,0\n{},fake\nimgs/missing.png,real\n\n", abs.display()),
    )
    .expect("write");
    let ds = ImageFolder::from_csv(&manifest, &FolderOptions::default()).expect("manifest");
    let got: Vec<(String, Label)> = ds
        .samples()
        .iter()
        .map(|s| {
            (
                s.path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
                s.label,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a.png".into(), Label::Real),
            ("b.png".into(), Label::Fake),
            ("c.png".into(), Label::Real),
            ("d.png".into(), Label::Fake)
        ]
    );
    assert_eq!(ds.skipped().len(), 1);
    assert_eq!(ds.skipped()[0].reason, SkipReason::Missing);
    assert!(ds.skipped()[0].path.ends_with("imgs/missing.png"));

    std::fs::write(&manifest, "imgs/a.png\n").expect("write");
    match ImageFolder::from_csv(&manifest, &FolderOptions::default()) {
        Err(Error::Manifest { line, .. }) => assert_eq!(line, 1),
        other => panic!("expected a manifest error, got {other:?}"),
    }
    std::fs::write(&manifest, "imgs/a.png,real\nimgs/b.png,mystery\n").expect("write");
    assert!(matches!(
        ImageFolder::from_csv(&manifest, &FolderOptions::default()),
        Err(Error::UnknownClass { .. })
    ));
    std::fs::write(&manifest, "imgs/a.png,real\nimgs/c.png,0\n").expect("write");
    assert!(matches!(
        ImageFolder::from_csv(&manifest, &FolderOptions::default()),
        Err(Error::SingleClass { .. })
    ));
}

/// A JPEG cut after its headers: the header check passes, decoding fails.
fn truncated_jpeg(path: &std::path::Path) {
    write_jpeg(path, 64, 64, 9);
    let bytes = std::fs::read(path).expect("read");
    std::fs::write(path, &bytes[..bytes.len() / 3]).expect("truncate");
}

#[test]
fn bad_files_are_skipped_counted_and_listed() {
    let dir = folder(6, 6, 16);
    let d = dir.path();
    std::fs::write(d.join("real/zero.jpg"), b"").expect("write");
    std::fs::write(d.join("fake/text.png"), b"this is not an image at all").expect("write");
    std::fs::write(d.join("fake/notes.txt"), b"annotations").expect("write");
    // A PNG signature followed by garbage: the header is corrupt.
    std::fs::write(
        d.join("real/garbage.png"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRgarbage-garbage",
    )
    .expect("write");
    truncated_jpeg(&d.join("fake/truncated.jpg"));
    // A PNG cut in its pixel data.
    write_png(&d.join("real/cut.png"), 64, 64, 8);
    let png = std::fs::read(d.join("real/cut.png")).expect("read");
    std::fs::write(d.join("real/cut.png"), &png[..png.len() / 2]).expect("truncate");

    let ds = ImageFolder::open(d).expect("bad files do not stop opening");
    let listed: Vec<(String, String)> = ds
        .skipped()
        .iter()
        .map(|r| {
            let kind = serde_json::to_value(&r.reason).expect("json")["kind"]
                .as_str()
                .expect("kind")
                .to_string();
            (
                r.path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
                kind,
            )
        })
        .collect();
    let mut listed = listed;
    listed.sort();
    assert_eq!(
        listed,
        [
            ("garbage.png".to_string(), "corrupt".to_string()),
            ("notes.txt".to_string(), "not_an_image".to_string()),
            ("text.png".to_string(), "not_an_image".to_string()),
            ("zero.jpg".to_string(), "zero_bytes".to_string()),
        ]
    );
    // The truncated files have valid headers: they are found when decoded, and the run
    // goes on.
    assert_eq!(ds.label_counts(), (7, 7));
    let cfg = LoaderConfig::default()
        .with_batch_size(4)
        .with_workers(2)
        .with_transform(Transform::unit(8, 8));
    let loader = Loader::new(ds, cfg).expect("loader");
    let mut seen = 0;
    for batch in loader.epoch(0) {
        let batch = batch.expect("batch");
        assert!(batch
            .paths
            .iter()
            .all(|p| !p.ends_with("truncated.jpg") && !p.ends_with("cut.png")));
        seen += batch.len();
    }
    assert_eq!(
        seen, 12,
        "every good image once, the truncated ones left out"
    );
    let summary = loader.skip_summary();
    assert_eq!(summary.count, 6);
    for name in ["truncated.jpg", "cut.png"] {
        let r = summary
            .files
            .iter()
            .find(|r| r.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} is listed"));
        assert!(
            matches!(r.reason, SkipReason::Corrupt(_)),
            "{name}: {:?}",
            r.reason
        );
    }
    // The summary round-trips through JSON, as written to a run's output files.
    let json = summary.to_json().expect("json");
    let back: SkipSummary = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, summary);
}

#[test]
fn construction_errors_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    match ImageFolder::open(&missing) {
        Err(e @ Error::MissingPath { .. }) => assert!(e.to_string().contains("nope"), "{e}"),
        other => panic!("expected MissingPath, got {other:?}"),
    }
    assert!(matches!(
        ImageFolder::from_csv(dir.path().join("none.csv"), &FolderOptions::default()),
        Err(Error::MissingPath { .. })
    ));
    // No class folder at all.
    assert!(matches!(
        ImageFolder::open(dir.path()),
        Err(Error::SingleClass { .. })
    ));

    // A single class.
    let single = folder(3, 0, 4);
    match ImageFolder::open(single.path()) {
        Err(e @ Error::SingleClass { .. }) => assert!(e.to_string().contains("real"), "{e}"),
        other => panic!("expected SingleClass, got {other:?}"),
    }

    // An empty class folder, and one holding only a bad file.
    let empty = folder(3, 3, 4);
    std::fs::create_dir_all(empty.path().join("manipulated")).expect("mkdir");
    match ImageFolder::open(empty.path()) {
        Err(e @ Error::EmptyClass { .. }) => assert!(e.to_string().contains("manipulated"), "{e}"),
        other => panic!("expected EmptyClass, got {other:?}"),
    }
    std::fs::write(empty.path().join("manipulated/zero.png"), b"").expect("write");
    assert!(matches!(
        ImageFolder::open(empty.path()),
        Err(Error::EmptyClass { .. })
    ));
}

/// Link loops (`self -> .`, `sub/up -> ..`) are walked once: no endless walk, no image
/// counted twice; a second link to an image already admitted is skipped with the first
/// path named; and a split never puts one file on both sides.
#[cfg(unix)]
#[test]
fn link_loops_and_duplicate_links_admit_each_file_once() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    for i in 0..4 {
        write_png(&root.join(format!("real/r{i}.png")), 8, 8, i);
        write_png(&root.join(format!("fake/f{i}.png")), 8, 8, 10 + i);
    }
    std::fs::create_dir_all(root.join("real/sub")).expect("mkdir");
    symlink(".", root.join("real/self")).expect("self link");
    symlink("..", root.join("real/sub/up")).expect("up link");
    symlink(root.join("fake/f0.png"), root.join("fake/again.png")).expect("file link");
    // The same file reached from the other class: it cannot be both.
    symlink(root.join("real/r0.png"), root.join("fake/also_real.png")).expect("cross link");

    let (tx, rx) = std::sync::mpsc::channel();
    let dir = root.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(ImageFolder::open(&dir));
    });
    let ds = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the walk ends")
        .expect("opens");
    assert_eq!(ds.label_counts(), (4, 4), "{:?}", paths(&ds));
    let skipped: Vec<String> = ds.skipped().iter().map(|s| s.to_string()).collect();
    for name in ["again.png", "also_real.png"] {
        assert!(
            skipped
                .iter()
                .any(|s| s.contains(name) && s.contains("same file as")),
            "{name} not reported: {skipped:?}"
        );
    }
    let canonical = |p: &PathBuf| std::fs::canonicalize(p).expect("canonical");
    let (train, val) = ds.validation_split(0.5, 3).expect("split");
    let train_files: BTreeSet<PathBuf> =
        train.samples().iter().map(|s| canonical(&s.path)).collect();
    for s in val.samples() {
        assert!(
            !train_files.contains(&canonical(&s.path)),
            "{} on both sides",
            s.path.display()
        );
    }

    // Two folders holding the same file: refused by name.
    let other = tmp.path().join("val");
    write_png(&other.join("real/v.png"), 8, 8, 40);
    std::fs::create_dir_all(other.join("fake")).expect("mkdir");
    symlink(root.join("fake/f1.png"), other.join("fake/f1.png")).expect("val link");
    let val = ImageFolder::open(&other).expect("val opens");
    let err = ds.check_disjoint(&val).expect_err("shared file");
    assert!(err.to_string().contains("f1.png"), "{err}");
}

/// `f(path)` in a thread; when it has not returned after a generous wait (blocked on the
/// FIFO at `fifo`), the FIFO is opened for writing and closed, which lets it return, and
/// the test fails instead of hanging.
#[cfg(unix)]
fn returns<T: Send + 'static>(fifo: &std::path::Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(f());
    });
    match receive.recv_timeout(std::time::Duration::from_secs(20)) {
        Ok(v) => v,
        Err(_) => {
            let _ = std::fs::OpenOptions::new().write(true).open(fifo);
            panic!("blocked on {} (or reading without end)", fifo.display());
        }
    }
}

/// Files that are not regular (issue 22, point 4): a link to `/dev/zero` and a FIFO with
/// image names. The walker leaves them out with the reason, the folder lists them as
/// skipped, and decoding one named directly is refused at once: reading them used to hang
/// (the FIFO) or read gigabytes (`/dev/zero`).
#[cfg(unix)]
#[test]
fn non_regular_files_are_skipped_with_the_reason_and_never_read() {
    use df_data::{check_header, load_rgb, Walker};
    let dir = folder(3, 3, 16);
    let d = dir.path();
    std::os::unix::fs::symlink("/dev/zero", d.join("real/z.jpg")).expect("link");
    let fifo = d.join("fake/p.jpg");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let expected = [
        ("p.jpg", "not a regular file: a FIFO"),
        ("z.jpg", "not a regular file: a character device"),
    ];
    let listed = |reports: &[df_data::SkipReport]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = reports
            .iter()
            .map(|r| {
                let name = r.path.file_name().expect("name").to_string_lossy();
                (name.into_owned(), r.reason.to_string())
            })
            .collect();
        v.sort();
        v
    };
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();

    let root = d.to_path_buf();
    let walked = returns(&fifo, move || {
        Walker::new(true).walk_all(&[&root.join("real"), &root.join("fake")])
    })
    .expect("walk");
    let skipped: Vec<_> = walked.iter().flat_map(|w| w.skipped.clone()).collect();
    assert_eq!(listed(&skipped), expected);
    assert_eq!(walked.iter().map(|w| w.files.len()).sum::<usize>(), 6);

    // Without the header check the walker still leaves them out: nothing reads them.
    for check_headers in [true, false] {
        let root = d.to_path_buf();
        let opts = FolderOptions::default().with_check_headers(check_headers);
        let ds = returns(&fifo, move || ImageFolder::open_with(&root, &opts)).expect("opens");
        assert_eq!(ds.label_counts(), (3, 3));
        assert_eq!(listed(ds.skipped()), expected);
    }

    // Named directly: refused, unread.
    for (path, what) in [
        (d.join("real/z.jpg"), "a character device"),
        (fifo.clone(), "a FIFO"),
    ] {
        let p = path.clone();
        let loaded = returns(&fifo, move || load_rgb(&p).map(|_| ()));
        assert_eq!(
            loaded,
            Err(SkipReason::NotRegular(what.to_string())),
            "{}",
            path.display()
        );
        let p = path.clone();
        let header = returns(&fifo, move || check_header(&p).map(|_| ()));
        assert_eq!(
            header,
            Err(SkipReason::NotRegular(what.to_string())),
            "{}",
            path.display()
        );
    }
    // A regular file still decodes, through a link too.
    let link = d.join("link.png");
    std::os::unix::fs::symlink(d.join("real/r000.png"), &link).expect("link");
    assert_eq!(check_header(&link), Ok((16, 16)));
    assert_eq!(
        load_rgb(&link).expect("decodes"),
        load_rgb(&d.join("real/r000.png")).expect("decodes")
    );
}
