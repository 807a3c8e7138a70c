//! Files the trainer writes: atomic replacement (temporary file, `fsync`, rename) and
//! safetensors with string metadata.
//!
//! A reader of a checkpoint path sees either the previous complete file or the new
//! complete file, never a partial one, even when the process is killed mid-write: the
//! bytes go to a temporary file in the same directory, which is synced and then renamed
//! over the target (an atomic replacement on POSIX file systems).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, View};
use tch::{Device, Kind, Tensor};

use crate::error::{checkpoint, io, torch, Result};

/// Writes `path` atomically: `write` fills a temporary file next to it, which is synced
/// and renamed over `path`. On error the temporary file is removed and `path` is left as
/// it was.
///
/// # Errors
/// Any I/O error (naming the file), or the error `write` returns.
pub fn atomic_write(path: &Path, write: impl FnOnce(&mut fs::File) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| String::from("checkpoint"));
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
        write(&mut file)?;
        file.flush().map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io(path))?;
        // Make the rename itself durable; not every platform can open a directory.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path` atomically (see [`atomic_write`]).
///
/// # Errors
/// Any I/O error, naming the file.
pub fn atomic_write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write(path, |f| f.write_all(bytes).map_err(io(path)))
}

struct OwnedView {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &OwnedView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn dtype_of(kind: Kind, name: &str) -> Result<Dtype> {
    Ok(match kind {
        Kind::Bool => Dtype::BOOL,
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Int16 => Dtype::I16,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Half => Dtype::F16,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        other => {
            return Err(crate::error::config(
                "checkpoint tensor",
                format!("`{name}` has kind {other:?}, which safetensors cannot store"),
            ))
        }
    })
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::BOOL => Kind::Bool,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::I16 => Kind::Int16,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F16 => Kind::Half,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        _ => return None,
    })
}

/// Serialises named tensors (copied to the CPU) with string metadata to safetensors bytes.
///
/// # Errors
/// A tensor kind safetensors cannot store, or a libtorch copy error.
pub fn safetensors_bytes(
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let cpu = t.detach().to_device(Device::Cpu).contiguous();
        let dtype = dtype_of(cpu.kind(), name)?;
        let numel = cpu.numel();
        let mut data = vec![0u8; numel * cpu.kind().elt_size_in_bytes()];
        cpu.f_copy_data_u8(&mut data, numel)
            .map_err(torch(format!("copying `{name}` for saving")))?;
        owned.push((
            name.clone(),
            OwnedView {
                dtype,
                shape: cpu.size().iter().map(|&d| d as usize).collect(),
                data,
            },
        ));
    }
    let views = owned.iter().map(|(n, v)| (n.as_str(), v));
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata.clone())
    };
    safetensors::tensor::serialize(views, &meta).map_err(|e| {
        crate::error::config(
            "checkpoint",
            format!("safetensors serialisation failed: {e}"),
        )
    })
}

/// Writes named tensors and metadata to a safetensors file, atomically.
///
/// # Errors
/// See [`safetensors_bytes`] and [`atomic_write`].
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let bytes = safetensors_bytes(tensors, metadata)?;
    atomic_write_bytes(path, &bytes)
}

/// Named tensors (on the CPU) and string metadata read from a safetensors file.
#[derive(Debug, Default)]
pub struct SafetensorsFile {
    /// The tensors by name.
    pub tensors: HashMap<String, Tensor>,
    /// The `__metadata__` entries.
    pub metadata: HashMap<String, String>,
}

/// Reads a safetensors file written by [`write_safetensors`] (or any safetensors file).
///
/// # Errors
/// The file cannot be read, is not valid safetensors, or holds a dtype libtorch lacks.
pub fn read_safetensors(path: &Path) -> Result<SafetensorsFile> {
    let bytes = fs::read(path).map_err(io(path))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| checkpoint(path, format!("not a safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| checkpoint(path, format!("not a safetensors file: {e}")))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype())
            .ok_or_else(|| checkpoint(path, format!("`{name}` has dtype {:?}", view.dtype())))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .map_err(torch(format!("{}: reading `{name}`", path.display())))?;
        tensors.insert(name, t);
    }
    Ok(SafetensorsFile { tensors, metadata })
}
