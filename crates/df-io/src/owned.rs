//! What a program may remove or replace in a folder: only the files it recorded, before
//! writing them, in the folder's record (`.deepfake-files.json`).
//!
//! A program that clears or replaces files (a demo's generated data, a run folder under
//! `--overwrite`, an evaluation's report) first reads the record: a file it is about to
//! remove or replace must be listed there, or the program refuses, naming the folder and
//! the file. Files are recorded *before* they are written, so a program killed half way
//! leaves nothing unrecorded behind it, and its next run can clear what it started.
//!
//! The record is plain JSON (`{"program": "...", "files": ["real/00000.png", ...]}`),
//! written atomically. Its paths are relative and are checked when read: a record naming
//! `..`, an absolute path, or a file behind a symbolic link to another folder removes
//! nothing outside the folder (such an entry is refused, naming it).
//!
//! ```
//! # mod deepfake { pub mod io { pub use df_io::*; } }
//! # fn main() -> Result<(), deepfake::io::Error> {
//! use deepfake::io::owned::Owned;
//! let dir = tempfile::tempdir().expect("temporary directory");
//! let mut owned = Owned::open(dir.path())?;
//! owned.record("demo", ["data/a.png"])?;
//! std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
//! deepfake::io::write_atomic(&dir.path().join("data/a.png"), b"png")?;
//! std::fs::write(dir.path().join("data/mine.txt"), b"not the program's").expect("write");
//! // Clearing refuses: the folder holds a file nobody recorded.
//! assert!(owned.clear("demo").is_err());
//! std::fs::remove_file(dir.path().join("data/mine.txt")).expect("rm");
//! owned.clear("demo")?;
//! assert!(!dir.path().join("data/a.png").exists());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use crate::{io_error, write_atomic, Error, Result};

/// The record's file name in the folder it describes.
pub const RECORD: &str = ".deepfake-files.json";

/// Names a folder may hold without being recorded: the record itself and a run's lock.
const ALWAYS_ALLOWED: [&str; 2] = [RECORD, ".lock"];

/// A folder and the files deepfake programs recorded writing into it.
#[derive(Debug, Clone)]
pub struct Owned {
    dir: PathBuf,
    programs: BTreeSet<String>,
    files: BTreeSet<PathBuf>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RecordFile {
    programs: Vec<String>,
    files: Vec<String>,
}

/// `rel` as a path inside the folder: relative, made only of plain names.
fn checked_relative(dir: &Path, rel: &Path) -> Result<PathBuf> {
    let plain =
        !rel.as_os_str().is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(rel.to_path_buf())
    } else {
        Err(Error::Ownership {
            dir: dir.to_path_buf(),
            file: rel.to_path_buf(),
            reason: "the record names a path outside the folder (absolute, or with `..`); \
                     the record is damaged or was edited"
                .into(),
        })
    }
}

impl Owned {
    /// Reads the record of `dir`; a folder without one (or no folder) has an empty record.
    ///
    /// # Errors
    /// [`Error::Io`] for a record that cannot be read, [`Error::Ownership`] for one that is
    /// not a record or names a path outside the folder.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(RECORD);
        let mut owned = Self {
            dir: dir.to_path_buf(),
            programs: BTreeSet::new(),
            files: BTreeSet::new(),
        };
        let text = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(owned),
            Err(e) => return Err(io_error(&path)(e)),
            Ok(m) if !m.is_file() => {
                return Err(Error::Ownership {
                    dir: dir.to_path_buf(),
                    file: PathBuf::from(RECORD),
                    reason: "the record is not a regular file (a link or a folder)".into(),
                })
            }
            Ok(_) => std::fs::read_to_string(&path).map_err(io_error(&path))?,
        };
        let record: RecordFile = serde_json::from_str(&text).map_err(|e| Error::Ownership {
            dir: dir.to_path_buf(),
            file: PathBuf::from(RECORD),
            reason: format!("not a record of written files: {e}"),
        })?;
        owned.programs = record.programs.into_iter().collect();
        for f in record.files {
            owned.files.insert(checked_relative(dir, Path::new(&f))?);
        }
        Ok(owned)
    }

    /// Opens the record of `dir`, checks that each of `files` may be written there (absent,
    /// or recorded), and records them as `program`'s: what a program calls before writing
    /// files with fixed names into a folder a user named.
    ///
    /// # Errors
    /// As [`Owned::check_replaceable`] and [`Owned::record`].
    pub fn claim<P: AsRef<Path>>(dir: &Path, program: &str, files: &[P]) -> Result<Self> {
        let mut owned = Self::open(dir)?;
        for f in files {
            owned.check_replaceable(f)?;
        }
        owned.record(program, files)?;
        Ok(owned)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The programs that recorded files here.
    pub fn programs(&self) -> impl Iterator<Item = &str> {
        self.programs.iter().map(String::as_str)
    }

    /// Whether `rel` (relative to the folder) is recorded.
    pub fn is_recorded(&self, rel: impl AsRef<Path>) -> bool {
        self.files.contains(rel.as_ref())
    }

    /// Records `files` (relative to the folder) as written by `program`, before they are
    /// written; the record is saved atomically. The folder is created if needed.
    ///
    /// # Errors
    /// [`Error::Ownership`] for a path that is not plainly inside the folder; an I/O error.
    pub fn record<P: AsRef<Path>>(
        &mut self,
        program: &str,
        files: impl IntoIterator<Item = P>,
    ) -> Result<()> {
        let mut changed = self.programs.insert(program.to_string());
        for f in files {
            changed |= self.files.insert(checked_relative(&self.dir, f.as_ref())?);
        }
        if changed || !self.dir.join(RECORD).exists() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        let record = RecordFile {
            programs: self.programs.iter().cloned().collect(),
            files: self
                .files
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&record).map_err(|e| Error::Ownership {
            dir: self.dir.clone(),
            file: PathBuf::from(RECORD),
            reason: e.to_string(),
        })?;
        text.push('\n');
        write_atomic(&self.dir.join(RECORD), text.as_bytes())
    }

    /// Checks that `rel` may be replaced: it is absent, or recorded. Call it before
    /// writing over a file whose name is fixed (a report, a plot).
    ///
    /// # Errors
    /// [`Error::Ownership`] naming the folder and the file when it exists unrecorded.
    pub fn check_replaceable(&self, rel: impl AsRef<Path>) -> Result<()> {
        let rel = rel.as_ref();
        let path = self.dir.join(rel);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path)(e)),
            Ok(m) if m.is_file() && self.files.contains(rel) => Ok(()),
            Ok(_) => Err(self.foreign(rel)),
        }
    }

    fn foreign(&self, rel: &Path) -> Error {
        Error::Ownership {
            dir: self.dir.clone(),
            file: rel.to_path_buf(),
            reason: format!(
                "no deepfake program recorded writing it (there is no entry for it in {}), \
                 so it is not replaced or removed; move it away or choose another folder",
                RECORD
            ),
        }
    }

    /// The entries under the folder (recursively, links not followed) that the record
    /// does not list, the record and a run's `.lock` excepted; folders count as recorded
    /// when a recorded file lies under them. Sorted; at most `limit`.
    ///
    /// # Errors
    /// An I/O error naming the folder that cannot be read.
    pub fn unrecorded(&self, limit: usize) -> Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        if !self.dir.exists() {
            return Ok(found);
        }
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let dir = self.dir.join(&rel);
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .map_err(io_error(&dir))?
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(io_error(&dir))?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let name = entry.file_name();
                if rel.as_os_str().is_empty()
                    && ALWAYS_ALLOWED.iter().any(|a| name.as_os_str() == *a)
                {
                    continue;
                }
                let child = rel.join(&name);
                let kind = entry.file_type().map_err(io_error(&entry.path()))?;
                if kind.is_dir() && self.files.iter().any(|f| f.starts_with(&child)) {
                    stack.push(child);
                } else if !(kind.is_file() && self.files.contains(&child)) {
                    found.push(child);
                    if found.len() >= limit {
                        found.sort();
                        return Ok(found);
                    }
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Removes every recorded file that is there (a regular file, or a link in its place,
    /// which is removed itself and never followed), then the folders under the folder that
    /// this leaves empty and that held recorded files; the record keeps `program` only
    /// and no file. Refuses, removing nothing, while the folder holds anything unrecorded.
    ///
    /// # Errors
    /// [`Error::Ownership`] naming the folder and the first unrecorded entry; an I/O error.
    pub fn clear(&mut self, program: &str) -> Result<()> {
        if let Some(first) = self.unrecorded(1)?.into_iter().next() {
            return Err(self.foreign(&first));
        }
        self.remove_recorded_files()?;
        self.files.clear();
        self.programs = BTreeSet::from([program.to_string()]);
        if self.dir.exists() {
            self.save()?;
        }
        Ok(())
    }

    /// Removes the recorded files in `rels` that are there (see [`Owned::clear`]); files
    /// there that are not recorded are refused, removing nothing.
    ///
    /// # Errors
    /// [`Error::Ownership`] naming the folder and the first unrecorded file; an I/O error.
    pub fn remove<P: AsRef<Path>>(&mut self, rels: impl IntoIterator<Item = P>) -> Result<()> {
        let rels: Vec<PathBuf> = rels.into_iter().map(|p| p.as_ref().to_path_buf()).collect();
        for rel in &rels {
            self.check_replaceable(rel)?;
        }
        for rel in &rels {
            self.remove_one(rel)?;
        }
        Ok(())
    }

    /// Removes `rel` when it is there, refusing a path through a linked folder.
    fn remove_one(&self, rel: &Path) -> Result<bool> {
        // Each folder on the way must be a real folder of this tree, not a link: a record
        // cannot lead the removal into another folder.
        let mut at = self.dir.clone();
        let parts: Vec<_> = rel.components().collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(io_error(&at)(e)),
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::Ownership {
                        dir: self.dir.clone(),
                        file: rel.to_path_buf(),
                        reason: "a folder on its path is a link or not a folder; nothing \
                                 behind it is removed"
                            .into(),
                    })
                }
            }
        }
        let path = self.dir.join(rel);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(&path)(e)),
            Ok(m) if m.is_dir() => Err(Error::Ownership {
                dir: self.dir.clone(),
                file: rel.to_path_buf(),
                reason: "recorded as a file, but it is a folder now; it is not removed".into(),
            }),
            Ok(_) => {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
                Ok(true)
            }
        }
    }

    fn remove_recorded_files(&self) -> Result<()> {
        let mut parents = BTreeSet::new();
        for rel in &self.files {
            self.remove_one(rel)?;
            let mut p = rel.parent();
            while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
                parents.insert(d.to_path_buf());
                p = d.parent();
            }
        }
        // Deepest first; a folder that still holds something stays.
        for d in parents.iter().rev() {
            let path = self.dir.join(d);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                let _ = std::fs::remove_dir(&path);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_removes_exactly_the_recorded_files_and_refuses_anything_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("data");
        let mut owned = Owned::open(&root).expect("open");
        owned
            .record("demo", ["real/0.png", "fake/0.png"])
            .expect("record");
        for f in ["real/0.png", "fake/0.png"] {
            std::fs::create_dir_all(root.join(f).parent().expect("io")).expect("io");
            std::fs::write(root.join(f), b"x").expect("io");
        }
        // A user's file among them: nothing is removed.
        std::fs::create_dir_all(root.join("x")).expect("io");
        std::fs::write(root.join("x/f.tex"), b"keep").expect("io");
        let err = Owned::open(&root)
            .expect("io")
            .clear("demo")
            .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("x") && text.contains("data"), "{text}");
        assert!(root.join("real/0.png").exists() && root.join("x/f.tex").exists());
        // Without it, the recorded files and their emptied folders go.
        std::fs::remove_dir_all(root.join("x")).expect("io");
        Owned::open(&root)
            .expect("io")
            .clear("demo")
            .expect("clear");
        assert!(!root.join("real").exists() && !root.join("fake").exists());
        assert!(root.join(RECORD).exists());
    }

    #[test]
    fn a_folder_without_a_record_is_never_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("real")).expect("io");
        std::fs::write(dir.path().join("real/a.png"), b"x").expect("io");
        let err = Owned::open(dir.path())
            .expect("io")
            .clear("demo")
            .expect_err("refused");
        assert!(matches!(err, Error::Ownership { .. }), "{err}");
        assert!(dir.path().join("real/a.png").exists());
        // An empty folder, or none, is fine.
        Owned::open(&dir.path().join("none"))
            .expect("io")
            .clear("demo")
            .expect("no folder");
    }

    #[test]
    fn an_edited_record_cannot_reach_outside_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).expect("io");
        std::fs::write(outside.join("f"), b"keep").expect("io");
        let root = dir.path().join("run");
        std::fs::create_dir_all(&root).expect("io");
        // `..` in the record is refused when read.
        std::fs::write(
            root.join(RECORD),
            r#"{"programs":["demo"],"files":["../outside/f"]}"#,
        )
        .expect("io");
        assert!(Owned::open(&root).is_err());
        // A recorded path through a linked folder removes nothing behind the link.
        std::os::unix::fs::symlink(&outside, root.join("sub")).expect("io");
        std::fs::write(
            root.join(RECORD),
            r#"{"programs":["demo"],"files":["sub/f"]}"#,
        )
        .expect("io");
        let mut owned = Owned::open(&root).expect("io");
        assert!(owned.remove(["sub/f"]).is_err());
        assert!(owned.clear("demo").is_err());
        assert!(outside.join("f").exists());
    }

    #[test]
    fn replacing_needs_a_record_of_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("metrics.json"), b"{}").expect("io");
        let mut owned = Owned::open(dir.path()).expect("io");
        assert!(owned.check_replaceable("metrics.json").is_err());
        assert!(owned.check_replaceable("roc.png").is_ok());
        owned.record("evaluate", ["metrics.json"]).expect("io");
        assert!(Owned::open(dir.path())
            .expect("io")
            .check_replaceable("metrics.json")
            .is_ok());
    }
}
