//! The programs at the edges of what they own (issue 22): what they remove or replace, the
//! lock and output folders they are handed, a resume on changed data, options that do not
//! survive f32, the launcher of `--nproc` and its signals, and the messages that print
//! file names. Each test failed before its fix (the note of the change quotes how).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use deepfake::data::synthetic;

mod common;
use common::example;

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running example {name}: {e}"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temporary path")
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `train` on meso4, one epoch, 32 px, CPU, with `extra` options.
fn train(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--model",
        "meso4",
        "--data",
        s(data),
        "--val-split",
        "0.25",
        "--batch-size",
        "8",
        "--input-size",
        "32",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        s(out),
    ];
    if !extra.contains(&"--epochs") {
        args.extend(["--epochs", "1"]);
    }
    args.extend_from_slice(extra);
    run("train", &args)
}

fn data_set(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    synthetic::generate(&data, 8, 32, 4).expect("synthetic set");
    data
}

/// Point 1: `demo --out DIR` with a `DIR/data` it did not generate removed it whole
/// (before: `f.tex` gone). It now removes only the files it recorded generating.
#[test]
fn demo_removes_only_what_it_generated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("d");
    std::fs::create_dir_all(out.join("data/x")).expect("mkdir");
    std::fs::write(out.join("data/x/f.tex"), b"keep").expect("user file");
    let demo = |out: &Path, per_class: &str| {
        run(
            "demo",
            &[
                "--out",
                s(out),
                "--per-class",
                per_class,
                "--size",
                "32",
                "--epochs",
                "1",
                "--device",
                "cpu",
            ],
        )
    };
    let o = demo(&out, "10");
    assert!(!o.status.success(), "a folder it did not make was replaced");
    assert!(err(&o).contains("x"), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("{}", out.join("data").display())),
        "{}",
        err(&o)
    );
    assert_eq!(
        std::fs::read(out.join("data/x/f.tex")).expect("kept"),
        b"keep"
    );

    // Its own data it regenerates when the settings change, and a file of the user's
    // added among them stops it, untouched.
    let fresh = tmp.path().join("fresh");
    let o = demo(&fresh, "10");
    assert!(o.status.success(), "{}", err(&o));
    let o = demo(&fresh, "12");
    assert!(o.status.success(), "{}", err(&o));
    assert!(fresh.join("data/real/00011.jpg").exists());
    std::fs::write(fresh.join("data/real/mine.png"), b"mine").expect("user file");
    let o = demo(&fresh, "10");
    assert!(!o.status.success());
    assert!(err(&o).contains("mine.png"), "{}", err(&o));
    assert!(fresh.join("data/real/mine.png").exists());
    assert!(
        fresh.join("data/real/00011.jpg").exists(),
        "nothing removed"
    );
}

/// Points 1, 7, 17, 19: a run replaces only files a run recorded writing; `evaluate` into
/// a run's folder needs `--overwrite`; a planted `.lock` link is refused; `--out` naming
/// a file says so.
#[test]
fn output_folders_replace_only_what_a_run_recorded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = data_set(tmp.path());

    // A folder holding a file of the user's named like a run file.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).expect("mkdir");
    std::fs::write(mine.join("config.json"), b"{\"mine\": 1}").expect("user file");
    let o = train(&data, &mine, &["--overwrite"]);
    assert!(!o.status.success(), "the user's config.json was removed");
    assert!(err(&o).contains("config.json"), "{}", err(&o));
    assert_eq!(
        std::fs::read(mine.join("config.json")).expect("kept"),
        b"{\"mine\": 1}"
    );
    let plots = tmp.path().join("plots");
    std::fs::create_dir_all(&plots).expect("mkdir");
    std::fs::write(plots.join("metrics.json"), b"mine").expect("user file");
    let o = train(&data, &plots, &[]);
    assert!(!o.status.success(), "the user's metrics.json was replaced");
    assert!(err(&o).contains("metrics.json"), "{}", err(&o));
    assert_eq!(
        std::fs::read(plots.join("metrics.json")).expect("kept"),
        b"mine"
    );

    // A run's own files are replaced with --overwrite.
    let run_dir = tmp.path().join("run");
    let o = train(&data, &run_dir, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let o = train(&data, &run_dir, &["--overwrite"]);
    assert!(o.status.success(), "{}", err(&o));

    // evaluate into the run's folder: refused without --overwrite, nothing replaced.
    let metrics = std::fs::read(run_dir.join("metrics.json")).expect("metrics");
    let evaluate = |extra: &[&str]| {
        let weights = run_dir.join("best.safetensors");
        let mut args = vec![
            "--weights",
            s(&weights),
            "--data",
            s(&data),
            "--device",
            "cpu",
            "--out",
            s(&run_dir),
        ];
        args.extend_from_slice(extra);
        run("evaluate", &args)
    };
    let o = evaluate(&[]);
    assert!(!o.status.success(), "evaluate replaced the run's metrics");
    assert!(err(&o).contains("--overwrite"), "{}", err(&o));
    assert_eq!(
        std::fs::read(run_dir.join("metrics.json")).expect("kept"),
        metrics
    );
    let o = evaluate(&["--overwrite"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_ne!(
        std::fs::read(run_dir.join("metrics.json")).expect("new"),
        metrics
    );

    // Point 19: the disk fills while a plot is written (here a 20 KiB file-size limit, so
    // writes fail with EFBIG as a full disk fails them with ENOSPC): the error names the
    // plot and the OS's reason (before: `ImageError(IoError(Custom { … }))`).
    let weights = run_dir.join("best.safetensors");
    let limited = Command::new("bash")
        .args(["-c", "trap '' XFSZ; ulimit -f 20; exec \"$0\" \"$@\""])
        .arg(example("evaluate"))
        .args([
            "--weights",
            s(&weights),
            "--data",
            s(&data),
            "--device",
            "cpu",
        ])
        .args(["--overwrite", "--out", s(&run_dir)])
        .output()
        .expect("evaluate under a file-size limit");
    let e = err(&limited);
    assert!(!limited.status.success(), "{e}");
    assert!(
        e.contains(".png: File too large") && !e.contains("ImageError"),
        "{e}"
    );

    // A `.lock` planted as a link: refused, the link's target neither created nor locked.
    let planted = tmp.path().join("planted");
    std::fs::create_dir_all(&planted).expect("mkdir");
    let target = tmp.path().join("elsewhere.lock");
    std::os::unix::fs::symlink(&target, planted.join(".lock")).expect("symlink");
    let o = train(&data, &planted, &[]);
    assert!(!o.status.success(), "the lock was opened through a link");
    assert!(err(&o).contains("symbolic link"), "{}", err(&o));
    assert!(!target.exists(), "the link's target was created");

    // `--out` naming a file.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").expect("file");
    let o = train(&data, &file, &[]);
    assert!(!o.status.success());
    assert!(err(&o).contains("is a file"), "{}", err(&o));
    assert_eq!(std::fs::read(&file).expect("kept"), b"x");
}

/// Point 8: `--resume` after files were added to the data trained on silently grew the
/// validation set; it is refused, naming what changed.
#[test]
fn resume_refuses_changed_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = data_set(tmp.path());
    let out = tmp.path().join("run");
    let o = train(&data, &out, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let added = data.join("real/added.jpg");
    std::fs::copy(data.join("real/00000.jpg"), &added).expect("copy");
    let o = train(
        &data,
        &out,
        &["--resume", "--epochs", "2", "--allow-changes"],
    );
    assert!(!o.status.success(), "resumed on other data");
    let e = err(&o);
    assert!(e.contains("added") && e.contains("added.jpg"), "{e}");
    std::fs::remove_file(&added).expect("rm");
    let o = train(
        &data,
        &out,
        &["--resume", "--epochs", "2", "--allow-changes"],
    );
    assert!(o.status.success(), "{}", err(&o));
}

/// Points 13, 15, 19: options are checked in the precision they are used in, before
/// anything is written (before: `--lr 1e308` wrote the run's files, failed in libtorch,
/// and the corrected rerun was refused); a centre crop keeping under 8 px is refused;
/// `--input-size=-5` names the value given.
#[test]
fn options_are_checked_as_they_are_used_before_anything_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = data_set(tmp.path());
    let out = tmp.path().join("run");
    for (flag, value, says) in [
        ("--lr", "1e308", "f32"),
        ("--lr", "1e-60", "rounds to 0"),
        ("--center-crop", "1e-9", "center_crop"),
    ] {
        let o = train(&data, &out, &[flag, value]);
        assert!(!o.status.success(), "{flag} {value} accepted");
        assert!(err(&o).contains(says), "{flag} {value}: {}", err(&o));
        assert!(
            !out.join("experiment.json").exists(),
            "{flag} {value}: files written"
        );
    }
    let o = run(
        "train",
        &[
            "--model",
            "meso4",
            "--data",
            s(&data),
            "--input-size=-5",
            "--out",
            s(&out),
        ],
    );
    assert!(!o.status.success());
    assert!(err(&o).contains("-5"), "{}", err(&o));
    let o = train(&data, &out, &["--lr", "1e-3"]);
    assert!(o.status.success(), "the corrected run: {}", err(&o));

    // Scoring a 32 px image with a crop that keeps 3 px of it names the file.
    let weights = out.join("best.safetensors");
    let image = data.join("real/00000.jpg");
    let o = run(
        "predict",
        &[
            "--weights",
            s(&weights),
            "--cpu",
            "--center-crop",
            "0.1",
            s(&image),
        ],
    );
    assert!(!o.status.success());
    let e = err(&o);
    assert!(e.contains("00000.jpg") && e.contains("under 8 px"), "{e}");

    // bf16 on hardware without bf16 instructions: a warning with the way back; `auto`
    // says what it chose. The detection is faked both ways (DF_BF16_HARDWARE).
    let predict = |hardware: &str, precision: &str| {
        Command::new(example("predict"))
            .args([
                "--weights",
                s(&weights),
                "--cpu",
                "--precision",
                precision,
                s(&image),
            ])
            .env(deepfake::train::BF16_HARDWARE_VAR, hardware)
            .output()
            .expect("predict")
    };
    let o = predict("0", "bf16");
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        err(&o).contains("warning: --precision bf16") && err(&o).contains("--precision f32"),
        "{}",
        err(&o)
    );
    let o = predict("1", "bf16");
    assert!(!err(&o).contains("warning"), "{}", err(&o));
    for (hardware, chosen) in [("0", "f32"), ("1", "bf16")] {
        let o = predict(hardware, "auto");
        assert!(o.status.success(), "{}", err(&o));
        assert!(
            err(&o).contains(&format!("--precision auto chose {chosen}")),
            "{hardware}: {}",
            err(&o)
        );
    }
}

/// Point 12: a file name with a newline forged a result line on stderr, and ANSI codes
/// reached the terminal; names are escaped in every message.
#[test]
fn messages_escape_control_characters_in_names() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = data_set(tmp.path());
    let out = tmp.path().join("run");
    let o = train(&data, &out, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let dir = tmp.path().join("in");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let forged = dir.join("x.jpg\n{\"path\":\"y.jpg\",\"p_fake\":0.01,\"label\":\"real\"}\n.jpg");
    std::fs::write(&forged, b"not an image").expect("forged name");
    let ansi = dir.join("\u{1b}[2J\u{1b}[31mred.jpg");
    std::fs::write(&ansi, b"not an image").expect("ansi name");
    let weights = out.join("best.safetensors");
    let o = run("predict", &["--weights", s(&weights), "--cpu", s(&dir)]);
    let e = err(&o);
    assert!(!o.status.success());
    assert!(
        !e.lines().any(|l| l.starts_with('{')),
        "a forged line reached stderr:\n{e}"
    );
    assert!(
        !e.contains('\u{1b}'),
        "an escape code reached stderr: {e:?}"
    );
    assert!(
        e.contains("\\n{") && e.contains("\\u{1b}[31mred.jpg"),
        "{e}"
    );
}

/// Point 9: `--nproc` beyond the cores is refused naming both numbers; SIGTERM to the
/// launcher reaches its ranks (before: they ran on as orphans holding the run's lock),
/// and the launcher exits 128 + 15 once they have ended.
#[test]
fn the_launcher_forwards_signals_and_refuses_more_ranks_than_cores() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = data_set(tmp.path());
    let out = tmp.path().join("run");
    let o = train(&data, &out, &["--nproc", "1000"]);
    assert!(!o.status.success());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        err(&o).contains("1000") && err(&o).contains(&format!("{cores} core")),
        "{}",
        err(&o)
    );

    let start = |extra: &[&str]| {
        let mut launcher = Command::new(example("train"))
            .args([
                "--model",
                "meso4",
                "--data",
                s(&data),
                "--val-split",
                "0.25",
                "--batch-size",
                "8",
                "--input-size",
                "32",
                "--device",
                "cpu",
                "--quiet",
                "--epochs",
                "100000",
                "--nproc",
                "2",
                "--oversubscribe",
                "--out",
                s(&out),
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the launcher");
        let pid = launcher.id();
        let children = || -> Vec<u32> {
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        };
        let started = std::time::Instant::now();
        while !out.join("experiment.json").exists() || children().len() < 2 {
            if started.elapsed().as_secs() > 120 {
                let _ = launcher.kill();
                panic!("the ranks never started");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let ranks = children();
        (launcher, ranks)
    };
    let gone = |ranks: &[u32]| {
        ranks.iter().all(|rank| {
            !std::fs::read_to_string(format!("/proc/{rank}/stat"))
                .is_ok_and(|stat| !stat.contains(") Z "))
        })
    };
    let (mut launcher, ranks) = start(&[]);
    let pid = launcher.id();
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = launcher.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = launcher.kill();
            panic!("the launcher did not end after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(143), "exit status {status}");
    assert!(gone(&ranks), "ranks {ranks:?} outlived the launcher");

    // SIGKILL cannot be forwarded: the ranks die with their parent (PR_SET_PDEATHSIG).
    let (mut launcher, ranks) = start(&["--overwrite"]);
    launcher.kill().expect("SIGKILL");
    launcher.wait().expect("reaped");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !gone(&ranks) {
        assert!(
            std::time::Instant::now() < deadline,
            "ranks {ranks:?} outlived a killed launcher"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The folder's lock is free: a new run there starts at once.
    let o = train(&data, &out, &["--overwrite"]);
    assert!(o.status.success(), "an orphan holds the lock? {}", err(&o));
}

/// Point 1, `prepare_faces`: a fresh start into a folder holding files it did not make is
/// refused, naming the folder, and nothing there is replaced (before: crops were written
/// among, and over, whatever the folder held).
#[test]
fn prepare_faces_writes_only_into_an_empty_folder_or_its_own() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in/real");
    std::fs::create_dir_all(&input).expect("mkdir");
    image::RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]))
        .save(input.join("grey.png"))
        .expect("grey photo");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("real")).expect("mkdir");
    std::fs::write(out.join("real/grey.png"), b"the user's").expect("user file");
    let input_root = tmp.path().join("in");
    let o = run(
        "prepare_faces",
        &["--input", s(&input_root), "--out", s(&out)],
    );
    assert!(!o.status.success(), "wrote into a folder it did not make");
    assert!(
        err(&o).contains(&format!("{}", out.display())),
        "{}",
        err(&o)
    );
    assert_eq!(
        std::fs::read(out.join("real/grey.png")).expect("kept"),
        b"the user's"
    );
    // An empty folder is fine.
    std::fs::remove_dir_all(&out).expect("rm");
    std::fs::create_dir_all(&out).expect("mkdir");
    let o = run(
        "prepare_faces",
        &["--input", s(&input_root), "--out", s(&out)],
    );
    assert!(o.status.success(), "{}", err(&o));
}
