//! Walking image folders safely: every real directory is read once and every file is
//! admitted once, whatever symbolic links point where (`self -> .`, `up -> ..`, two links
//! to one file, a link from one class folder into another), so a link loop cannot make a
//! walk endless and a file cannot be counted twice, sit in two classes, or be both a
//! training and a validation image.
//!
//! Only regular files are admitted: a FIFO, a device or a socket, or a link to one (`z.jpg
//! -> /dev/zero`), is listed as skipped with what it is ("not a regular file: a FIFO"),
//! never opened (a FIFO blocks its reader, `/dev/zero` never ends).
//!
//! A file reached without any link is admitted under that path first; a path through a
//! link (a linked file, or a file under a linked directory) is admitted only when the file
//! was not reached otherwise. So `fake/x.png -> ../real/r.png` leaves `r.png` in `real`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::skip::{SkipReason, SkipReport};

/// A file left out because it is not a regular file (a FIFO, a device, a socket, or a
/// link to one; `meta` describes what the path resolves to): reading it could block
/// forever or never end (`/dev/zero`).
fn not_regular(path: PathBuf, meta: &std::fs::Metadata) -> SkipReport {
    SkipReport {
        reason: SkipReason::NotRegular(df_io::file::file_kind(meta).to_string()),
        path,
    }
}

/// Files found by a [`Walker`] under one root, and what it left out there.
#[derive(Debug, Default)]
pub struct Walked {
    /// The files admitted, sorted by path.
    pub files: Vec<PathBuf>,
    /// Files left out: another path to a file already admitted, a link to nothing, a file
    /// that is not a regular file (a FIFO, a device).
    pub skipped: Vec<SkipReport>,
}

/// A file found while walking, before admission.
struct Found {
    path: PathBuf,
    /// Which root it was found under.
    root: usize,
    /// Reached through a symbolic link (the file itself or a directory above it).
    via_link: bool,
}

/// Walks directory trees, remembering across calls which directories it has read and
/// which files it has admitted (by canonical path).
#[derive(Debug, Default)]
pub struct Walker {
    follow_links: bool,
    /// Canonical directories read so far.
    dirs: HashSet<PathBuf>,
    /// Canonical path of each admitted file → the path it was admitted under.
    files: HashMap<PathBuf, PathBuf>,
}

impl Walker {
    /// A walker; `follow_links` follows symbolic links to directories (each real
    /// directory is still read at most once).
    pub fn new(follow_links: bool) -> Self {
        Self {
            follow_links,
            ..Self::default()
        }
    }

    /// Walks `root` (a directory), skipping hidden entries; see [`Walker::walk_all`].
    ///
    /// # Errors
    /// As [`Walker::walk_all`].
    pub fn walk(&mut self, root: &Path) -> Result<Walked> {
        Ok(self.walk_all(&[root])?.pop().unwrap_or_default())
    }

    /// Walks every root (directories), skipping hidden entries, and returns for each the
    /// files not admitted before, sorted. Files reached without a link are admitted before
    /// those reached through one, across all the roots.
    ///
    /// # Errors
    /// [`Error::Io`] naming a directory that cannot be read.
    pub fn walk_all(&mut self, roots: &[&Path]) -> Result<Vec<Walked>> {
        let mut found = Vec::new();
        let mut skipped: Vec<Vec<SkipReport>> = roots.iter().map(|_| Vec::new()).collect();
        let mut linked_dirs = Vec::new();
        for (i, root) in roots.iter().enumerate() {
            self.read_dir(
                root,
                i,
                false,
                &mut found,
                &mut linked_dirs,
                &mut skipped[i],
            )?;
        }
        // Linked directories after every real one, so a link never claims a real file
        // first; links found inside them join the queue.
        while !linked_dirs.is_empty() {
            for (dir, i) in std::mem::take(&mut linked_dirs) {
                self.read_dir(&dir, i, true, &mut found, &mut linked_dirs, &mut skipped[i])?;
            }
        }
        found.sort_by(|a, b| (a.via_link, a.root, &a.path).cmp(&(b.via_link, b.root, &b.path)));
        let mut out: Vec<Walked> = skipped
            .into_iter()
            .map(|skipped| Walked {
                files: Vec::new(),
                skipped,
            })
            .collect();
        for f in found {
            self.admit(f.path, &mut out[f.root]);
        }
        for w in &mut out {
            w.files.sort();
        }
        Ok(out)
    }

    /// Admits one file given by name (not walked): the same rules as for walked files.
    pub fn file(&mut self, path: &Path) -> Walked {
        let mut out = Walked::default();
        self.admit(path.to_path_buf(), &mut out);
        out
    }

    fn admit(&mut self, path: PathBuf, out: &mut Walked) {
        let canonical = match std::fs::canonicalize(&path) {
            Ok(c) => c,
            Err(e) => {
                out.skipped.push(SkipReport {
                    reason: SkipReason::Unreadable(format!("cannot resolve the path: {e}")),
                    path,
                });
                return;
            }
        };
        match self.files.get(&canonical) {
            Some(first) => out.skipped.push(SkipReport {
                reason: SkipReason::Duplicate(first.clone()),
                path,
            }),
            None => {
                self.files.insert(canonical, path.clone());
                out.files.push(path);
            }
        }
    }

    /// Reads `dir` and the real directories below it once each; linked directories are
    /// queued in `linked_dirs`.
    fn read_dir(
        &mut self,
        dir: &Path,
        root: usize,
        via_link: bool,
        found: &mut Vec<Found>,
        linked_dirs: &mut Vec<(PathBuf, usize)>,
        skipped: &mut Vec<SkipReport>,
    ) -> Result<()> {
        let canonical = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        if !self.dirs.insert(canonical) {
            return Ok(()); // read already: a link loop or a second link to it
        }
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue; // removed while walking
            };
            if meta.is_dir() {
                self.read_dir(&path, root, via_link, found, linked_dirs, skipped)?;
            } else if meta.file_type().is_symlink() {
                match std::fs::metadata(&path) {
                    Ok(target) if target.is_dir() => {
                        if self.follow_links {
                            linked_dirs.push((path, root));
                        }
                    }
                    Ok(target) if !target.is_file() => skipped.push(not_regular(path, &target)),
                    Ok(_) => found.push(Found {
                        path,
                        root,
                        via_link: true,
                    }),
                    Err(e) => skipped.push(SkipReport {
                        reason: SkipReason::Unreadable(format!("a link to nothing: {e}")),
                        path,
                    }),
                }
            } else if !meta.is_file() {
                skipped.push(not_regular(path, &meta));
            } else {
                found.push(Found {
                    path,
                    root,
                    via_link,
                });
            }
        }
        Ok(())
    }
}
