//! Files and folders at the edges (issue 22, points 4, 5, 6 and 18), through the programs
//! people run: files that are not regular (a link to `/dev/zero`, a FIFO) in folders and
//! named as inputs or weights, link loops in `prepare_faces`' input, output folders inside
//! input folders, and `prepare_faces` resuming after its crops were deleted.
//!
//! Each program runs as a child with a deadline: one that hangs on a FIFO (or reads
//! `/dev/zero` without end) is killed and the test fails, rather than the suite hanging.

#![cfg(unix)]

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use deepfake::data::synthetic;

mod common;
use common::{example, meso4_checkpoint};

/// What a child printed and how it ended.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn said(&self) -> String {
        format!(
            "{}\nstdout:\n{}\nstderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// The most a program here may take: generous (they take a second or two), so that only a
/// program blocked on a FIFO or reading `/dev/zero` runs into it.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs example `name` with `args`, killing it (and failing) if it has not ended by the
/// deadline.
fn run<S: AsRef<OsStr>>(name: &str, args: &[S]) -> Ran {
    let mut child = Command::new(example(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running example {name}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().unwrap_or_default();
            let args: Vec<_> = args.iter().map(|a| a.as_ref().to_owned()).collect();
            panic!("{name} {args:?} had not ended after {DEADLINE:?} (killed; blocked on a FIFO, or reading without end?); stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ran {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temporary path")
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("running mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

fn json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A grey picture without a face at `path`.
fn grey(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    image::RgbImage::from_pixel(64, 48, image::Rgb([128, 128, 128]))
        .save_with_format(path, image::ImageFormat::Png)
        .expect("png");
}

/// Point 4: in a folder, a link to `/dev/zero` and a FIFO with image names are skipped
/// with the reason and the other images scored; named on the command line, or as the
/// weights, they are refused naming them. `predict` used to read 4.6 GB of `/dev/zero`
/// before running out of memory, and to hang on the FIFO.
#[test]
fn predict_skips_what_is_not_a_regular_file_and_refuses_it_named() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let weights = tmp.path().join("meso4.safetensors");
    meso4_checkpoint(&weights, |_| ());
    let data = tmp.path().join("data");
    synthetic::generate(&data, 2, 32, 3).expect("synthetic set");
    let zero = data.join("real/z.jpg");
    symlink("/dev/zero", &zero).expect("link");
    let fifo = data.join("real/p.jpg");
    mkfifo(&fifo);

    let r = run("predict", &["--weights", s(&weights), "--cpu", s(&data)]);
    assert!(r.status.success(), "{}", r.said());
    assert_eq!(r.stdout.lines().count(), 4, "the four images: {}", r.said());
    assert!(!r.stdout.contains("z.jpg") && !r.stdout.contains("p.jpg"));
    for (name, what) in [("z.jpg", "a character device"), ("p.jpg", "a FIFO")] {
        assert!(
            r.stderr.lines().any(|l| l.starts_with("skipped: ")
                && l.contains(name)
                && l.contains("not a regular file")
                && l.contains(what)),
            "{name}: {}",
            r.said()
        );
    }

    // Named: an error naming the file, the others still scored.
    for (path, what) in [(&zero, "a character device"), (&fifo, "a FIFO")] {
        let good = data.join("fake");
        let r = run(
            "predict",
            &["--weights", s(&weights), "--cpu", s(path), s(&good)],
        );
        assert!(!r.status.success(), "{}", r.said());
        assert_eq!(r.stdout.lines().count(), 2, "{}", r.said());
        assert!(
            r.stderr.contains(s(path))
                && r.stderr.contains("not a regular file")
                && r.stderr.contains(what),
            "{}",
            r.said()
        );
    }

    // Weights that are not a regular file: refused before anything is scored.
    let zero_st = tmp.path().join("zero.safetensors");
    symlink("/dev/zero", &zero_st).expect("link");
    let zero_h5 = tmp.path().join("zero.h5");
    symlink("/dev/zero", &zero_h5).expect("link");
    let fifo_st = tmp.path().join("w.safetensors");
    mkfifo(&fifo_st);
    for (w, what) in [
        (&zero_st, "a character device"),
        (&zero_h5, "a character device"),
        (&fifo_st, "a FIFO"),
    ] {
        let r = run(
            "predict",
            &["--model", "meso4", "--weights", s(w), "--cpu", s(&data)],
        );
        assert_eq!(r.status.code(), Some(2), "{}", r.said());
        assert!(r.stdout.is_empty(), "{}", r.said());
        assert!(
            r.stderr.contains(s(w))
                && r.stderr.contains("not a regular file")
                && r.stderr.contains(what),
            "{}",
            r.said()
        );
    }
}

/// Point 4 in `prepare_faces`: the same files are recorded as skipped with the reason,
/// and detector weights that are a FIFO are refused naming them, before anything is
/// written (it used to hang on both).
#[test]
fn prepare_faces_skips_what_is_not_a_regular_file_and_refuses_such_weights() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let input = tmp.path().join("photos");
    grey(&input.join("real/grey.png"));
    symlink("/dev/zero", input.join("real/z.jpg")).expect("link");
    mkfifo(&input.join("real/p.jpg"));
    let out = tmp.path().join("faces");
    let r = run("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
    assert!(r.status.success(), "{}", r.said());
    let skipped = &json(&out.join("prepare-faces.json"))["skipped"];
    assert_eq!(skipped["real/grey.png"], "no face found", "{skipped}");
    for (name, what) in [
        ("real/z.jpg", "a character device"),
        ("real/p.jpg", "a FIFO"),
    ] {
        let reason = skipped[name].as_str().unwrap_or_default();
        assert!(
            reason.contains("not a regular file") && reason.contains(what),
            "{name}: {skipped}"
        );
    }

    let fifo = tmp.path().join("mtcnn.safetensors");
    mkfifo(&fifo);
    let fresh = tmp.path().join("never");
    let r = run(
        "prepare_faces",
        &[
            "--input",
            s(&input),
            "--out",
            s(&fresh),
            "--weights",
            s(&fifo),
        ],
    );
    assert!(!r.status.success(), "{}", r.said());
    assert!(
        r.stderr.contains(s(&fifo)) && r.stderr.contains("not a regular file (a FIFO)"),
        "{}",
        r.said()
    );
    assert!(!fresh.exists(), "{} was written", fresh.display());
}

/// Point 5: `prepare_faces` walks its input as `train` does: link loops end and each photo
/// is taken once. One `self -> .` link used to give 41 copies of each photo, nested 40
/// folders deep; two such links a walk that did not end.
#[test]
fn prepare_faces_walks_each_folder_once_whatever_the_links() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let input = tmp.path().join("photos");
    grey(&input.join("real/grey.png"));
    grey(&input.join("fake/sub/other.png"));
    symlink(".", input.join("real/self")).expect("self link");
    symlink("..", input.join("fake/sub/up")).expect("up link");
    let out = tmp.path().join("faces");
    let r = run("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
    assert!(r.status.success(), "{}", r.said());
    assert!(
        r.stdout.contains("2 photos and videos, 0 with a face"),
        "{}",
        r.said()
    );
    let manifest = json(&out.join("prepare-faces.json"));
    let names: Vec<&String> = manifest["skipped"]
        .as_object()
        .expect("skipped")
        .keys()
        .collect();
    assert_eq!(names, ["fake/sub/other.png", "real/grey.png"], "{manifest}");
}

/// Point 6: an output folder inside an input folder is refused, naming both, before
/// anything is written, however the path is spelt (`other/../in/x`, a link to the input);
/// `train` and `evaluate` used to accept `--out` inside `--data`, making their plots
/// training images, and `prepare_faces` compared the paths as written.
#[test]
fn output_folders_inside_input_folders_are_refused() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let root = tmp.path();
    let input = root.join("in");
    grey(&input.join("real/grey.png"));
    std::fs::create_dir_all(root.join("other")).expect("mkdir");
    symlink(&input, root.join("link")).expect("link");
    for (out, made) in [
        (root.join("other/../in/faces"), input.join("faces")),
        (root.join("link/faces"), input.join("faces")),
        (root.join("link/real/crops"), input.join("real/crops")),
    ] {
        let r = run("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
        assert!(
            !r.status.success()
                && r.stderr.contains("inside --input")
                && r.stderr.contains(s(&out))
                && r.stderr.contains(s(&input)),
            "{}: {}",
            out.display(),
            r.said()
        );
        assert!(!made.exists(), "{} was written", made.display());
    }

    let data = root.join("d");
    synthetic::generate(&data, 4, 32, 7).expect("synthetic set");
    let val = root.join("v");
    synthetic::generate(&val, 2, 32, 8).expect("synthetic set");
    let train = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "--model",
            "meso4",
            "--input-size",
            "32",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--quiet",
            "--data",
            s(&data),
            "--out",
            s(out),
        ];
        args.extend_from_slice(extra);
        run("train", &args)
    };
    for (out, extra, input) in [
        (data.join("real/run"), vec!["--val-split", "0.5"], &data),
        (
            root.join("other/../d/run"),
            vec!["--val-split", "0.5"],
            &data,
        ),
        (val.join("run"), vec!["--val", s(&val)], &val),
    ] {
        let r = train(&out, &extra);
        assert!(
            !r.status.success()
                && r.stderr.contains("is inside")
                && r.stderr.contains(s(&out))
                && r.stderr.contains(s(input)),
            "{}: {}",
            out.display(),
            r.said()
        );
        assert!(!out.exists(), "{} was written", out.display());
    }

    let weights = root.join("meso4.safetensors");
    meso4_checkpoint(&weights, |_| ());
    let evaluate = |out: &Path| {
        run(
            "evaluate",
            &[
                "--weights",
                s(&weights),
                "--data",
                s(&data),
                "--device",
                "cpu",
                "--out",
                s(out),
            ],
        )
    };
    let inside = data.join("real/eval");
    let r = evaluate(&inside);
    assert!(
        !r.status.success()
            && r.stderr.contains("inside --data")
            && r.stderr.contains(s(&inside))
            && r.stderr.contains(s(&data)),
        "{}",
        r.said()
    );
    assert!(!inside.exists(), "{} was written", inside.display());
    // A sibling whose name starts with the data's is not inside it.
    let beside = root.join("d-eval");
    let r = evaluate(&beside);
    assert!(r.status.success(), "{}", r.said());
    assert!(beside.join("metrics.json").is_file());
}

/// Point 18: `prepare_faces` resuming checks that the crops its manifest records are still
/// there (as regular files) and crops again the sources whose crops are missing; it used
/// to report them done.
#[test]
fn prepare_faces_crops_again_what_was_deleted() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let input = tmp.path().join("photos");
    for name in ["real/kept.png", "real/deleted.png", "real/folder.png"] {
        grey(&input.join(name));
    }
    let out = tmp.path().join("faces");
    let r = run("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
    assert!(r.status.success(), "{}", r.said());
    // The manifest as a run that found faces leaves it (these grey pictures have none):
    // each photo done, with its crop; then one crop deleted, one replaced by a folder.
    let path = out.join("prepare-faces.json");
    let mut manifest = json(&path);
    manifest["skipped"] = serde_json::json!({});
    manifest["done"] = serde_json::json!({
        "real/kept.png": ["real/kept.png"],
        "real/deleted.png": ["real/deleted.png"],
        "real/folder.png": ["real/folder.png"],
    });
    std::fs::write(&path, manifest.to_string()).expect("manifest");
    grey(&out.join("real/kept.png"));
    std::fs::create_dir_all(out.join("real/folder.png")).expect("mkdir");

    let r = run("prepare_faces", &["--input", s(&input), "--out", s(&out)]);
    assert!(r.status.success(), "{}", r.said());
    assert!(
        r.stdout
            .contains("3 photos and videos, 1 with a face (1 crops), 2 skipped"),
        "{}",
        r.said()
    );
    let manifest = json(&path);
    assert_eq!(
        manifest["done"],
        serde_json::json!({"real/kept.png": ["real/kept.png"]})
    );
    for name in ["real/deleted.png", "real/folder.png"] {
        assert_eq!(manifest["skipped"][name], "no face found", "{manifest}");
    }
}
