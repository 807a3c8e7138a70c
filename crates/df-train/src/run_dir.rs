//! A run's output folder under faults: one writer at a time (an advisory lock held for
//! the whole run), a fresh run never silently replaces another run's files, a run removes
//! or replaces only files that a run recorded writing (`df_io::owned`), and the temporary
//! files a killed write of such a file left behind are removed when the next run starts.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use df_io::owned::Owned;

use crate::error::{config, io, Result};

/// The lock file inside a run folder.
pub const LOCK_FILE: &str = ".lock";

/// The files that make a folder a run folder (any one of them): the first seven of
/// [`RUN_OUTPUTS`].
pub const RUN_FILES: [&str; 7] = [
    RUN_OUTPUTS[0],
    RUN_OUTPUTS[1],
    RUN_OUTPUTS[2],
    RUN_OUTPUTS[3],
    RUN_OUTPUTS[4],
    RUN_OUTPUTS[5],
    RUN_OUTPUTS[6],
];

/// Every file a run writes at the top of its folder (the run files, then the data record,
/// the report's metrics, plots and skipped list): recorded in the folder's
/// `df_io::owned` record before the run writes any of them.
pub const RUN_OUTPUTS: [&str; 17] = [
    "experiment.json",
    "config.json",
    "history.json",
    "history.csv",
    "last.safetensors",
    "best.safetensors",
    "model.safetensors",
    crate::data_record::DATA_FILE,
    "history.png",
    "history.svg",
    "metrics.json",
    "roc.png",
    "pr.png",
    "calibration.png",
    "skipped.json",
    "report.md",
    crate::pseudo::LANDMARKS_FILE,
];

/// The program name a run records its files under.
pub const PROGRAM: &str = "deepfake run";

/// The exclusive lock on a run folder; released when dropped (or when the process ends,
/// however it ends: the operating system drops the lock with the file).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    dir: PathBuf,
}

impl RunLock {
    /// The locked folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// How a run may use a folder that already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reuse {
    /// Only an empty folder (or none): the default for a fresh run.
    #[default]
    Refuse,
    /// Continue the run there (`--resume`).
    Resume,
    /// Remove the run files there first (`--overwrite`).
    Overwrite,
}

/// Creates `dir` if needed and locks it for this process. The lock file is opened
/// without following a link (`O_NOFOLLOW`): a `.lock` planted as a symbolic link is
/// refused, naming it, and never created or locked through.
///
/// # Errors
/// [`crate::Error::Config`] (`out`) when another process holds the lock (two runs on one
/// folder would mix their files), when `dir` is a file, or when its `.lock` is a link; an
/// I/O error naming the folder.
pub fn lock(dir: &Path) -> Result<RunLock> {
    if dir.exists() && !dir.is_dir() {
        return Err(config(
            "out",
            format!(
                "{} is a file, not a folder: choose a folder for the run's files",
                dir.display()
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(LOCK_FILE);
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOFOLLOW (0o400000 on Linux): open fails with ELOOP on a link.
        options.custom_flags(O_NOFOLLOW);
    }
    let file = match options.open(&path) {
        Ok(f) => f,
        Err(e) if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) => {
            return Err(config(
                "out",
                format!(
                    "{} is a symbolic link; a run's lock file is never opened through a link \
                     ({e}): remove the link, or choose another output folder",
                    path.display()
                ),
            ))
        }
        Err(e) => return Err(io(&path)(e)),
    };
    if !file.metadata().map_err(io(&path))?.is_file() {
        return Err(config(
            "out",
            format!("{} is not a regular file; remove it", path.display()),
        ));
    }
    match file.try_lock() {
        Ok(()) => Ok(RunLock {
            _file: file,
            dir: dir.to_path_buf(),
        }),
        Err(TryLockError::WouldBlock) => Err(config(
            "out",
            format!(
                "{} is in use by another run (it holds {}); wait for it to end or choose \
                 another output folder",
                dir.display(),
                path.display()
            ),
        )),
        Err(TryLockError::Error(e)) => Err(io(&path)(e)),
    }
}

/// Linux's `O_NOFOLLOW` (the same value on x86-64 and aarch64).
#[cfg(unix)]
const O_NOFOLLOW: i32 = 0o400000;

/// The run files present in `dir`.
pub fn run_files(dir: &Path) -> Vec<PathBuf> {
    RUN_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect()
}

/// Checks `dir` for a run (`reuse`) and records the run's files in the folder's record
/// before any is written: a folder holding a run's files is refused unless resumed or
/// overwritten; with [`Reuse::Overwrite`] those files are removed, but only when a run
/// recorded writing them; a file among [`RUN_OUTPUTS`] that no run recorded (a file of
/// the user's that happens to be called `metrics.json`) is never replaced: the run is
/// refused, naming it. Call it holding the lock, after every option has been checked.
///
/// # Errors
/// [`crate::Error::Config`] (`out`) naming the folder and the file at fault; an I/O error
/// when a file cannot be removed or the record written.
pub fn prepare(lock: &RunLock, reuse: Reuse) -> Result<()> {
    let mut owned = check(lock.dir(), reuse)?;
    if reuse == Reuse::Overwrite {
        let names: Vec<PathBuf> = run_files(lock.dir())
            .iter()
            .filter_map(|p| p.file_name().map(PathBuf::from))
            .collect();
        owned.remove(&names)?;
    }
    owned.record(PROGRAM, RUN_OUTPUTS)?;
    Ok(())
}

/// The checks of [`prepare`], writing nothing: whether a run may use `dir` as `reuse`
/// says (a folder that does not exist yet may). Programs that start several runs call it
/// for each before the first starts.
///
/// # Errors
/// As [`prepare`].
pub fn check(dir: &Path, reuse: Reuse) -> Result<Owned> {
    if dir.exists() && !dir.is_dir() {
        return Err(config(
            "out",
            format!(
                "{} is a file, not a folder: choose a folder for the run's files",
                dir.display()
            ),
        ));
    }
    let present = run_files(dir);
    let owned = Owned::open(dir)?;
    match reuse {
        // The run's own folder: `resume_changes` read its experiment.json. A run from
        // before records existed is adopted.
        Reuse::Resume => {}
        Reuse::Refuse => {
            if let Some(file) = present.first() {
                return Err(config(
                    "out",
                    format!(
                        "{} already holds a run ({}): continue it with --resume, replace it \
                         with --overwrite, or choose another output folder",
                        dir.display(),
                        file.display()
                    ),
                ));
            }
        }
        Reuse::Overwrite => {
            for file in &present {
                if let Some(name) = file.file_name() {
                    owned.check_replaceable(name)?;
                }
            }
        }
    }
    if reuse != Reuse::Resume {
        for name in RUN_OUTPUTS {
            owned.check_replaceable(name)?;
        }
    }
    Ok(owned)
}

/// Removes the temporary files that interrupted writes of the run's files left in `dir`
/// (df-io's `.tmp-<random>-<name>`, and the older `.tmp-<pid>-<n>-<name>`, for a `<name>`
/// the folder's record lists), and returns them. Call it holding the lock, after
/// [`prepare`]: no other writer can own one then. Any other file is left alone.
///
/// # Errors
/// An I/O error naming the folder or the file.
pub fn remove_stale_temporaries(lock: &RunLock) -> Result<Vec<PathBuf>> {
    let dir = lock.dir();
    let owned = Owned::open(dir)?;
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = df_io::temporary_target(&name).is_some_and(|t| owned.is_recorded(t));
        if stale && entry.file_type().map_err(io(dir))?.is_file() {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io(&path))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}
