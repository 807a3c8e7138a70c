//! Opening the files users name, and telling whether an output path lies inside an input
//! folder.
//!
//! The workspace's one rule for reading a file a user named (an image, weights, a
//! manifest): only a regular file is opened, judged on what the path resolves to (a link
//! to `/dev/zero` is a character device, not an image). [`open_regular`] checks the
//! path's metadata before opening, so a device is never opened at all, then opens with
//! `O_NONBLOCK` (a FIFO cannot block the open: without a writer it would wait forever)
//! and checks the opened file's own metadata (`fstat`), so a path swapped between the
//! check and the open cannot slip through. Reading a FIFO or `/dev/zero` would otherwise
//! hang or fill the memory. The error names what the path is: "not a regular file (a
//! FIFO)", and can be recognised with [`is_not_regular`].
//!
//! [`is_inside`] compares canonical paths, so an output folder given as
//! `other/../in/faces`, or through a link to the input, is still found inside the input.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// The error inside the [`io::Error`] of [`open_regular`] for a path that is not a regular
/// file: says what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRegular {
    /// What the path is: "a FIFO", "a character device", "a folder" ...
    pub what: &'static str,
}

impl fmt::Display for NotRegular {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a regular file ({})", self.what)
    }
}

impl std::error::Error for NotRegular {}

/// What `meta` describes, in words: "a regular file", "a folder", "a FIFO", "a character
/// device", "a block device", "a socket", "a symbolic link".
pub fn file_kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        return "a regular file";
    }
    if t.is_dir() {
        return "a folder";
    }
    if t.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

/// `None` for a regular file, else the error [`open_regular`] gives for it
/// (`InvalidInput`, holding a [`NotRegular`]).
pub fn not_regular(meta: &Metadata) -> Option<io::Error> {
    (!meta.is_file()).then(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            NotRegular {
                what: file_kind(meta),
            },
        )
    })
}

/// Whether `error` is [`open_regular`]'s refusal of a path that is not a regular file.
pub fn is_not_regular(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<NotRegular>())
}

/// Opens the regular file at `path` (following links) for reading; refuses anything else
/// without blocking or reading from it. See the module documentation.
///
/// # Errors
/// The OS error of `stat` or `open` (`NotFound` ...), or `InvalidInput` holding a
/// [`NotRegular`] ("not a regular file (a FIFO)") for a folder, FIFO, device or socket.
/// The error does not name the path: the caller adds it.
pub fn open_regular(path: &Path) -> io::Result<File> {
    // What the path resolves to, before opening: a device is never opened (opening one
    // can have effects of its own).
    if let Some(e) = not_regular(&std::fs::metadata(path)?) {
        return Err(e);
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO put in the file's place since the check cannot block the open; on a
        // regular file O_NONBLOCK changes nothing. Never a controlling terminal.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path)?;
    // What was opened: the check above may be out of date.
    if let Some(e) = not_regular(&file.metadata()?) {
        return Err(e);
    }
    Ok(file)
}

/// The whole content of the regular file at `path` ([`open_regular`], then read to the
/// end).
///
/// # Errors
/// Those of [`open_regular`], and read errors.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_regular(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The content of the regular file at `path` as UTF-8 text ([`read_regular`]).
///
/// # Errors
/// Those of [`read_regular`]; `InvalidData` for content that is not UTF-8.
pub fn read_regular_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read_regular(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the file is not UTF-8 text"))
}

/// The canonical form of `path`, which need not exist yet: its longest existing part is
/// resolved (links, `.`, `..`) and the rest appended as a folder creation would make it
/// (`new/../x` is `x`).
///
/// # Errors
/// The current directory cannot be read (for a relative path); a part that exists cannot
/// be resolved (permissions).
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut resolved = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => resolved.push(component.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => {
                let next = resolved.join(name);
                resolved = match std::fs::symlink_metadata(&next) {
                    // Exists (a link to nothing stays as written).
                    Ok(_) => std::fs::canonicalize(&next).unwrap_or(next),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => next,
                    Err(e) => return Err(e),
                };
            }
        }
    }
    Ok(resolved)
}

/// Whether `path` (which need not exist yet) is `dir` or lies inside it, comparing
/// canonical paths ([`resolve`]): `other/../in/out` and `link-to-in/out` are inside `in`.
/// A `dir` that does not exist holds nothing.
///
/// # Errors
/// Those of [`resolve`] and of canonicalising `dir` (other than its absence).
pub fn is_inside(path: &Path, dir: &Path) -> io::Result<bool> {
    let dir = match std::fs::canonicalize(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(resolve(path)?.starts_with(dir))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Makes a FIFO at `path` with the system's `mkfifo`.
    pub(crate) fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("running mkfifo");
        assert!(status.success(), "mkfifo {}", path.display());
    }

    /// `f(path)` in a thread; if it has not returned after a generous wait (it is blocked
    /// on the FIFO at `path`), the FIFO is opened for writing and closed, which lets it
    /// return, and the test fails instead of hanging.
    fn without_blocking_on<T: Send + 'static>(
        path: &Path,
        f: impl FnOnce(&Path) -> T + Send + 'static,
    ) -> T {
        let (send, receive) = mpsc::channel();
        let owned = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = send.send(f(&owned));
        });
        match receive.recv_timeout(Duration::from_secs(20)) {
            Ok(v) => v,
            Err(_) => {
                let _ = std::fs::OpenOptions::new().write(true).open(path);
                panic!("blocked on the FIFO {}", path.display());
            }
        }
    }

    fn refusal(e: &io::Error) -> String {
        assert!(is_not_regular(e), "not the not-a-regular-file refusal: {e}");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        e.to_string()
    }

    #[test]
    fn a_regular_file_and_a_link_to_one_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.bin");
        std::fs::write(&path, b"content").expect("write");
        symlink(&path, dir.path().join("link.bin")).expect("link");
        assert_eq!(read_regular(&path).expect("read"), b"content");
        assert_eq!(
            read_regular(&dir.path().join("link.bin")).expect("read"),
            b"content"
        );
        assert_eq!(
            read_regular_to_string(&path).expect("text"),
            "content".to_string()
        );
        let missing = read_regular(&dir.path().join("missing")).expect_err("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(!is_not_regular(&missing));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("p.jpg");
        mkfifo(&fifo);
        let err = without_blocking_on(&fifo, read_regular).expect_err("a FIFO");
        assert_eq!(refusal(&err), "not a regular file (a FIFO)");
        let err = without_blocking_on(&fifo, |p| open_regular(p).map(drop)).expect_err("a FIFO");
        assert_eq!(refusal(&err), "not a regular file (a FIFO)");
    }

    #[test]
    fn a_device_and_a_link_to_one_are_refused_unread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zero = dir.path().join("z.jpg");
        symlink("/dev/zero", &zero).expect("link");
        for path in [Path::new("/dev/zero"), &zero] {
            let err = read_regular(path).expect_err("a device");
            assert_eq!(refusal(&err), "not a regular file (a character device)");
        }
    }

    #[test]
    fn a_folder_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read_regular(dir.path()).expect_err("a folder");
        assert_eq!(refusal(&err), "not a regular file (a folder)");
    }

    #[test]
    fn inside_compares_canonical_paths_of_outputs_that_may_not_exist() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let input = root.join("in");
        std::fs::create_dir_all(input.join("real")).expect("dirs");
        std::fs::create_dir_all(root.join("other")).expect("dirs");
        symlink(&input, root.join("link")).expect("link");
        for (out, inside) in [
            (input.join("faces"), true),
            (input.clone(), true),
            (input.join("real/run/deeper"), true),
            (root.join("other/../in/faces"), true),
            (root.join("new/../in/faces"), true),
            (root.join("link/faces"), true),
            (root.join("link"), true),
            (root.join("link/../other/x"), false), // `link/..` is the link's target's parent
            (root.join("input-beside"), false),
            (root.join("other/faces"), false),
            (root.join("in2"), false),
        ] {
            assert_eq!(
                is_inside(&out, &input).expect("resolves"),
                inside,
                "{}",
                out.display()
            );
        }
        // An input reached through the link; an input that does not exist.
        assert!(is_inside(&input.join("x"), &root.join("link")).expect("resolves"));
        assert!(!is_inside(&input, &root.join("missing")).expect("resolves"));
    }
}
