//! A run's output folder under faults: one writer at a time (an advisory lock held for
//! the whole run), a fresh run never silently replaces another run's files, and the
//! temporary files a killed write left behind are removed when the next run starts.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{config, io, Result};

/// The lock file inside a run folder.
pub const LOCK_FILE: &str = ".lock";

/// The files that make a folder a run folder (any one of them).
pub const RUN_FILES: [&str; 7] = [
    "experiment.json",
    "config.json",
    "history.json",
    "history.csv",
    "last.safetensors",
    "best.safetensors",
    "model.safetensors",
];

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

/// Creates `dir` if needed and locks it for this process.
///
/// # Errors
/// [`crate::Error::Config`] (`out`) when another process holds the lock (two runs on one
/// folder would mix their files); an I/O error naming the folder.
pub fn lock(dir: &Path) -> Result<RunLock> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
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

/// The run files present in `dir`.
pub fn run_files(dir: &Path) -> Vec<PathBuf> {
    RUN_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect()
}

/// Checks `dir` for a fresh run (`reuse`): a folder holding a run's files is refused
/// unless resumed or overwritten; with [`Reuse::Overwrite`] those files are removed.
/// Call it holding the lock, after every option has been checked.
///
/// # Errors
/// [`crate::Error::Config`] (`out`) naming the folder and a file of the run in it; an I/O
/// error when a file cannot be removed.
pub fn prepare(lock: &RunLock, reuse: Reuse) -> Result<()> {
    let dir = lock.dir();
    let present = run_files(dir);
    match reuse {
        Reuse::Resume => Ok(()),
        Reuse::Refuse => match present.first() {
            None => Ok(()),
            Some(file) => Err(config(
                "out",
                format!(
                    "{} already holds a run ({}): continue it with --resume, replace it with \
                     --overwrite, or choose another output folder",
                    dir.display(),
                    file.display()
                ),
            )),
        },
        Reuse::Overwrite => {
            for file in present {
                std::fs::remove_file(&file).map_err(io(&file))?;
            }
            Ok(())
        }
    }
}

/// Removes the temporary files that interrupted writes left in `dir` (df-io's
/// `.tmp-<pid>-<n>-<name>` and the older `<name>.tmp-<pid>`), and returns them. Call it
/// holding the lock: no other writer can own one then.
///
/// # Errors
/// An I/O error naming the folder or the file.
pub fn remove_stale_temporaries(lock: &RunLock) -> Result<Vec<PathBuf>> {
    let dir = lock.dir();
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = name.starts_with(".tmp-") || name.contains(".tmp-");
        if stale && entry.file_type().map_err(io(dir))?.is_file() {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io(&path))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}
