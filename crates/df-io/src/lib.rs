//! The workspace's one way to write a file, and its one safetensors reader and writer.
//!
//! Every crate that writes (checkpoints, histories, reports, plots, run folders) goes
//! through this crate, by these names: [`write_atomic`] (bytes or text), [`write_json`],
//! [`safetensors::write`], and for writers that stream ([`write_atomic_with`]) or want a
//! path ([`replace_via_path`]) those two. The new content goes to a temporary
//! file in the destination's directory, which is synced to disk and renamed over the
//! destination, and the directory is synced so the rename itself survives a crash. A
//! reader, or a process killed mid-write, sees the old file or the whole new one, never a
//! part; on error the temporary file is removed and the destination is left as it was.
//!
//! **The destination's folder must exist.** A missing folder is refused with
//! [`Error::Io`] naming that folder (kind `NotFound`), and nothing is created: a program
//! that owns a folder (a run's output directory) creates it itself, once, where it decides
//! to.
//!
//! [`open_regular`] / [`read_regular`] are the workspace's one way to open a file a user
//! named (images, weights, manifests): regular files only, so a FIFO or a link to
//! `/dev/zero` is refused at once instead of hanging or filling the memory; [`is_inside`]
//! tells, on canonical paths, whether an output folder lies inside an input folder.
//!
//! [`safetensors`] turns named tensors held as bytes ([`TensorBytes`]) and string metadata
//! into a safetensors file and back. This crate has no libtorch: the crates that hold
//! `tch` tensors convert them to and from [`TensorBytes`].
//!
//! ```
//! # mod deepfake { pub mod io { pub use df_io::*; } }
//! # fn main() -> Result<(), deepfake::io::Error> {
//! let dir = tempfile::tempdir().expect("temporary directory");
//! let path = dir.path().join("report.json");
//! deepfake::io::write_atomic(&path, b"{\"auc\": 0.98}\n")?;
//! assert_eq!(std::fs::read(&path).expect("read"), b"{\"auc\": 0.98}\n");
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod file;
pub mod memory;
pub mod owned;
pub mod safetensors;

pub use crate::file::{
    is_inside, is_not_regular, open_regular, read_regular, read_regular_to_string, resolve,
    NotRegular,
};
pub use crate::safetensors::{Dtype, SafetensorsFile, TensorBytes};

/// What can go wrong, always naming the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on `path` (the destination, its temporary file or its directory).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A destination that cannot be a file (`/`, `..`, an empty path).
    #[error("{}: not a file path", path.display())]
    NotAFile {
        /// The path given.
        path: PathBuf,
    },
    /// A file that is not valid safetensors, or tensors that cannot be written as such.
    #[error("{}: {reason}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A value that does not serialise as JSON ([`write_json`]).
    #[error("{}: {source}", path.display())]
    Json {
        /// The file it was to be written to.
        path: PathBuf,
        /// The serialiser's error.
        source: serde_json::Error,
    },
    /// A file in `dir` that a program may not remove or replace: no deepfake program
    /// recorded writing it ([`owned`]).
    #[error("{}: {}: {reason}", dir.display(), file.display())]
    Ownership {
        /// The folder.
        dir: PathBuf,
        /// The file, relative to the folder.
        file: PathBuf,
        /// Why it is left alone.
        reason: String,
    },
}

impl Error {
    /// The file or directory at fault.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::NotAFile { path }
            | Error::Safetensors { path, .. }
            | Error::Json { path, .. } => path,
            Error::Ownership { dir, .. } => dir,
        }
    }

    /// The error as the path at fault and an [`std::io::Error`] (an I/O error as it came;
    /// the others as `InvalidInput` or `InvalidData` with their reason), for the crates
    /// whose own error type has an `Io { path, source }` case.
    pub fn into_io(self) -> (PathBuf, std::io::Error) {
        use std::io::ErrorKind;
        match self {
            Error::Io { path, source } => (path, source),
            Error::NotAFile { path } => (
                path,
                std::io::Error::new(ErrorKind::InvalidInput, "not a file path"),
            ),
            Error::Safetensors { path, reason } => {
                (path, std::io::Error::new(ErrorKind::InvalidData, reason))
            }
            Error::Json { path, source } => {
                (path, std::io::Error::new(ErrorKind::InvalidData, source))
            }
            Error::Ownership { dir, file, reason } => (
                dir,
                std::io::Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{}: {reason}", file.display()),
                ),
            ),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// An [`Error::Io`] naming `path`.
pub fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The destination's directory (`.` for a bare file name) and a new, empty temporary
/// file in it, created exclusively (`O_EXCL`, never following a link planted at its name)
/// with the permissions a new file gets: `.tmp-<random>-<name>`, hidden, at a name no
/// other process can guess, and with the destination's extension (writers such as image
/// encoders choose the format by it).
fn temporary_path(path: &Path) -> Result<(PathBuf, tempfile::TempPath)> {
    let name = path.file_name().ok_or_else(|| Error::NotAFile {
        path: path.to_path_buf(),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let suffix = format!("-{}", name.to_string_lossy());
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-").suffix(&suffix).rand_bytes(10);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode of an ordinary new file (the umask applies), not tempfile's 0600: the
        // temporary file becomes the destination.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = match builder.tempfile_in(&dir) {
        Ok(file) => file.into_temp_path(),
        // The one rule for a missing folder: refused, naming the folder; never created
        // (a mistyped `--out` must not grow a tree of folders).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.is_dir() => {
            return Err(Error::Io {
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the folder does not exist (create it first)",
                ),
                path: dir,
            })
        }
        Err(e) => return Err(io_error(&dir.join(format!(".tmp-*{suffix}")))(e)),
    };
    Ok((dir, tmp))
}

/// The destination's file name when `name` is a temporary file of this crate's writer
/// (`.tmp-<10 random characters>-<name>`, or `.tmp-<pid>-<n>-<name>` from before), else
/// `None`: what a program may remove after a killed write, and nothing else.
pub fn temporary_target(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(".tmp-")?;
    let (head, tail) = rest.split_at_checked(10)?;
    if head.bytes().all(|b| b.is_ascii_alphanumeric()) {
        if let Some(target) = tail.strip_prefix('-').filter(|t| !t.is_empty()) {
            return Some(target);
        }
    }
    let mut parts = rest.splitn(3, '-');
    let (pid, n, target) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n) && !target.is_empty()).then_some(target)
}

/// Syncs the temporary file, renames it over `path` and syncs the directory.
fn commit(dir: &Path, tmp: &Path, path: &Path) -> Result<()> {
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_error(tmp))?;
    std::fs::rename(tmp, path).map_err(io_error(path))?;
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    // Windows cannot open a directory as a file; its rename is durable on NTFS.
    Ok(())
}

/// Replaces `path` with what `write` produces at a temporary path in the same directory
/// (for writers that want a path, such as plotting backends): the temporary file is then
/// synced and renamed over `path`. On error, from `write` or from the commit, the
/// temporary file is removed and `path` is untouched. The directory must exist.
///
/// # Errors
/// `write`'s error, or [`Error::Io`] / [`Error::NotAFile`] converted into `E`.
pub fn replace_via_path<E: From<Error>>(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let (dir, tmp) = temporary_path(path)?;
    let result = write(&tmp).and_then(|()| commit(&dir, &tmp, path).map_err(E::from));
    match result {
        // Renamed over the destination: nothing left to remove.
        Ok(()) => {
            let _ = tmp.keep();
        }
        // Dropping the path removes the temporary file.
        Err(_) => drop(tmp),
    }
    result
}

/// Replaces `path` with what `write` writes into a new temporary file in the same
/// directory; see [`replace_via_path`]. The directory must exist.
///
/// # Errors
/// `write`'s error, or [`Error::Io`] / [`Error::NotAFile`] converted into `E`.
pub fn write_atomic_with<E: From<Error>>(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    replace_via_path(path, |tmp| {
        let mut file = File::options()
            .write(true)
            .truncate(true)
            .open(tmp)
            .map_err(|e| E::from(io_error(tmp)(e)))?;
        write(&mut file)?;
        file.flush().map_err(|e| E::from(io_error(tmp)(e)))
    })
}

/// Replaces `path` with `bytes` (a text's bytes, a PNG ...), atomically and durably; see
/// the crate documentation. The directory must exist.
///
/// # Errors
/// [`Error::Io`] naming the file, or the folder when it does not exist;
/// [`Error::NotAFile`].
pub fn write_atomic(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    let bytes = bytes.as_ref();
    write_atomic_with(path, |f| f.write_all(bytes).map_err(io_error(path)))
}

/// Replaces `path` with `value` as pretty-printed JSON and a final newline, atomically
/// ([`write_atomic`]). The directory must exist.
///
/// # Errors
/// [`Error::Json`] when `value` does not serialise; as [`write_atomic`].
pub fn write_json<T: serde::Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    write_atomic(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.json");
        write_atomic(&path, b"old").expect("first write");
        write_atomic(&path, b"new").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        assert_eq!(entries(dir.path()), ["a.json"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.safetensors");
        write_atomic(&path, b"complete").expect("write");
        let err = write_atomic_with(&path, |f| {
            f.write_all(b"half").map_err(io_error(&path))?;
            Err(Error::Safetensors {
                path: path.clone(),
                reason: "failed half way".into(),
            })
        })
        .expect_err("the writer failed");
        assert!(err.to_string().contains("failed half way"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), b"complete");
        assert_eq!(entries(dir.path()), ["model.safetensors"]);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing-dir").join("x.json");
        let err = write_atomic(&path, b"x").expect_err("no such directory");
        assert!(err.to_string().contains("missing-dir"), "{err}");
        let err = write_atomic(Path::new("/"), b"x").expect_err("not a file");
        assert!(matches!(err, Error::NotAFile { .. }), "{err}");
        let (path, source) = err.into_io();
        assert_eq!(path, Path::new("/"));
        assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_missing_folder_is_refused_by_name_and_not_created() {
        // One rule for every writer of the workspace: the destination's folder must
        // exist; the error names that folder (not a temporary file in it), as not found.
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("run");
        let path = missing.join("history.json");
        for err in [
            write_atomic(&path, b"x").expect_err("no folder"),
            write_json(&path, &[1, 2]).expect_err("no folder"),
            crate::safetensors::write(&path, &[], &Default::default()).expect_err("no folder"),
        ] {
            assert_eq!(err.path(), missing, "{err}");
            assert!(err.to_string().contains("folder does not exist"), "{err}");
            let (_, source) = err.into_io();
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        assert!(!missing.exists(), "the writer creates no folder");
    }

    #[test]
    fn json_is_pretty_with_a_final_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.json");
        write_json(&path, &serde_json::json!({"auc": 0.5})).expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\n  \"auc\": 0.5\n}\n"
        );
    }

    #[test]
    fn via_path_commits_what_the_writer_put_at_the_temporary_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plot.svg");
        replace_via_path(&path, |tmp: &Path| -> Result<()> {
            assert_eq!(tmp.parent(), Some(dir.path()), "same directory");
            assert_eq!(tmp.extension(), path.extension(), "the extension is kept");
            std::fs::write(tmp, b"<svg/>").map_err(io_error(tmp))
        })
        .expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"<svg/>");
        assert_eq!(entries(dir.path()), ["plot.svg"]);
    }

    #[test]
    fn a_link_planted_at_a_temporary_name_is_never_written_through() {
        // The writer's temporary names used to be `.tmp-<pid>-<n>-<name>`: a local user
        // who guessed them could plant links there and have the writer fill another file.
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"victim").expect("write");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        for n in 0..64 {
            let planted = out.join(format!(".tmp-{}-{n}-a.json", std::process::id()));
            std::os::unix::fs::symlink(&victim, planted).expect("symlink");
        }
        for _ in 0..8 {
            write_atomic(&out.join("a.json"), b"new").expect("write");
        }
        assert_eq!(std::fs::read(&victim).expect("read"), b"victim");
        assert_eq!(std::fs::read(out.join("a.json")).expect("read"), b"new");
        assert!(!std::fs::symlink_metadata(out.join("a.json"))
            .expect("meta")
            .file_type()
            .is_symlink());
    }

    #[test]
    fn temporary_names_are_recognised_and_nothing_else() {
        assert_eq!(
            temporary_target(".tmp-aB3dE5gH7j-best.safetensors"),
            Some("best.safetensors")
        );
        assert_eq!(temporary_target(".tmp-123-4-roc.png"), Some("roc.png"));
        for other in [
            ".tmp-",
            ".tmp-notes.txt",
            "x.tmp-1-2-y",
            ".tmp-12-a-b",
            ".tmp-abc-d",
        ] {
            assert_eq!(temporary_target(other), None, "{other}");
        }
    }

    #[test]
    fn concurrent_writers_of_one_file_never_leave_a_mixture() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("shared.bin");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 64 * 1024]).collect();
        std::thread::scope(|s| {
            for c in &contents {
                let path = &path;
                s.spawn(move || write_atomic(path, c).expect("write"));
            }
        });
        let got = std::fs::read(&path).expect("read");
        assert!(contents.contains(&got), "one writer's whole content");
        assert_eq!(entries(dir.path()), ["shared.bin"]);
    }
}

/// The entry points of the fuzz targets (`fuzz/`), shared with the tests that replay their
/// corpora on stable, so both exercise the same code.
#[doc(hidden)]
pub mod fuzz {
    use std::path::Path;

    /// Parses `data` as a safetensors file, and when it parses, reads every tensor as
    /// `f32` where its type allows: every result is acceptable but a panic.
    pub fn safetensors_parse(data: &[u8]) {
        let path = Path::new("fuzz-input.safetensors");
        let _ = crate::safetensors::parse_metadata(path, data);
        if let Ok(file) = crate::safetensors::parse(path, data) {
            for (_, t) in &file.tensors {
                let _ = t.to_f32();
            }
        }
    }
}

/// The text of an error and its causes for a person to read, each cause once: the
/// crates' errors put their cause's text in their own message *and* report it as their
/// `source()`, so this appends a cause only when the text so far does not already hold it
/// (`deepfake::error_text`, and the messages `df-detect` records).
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}
