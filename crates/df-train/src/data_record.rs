//! The data a run trains on, recorded in its folder (`data.json`): each set's files
//! (relative to the set's folder) with their sizes, their count and a digest. A resumed
//! run whose files differ (added, removed, or a different size) is refused, naming what
//! changed: the validation split and the epochs' order depend on the file list, so a
//! resume on other files would silently train and validate on another set.

use std::collections::BTreeMap;
use std::path::Path;

use df_data::ImageFolder;
use serde::{Deserialize, Serialize};

use crate::error::{config, io, Result};

/// The record's file name in a run folder.
pub const DATA_FILE: &str = "data.json";

/// One set's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    /// How many files.
    pub count: usize,
    /// FNV-1a (64 bit) of the sorted `name\tsize\n` lines, in hex.
    pub digest: String,
    /// Each file, relative to the set's folder, with its size in bytes.
    pub files: BTreeMap<String, u64>,
}

/// The training set and the validation set of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The files trained on.
    pub train: FileList,
    /// The files validated on, if any.
    pub val: Option<FileList>,
}

fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl FileList {
    /// The files of `set` and their sizes now.
    ///
    /// # Errors
    /// An I/O error naming a file whose size cannot be read.
    pub fn of(set: &ImageFolder) -> Result<Self> {
        let root = set.root();
        let mut files = BTreeMap::new();
        for s in set.samples() {
            let size = std::fs::metadata(&s.path).map_err(io(&s.path))?.len();
            let rel = s.path.strip_prefix(root).unwrap_or(&s.path);
            files.insert(rel.to_string_lossy().into_owned(), size);
        }
        let mut h = 0xcbf2_9ce4_8422_2325;
        for (name, size) in &files {
            h = fnv1a(format!("{name}\t{size}\n").as_bytes(), h);
        }
        Ok(Self {
            count: files.len(),
            digest: format!("{h:016x}"),
            files,
        })
    }

    /// What changed from `before` to `self`, or `None` when nothing did.
    pub fn changes_from(&self, before: &FileList) -> Option<String> {
        if self.digest == before.digest && self.count == before.count {
            return None;
        }
        let added: Vec<&str> = self
            .files
            .keys()
            .filter(|k| !before.files.contains_key(*k))
            .map(String::as_str)
            .collect();
        let removed: Vec<&str> = before
            .files
            .keys()
            .filter(|k| !self.files.contains_key(*k))
            .map(String::as_str)
            .collect();
        let resized: Vec<&str> = self
            .files
            .iter()
            .filter(|(k, size)| before.files.get(*k).is_some_and(|b| b != *size))
            .map(|(k, _)| k.as_str())
            .collect();
        let part = |n: &str, list: &[&str]| -> Option<String> {
            (!list.is_empty()).then(|| {
                let shown: Vec<String> = list.iter().take(3).map(|f| format!("{f:?}")).collect();
                let more = if list.len() > 3 { ", ..." } else { "" };
                format!("{} {n} ({}{more})", list.len(), shown.join(", "))
            })
        };
        let parts: Vec<String> = [
            part("added", &added),
            part("removed", &removed),
            part("of another size", &resized),
        ]
        .into_iter()
        .flatten()
        .collect();
        Some(format!(
            "{} files then, {} now: {}",
            before.count,
            self.count,
            if parts.is_empty() {
                "the list differs".to_string()
            } else {
                parts.join(", ")
            }
        ))
    }
}

impl DataRecord {
    /// The record of a run's sets now.
    ///
    /// # Errors
    /// As [`FileList::of`].
    pub fn of(train: &ImageFolder, val: Option<&ImageFolder>) -> Result<Self> {
        Ok(Self {
            train: FileList::of(train)?,
            val: val.map(FileList::of).transpose()?,
        })
    }

    /// Refuses a resume on data that differ from the record in `dir` (a run from before
    /// the record existed is not checked).
    ///
    /// # Errors
    /// [`crate::Error::Config`] (`resume`) naming the set and what changed; an unreadable
    /// record.
    pub fn check_resume(&self, dir: &Path) -> Result<()> {
        let path = dir.join(DATA_FILE);
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            other => other.map_err(io(&path))?,
        };
        let stored: DataRecord = serde_json::from_str(&text).map_err(|e| crate::Error::Json {
            path: path.clone(),
            source: e,
        })?;
        let mut changes = Vec::new();
        if let Some(c) = self.train.changes_from(&stored.train) {
            changes.push(format!("the training set: {c}"));
        }
        match (&stored.val, &self.val) {
            (Some(b), Some(a)) => {
                if let Some(c) = a.changes_from(b) {
                    changes.push(format!("the validation set: {c}"));
                }
            }
            (None, None) => {}
            _ => {
                changes.push("the validation set: there was one and is none, or the reverse".into())
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        Err(config(
            "resume",
            format!(
                "the data differ from the run in {} ({}): {}; a resumed run must train on \
                 the files it started on: restore them, or start a new run (another \
                 folder, or --overwrite)",
                dir.display(),
                path.display(),
                changes.join("; ")
            ),
        ))
    }
}
