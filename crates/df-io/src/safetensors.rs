//! Safetensors files: named tensors as little-endian bytes plus string metadata.
//!
//! The one reader and writer of the workspace: df-models' checkpoints and df-train's
//! training state both go through [`fn@write`] and [`read`] / [`parse`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use ::safetensors::tensor::{SafeTensors, View};
pub use ::safetensors::Dtype;

use crate::{io_error, Error, Result};

/// One tensor: element type, shape and its elements' bytes (little-endian, row-major).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorBytes {
    /// The element type.
    pub dtype: Dtype,
    /// The shape.
    pub shape: Vec<usize>,
    /// `shape`'s product × the element size bytes.
    pub data: Vec<u8>,
}

impl TensorBytes {
    /// A float32 tensor from its values.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> TensorBytes {
        TensorBytes {
            dtype: Dtype::F32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The values of a float32 tensor, or `None` for another type.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        (self.dtype == Dtype::F32).then(|| {
            self.data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
    }
}

impl View for &TensorBytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// A safetensors file read whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SafetensorsFile {
    /// The tensors, by name, in the file's (name-sorted) order.
    pub tensors: Vec<(String, TensorBytes)>,
    /// The `__metadata__` entries (empty when the file has none).
    pub metadata: HashMap<String, String>,
}

/// The metadata key holding the checksum of the tensors' data, which [`to_bytes`] adds
/// and [`parse`] verifies (and removes from the metadata it returns).
pub const CHECKSUM_KEY: &str = "data_crc32";

/// CRC-32 (IEEE) of the tensors' bytes, in name order, as 8 hexadecimal digits: a damaged
/// byte anywhere in the data changes it (CRC-32 catches every burst of up to 32 bits).
fn checksum<'a>(tensors: impl Iterator<Item = (&'a String, &'a [u8])>) -> String {
    let mut sorted: Vec<(&String, &[u8])> = tensors.collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = crc32fast::Hasher::new();
    for (name, data) in sorted {
        hasher.update(name.as_bytes());
        hasher.update(data);
    }
    format!("{:08x}", hasher.finalize())
}

/// Serialises `tensors` with `metadata` and the data's checksum ([`CHECKSUM_KEY`]).
/// `path` only names the file in errors.
///
/// # Errors
/// [`Error::Safetensors`]: a tensor whose bytes do not match its shape and type.
pub fn to_bytes(
    path: &Path,
    tensors: &[(String, TensorBytes)],
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    for (name, t) in tensors {
        let expected = t.shape.iter().product::<usize>() * t.dtype.size();
        if t.data.len() != expected {
            return Err(Error::Safetensors {
                path: path.to_path_buf(),
                reason: format!(
                    "tensor `{name}` of shape {:?} and type {:?} needs {expected} bytes, has {}",
                    t.shape,
                    t.dtype,
                    t.data.len()
                ),
            });
        }
    }
    let mut metadata = metadata.clone();
    metadata.insert(
        CHECKSUM_KEY.to_owned(),
        checksum(tensors.iter().map(|(n, t)| (n, &t.data[..]))),
    );
    let meta = Some(metadata);
    ::safetensors::tensor::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), &meta).map_err(
        |e| Error::Safetensors {
            path: path.to_path_buf(),
            reason: format!("serialising: {e}"),
        },
    )
}

/// Writes `tensors` and `metadata` to `path` atomically ([`crate::write_atomic`]).
///
/// # Errors
/// Those of [`to_bytes`] and [`crate::write_atomic`].
pub fn write(
    path: &Path,
    tensors: &[(String, TensorBytes)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    crate::write_atomic(path, &to_bytes(path, tensors, metadata)?)
}

/// The metadata of safetensors `bytes` (from `path`, named in errors), without copying
/// the tensors.
///
/// # Errors
/// [`Error::Safetensors`] for bytes that are not safetensors.
pub fn parse_metadata(path: &Path, bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| not_safetensors(path, e))?;
    let mut metadata = header.metadata().clone().unwrap_or_default();
    metadata.remove(CHECKSUM_KEY);
    Ok(metadata)
}

/// The tensors and metadata of safetensors `bytes` (from `path`, named in errors),
/// verified against the data checksum when the file has one (files written by
/// [`to_bytes`]; files of other writers have none).
///
/// # Errors
/// [`Error::Safetensors`] for bytes that are not safetensors, or whose tensor data do not
/// match their checksum (a damaged file).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<SafetensorsFile> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| not_safetensors(path, e))?;
    let stored = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CHECKSUM_KEY).cloned());
    let metadata = parse_metadata(path, bytes)?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| not_safetensors(path, e))?;
    let mut tensors: Vec<(String, TensorBytes)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let t = TensorBytes {
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                data: view.data().to_vec(),
            };
            (name, t)
        })
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(stored) = stored {
        let computed = checksum(tensors.iter().map(|(n, t)| (n, &t.data[..])));
        if computed != stored {
            return Err(Error::Safetensors {
                path: path.to_path_buf(),
                reason: format!(
                    "the file is damaged: its tensor data do not match their checksum \
                     ({CHECKSUM_KEY} {stored} stored, {computed} computed); restore it from \
                     a copy or retrain"
                ),
            });
        }
    }
    Ok(SafetensorsFile { tensors, metadata })
}

/// Reads the safetensors file at `path`, a regular file ([`crate::read_regular`]).
///
/// # Errors
/// [`Error::Io`] (also for a FIFO, a device or a folder: "not a regular file (a FIFO)");
/// [`Error::Safetensors`] for a file that is not safetensors.
pub fn read(path: &Path) -> Result<SafetensorsFile> {
    parse(path, &crate::read_regular(path).map_err(io_error(path))?)
}

fn not_safetensors(path: &Path, e: ::safetensors::SafeTensorError) -> Error {
    use ::safetensors::SafeTensorError as E;
    let why = match e {
        E::HeaderTooLarge | E::HeaderTooSmall | E::InvalidHeaderLength => {
            "its header length is impossible (truncated, or another kind of file)".to_string()
        }
        E::InvalidHeader | E::InvalidHeaderStart | E::InvalidHeaderDeserialization => {
            "its header is not the JSON a safetensors file starts with".to_string()
        }
        E::JsonError(e) => format!("its header is not valid JSON ({e})"),
        E::TensorInvalidInfo | E::InvalidOffset(_) | E::MetadataIncompleteBuffer => {
            "a tensor's place in the file is wrong: the file is truncated or damaged".to_string()
        }
        E::InvalidTensorView(dtype, shape, bytes) => format!(
            "a tensor of type {dtype:?} and shape {shape:?} does not match its {bytes} bytes"
        ),
        E::ValidationOverflow => "a tensor's declared size overflows".to_string(),
        E::TensorNotFound(name) => format!("tensor `{name}` is missing"),
        E::IoError(e) => format!("reading it failed ({e})"),
    };
    Error::Safetensors {
        path: path.to_path_buf(),
        reason: format!("not a safetensors file (or a damaged one): {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_data_byte_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.safetensors");
        let tensors = vec![(
            "w".to_owned(),
            TensorBytes::from_f32(vec![4], &[1.0, 2.0, 3.0, 4.0]),
        )];
        write(&path, &tensors, &HashMap::new()).expect("write");
        let mut bytes = std::fs::read(&path).expect("read");
        read(&path).expect("intact");
        let last = bytes.len() - 2; // inside the last value
        bytes[last] ^= 0x10;
        std::fs::write(&path, &bytes).expect("damage");
        let err = read(&path).expect_err("damaged");
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn round_trip_with_metadata() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.safetensors");
        let tensors = vec![
            (
                "b.weight".to_owned(),
                TensorBytes::from_f32(vec![2, 3], &[1.0, -2.5, 3.0, 0.0, 1e-8, 7.0]),
            ),
            (
                "a.step".to_owned(),
                TensorBytes {
                    dtype: Dtype::I64,
                    shape: vec![],
                    data: 42i64.to_le_bytes().to_vec(),
                },
            ),
        ];
        let metadata = HashMap::from([("format".to_owned(), "x".to_owned())]);
        write(&path, &tensors, &metadata).expect("write");
        let file = read(&path).expect("read");
        assert_eq!(file.metadata, metadata);
        let mut want = tensors.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(file.tensors, want);
        assert_eq!(
            file.tensors[1].1.to_f32().expect("f32"),
            [1.0, -2.5, 3.0, 0.0, 1e-8, 7.0]
        );
        assert_eq!(file.tensors[0].1.to_f32(), None);
    }

    #[test]
    fn a_tensor_whose_bytes_do_not_match_its_shape_is_refused_and_nothing_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.safetensors");
        let bad = vec![(
            "w".to_owned(),
            TensorBytes {
                dtype: Dtype::F32,
                shape: vec![3],
                data: vec![0; 8],
            },
        )];
        let err = write(&path, &bad, &HashMap::new()).expect_err("bad bytes");
        assert!(err.to_string().contains("`w`"), "{err}");
        assert!(!path.exists());
    }

    /// Weights that are a FIFO or a link to `/dev/zero` (issue 22, point 4) are refused,
    /// naming the file, without blocking or reading: they used to hang, or read 4.5 GB
    /// before running out of memory.
    #[cfg(unix)]
    #[test]
    fn weights_that_are_not_a_regular_file_are_refused_unread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zero = dir.path().join("zero.safetensors");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("link");
        let fifo = dir.path().join("w.safetensors");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        for (path, what) in [(&zero, "a character device"), (&fifo, "a FIFO")] {
            let (send, receive) = std::sync::mpsc::channel();
            let owned = path.clone();
            std::thread::spawn(move || send.send(read(&owned).map(|_| ())));
            let result = receive.recv_timeout(std::time::Duration::from_secs(20));
            if result.is_err() {
                // Blocked on the FIFO: a writer that closes at once lets it return.
                let _ = std::fs::OpenOptions::new().write(true).open(path);
            }
            let err = result
                .expect("read returns without blocking")
                .expect_err("not a regular file");
            let text = err.to_string();
            assert!(
                text.contains(&*path.to_string_lossy())
                    && text.contains(&format!("not a regular file ({what})")),
                "{text}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_safetensors_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, b"hello").expect("write");
        let err = read(&path).expect_err("not safetensors");
        assert!(
            err.to_string().contains("notes.txt") && err.to_string().contains("not a safetensors"),
            "{err}"
        );
    }
}
