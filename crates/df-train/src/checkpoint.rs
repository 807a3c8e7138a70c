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
use std::path::Path;

use df_io::{Dtype, TensorBytes};
use tch::{Device, Kind, Tensor};

use crate::error::{io, torch, Result};

/// Writes `path` atomically through df-io's one writer: `write` fills a temporary file
/// next to it, which is synced and renamed over `path`, and the directory is synced. The
/// directory is created first if missing. On error the temporary file is removed and
/// `path` is left as it was.
///
/// # Errors
/// Any I/O error (naming the file), or the error `write` returns.
pub fn atomic_write(path: &Path, write: impl FnOnce(&mut fs::File) -> Result<()>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    df_io::write_atomic_with(path, write)
}

/// Writes `bytes` to `path` atomically (see [`atomic_write`]).
///
/// # Errors
/// Any I/O error, naming the file.
pub fn atomic_write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write(path, |f| f.write_all(bytes).map_err(io(path)))
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

/// A tensor's bytes (copied to the CPU) for df-io's safetensors writer.
fn tensor_bytes(name: &str, t: &Tensor) -> Result<TensorBytes> {
    let cpu = t.detach().to_device(Device::Cpu).contiguous();
    let dtype = dtype_of(cpu.kind(), name)?;
    let numel = cpu.numel();
    let mut data = vec![0u8; numel * cpu.kind().elt_size_in_bytes()];
    cpu.f_copy_data_u8(&mut data, numel)
        .map_err(torch(format!("copying `{name}` for saving")))?;
    Ok(TensorBytes {
        dtype,
        shape: cpu.size().iter().map(|&d| d as usize).collect(),
        data,
    })
}

fn named_bytes(tensors: &[(String, Tensor)]) -> Result<Vec<(String, TensorBytes)>> {
    tensors
        .iter()
        .map(|(name, t)| Ok((name.clone(), tensor_bytes(name, t)?)))
        .collect()
}

/// Serialises named tensors (copied to the CPU) with string metadata to safetensors bytes.
///
/// # Errors
/// A tensor kind safetensors cannot store, or a libtorch copy error.
pub fn safetensors_bytes(
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    Ok(df_io::safetensors::to_bytes(
        Path::new("checkpoint"),
        &named_bytes(tensors)?,
        metadata,
    )?)
}

/// Writes named tensors and metadata to a safetensors file, atomically (df-io's writer).
///
/// # Errors
/// See [`safetensors_bytes`] and [`atomic_write`].
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let bytes = df_io::safetensors::to_bytes(path, &named_bytes(tensors)?, metadata)?;
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
    let file = df_io::safetensors::read(path)?;
    let mut tensors = HashMap::new();
    for (name, t) in file.tensors {
        let kind = kind_of(t.dtype).ok_or_else(|| {
            crate::error::checkpoint(path, format!("`{name}` has dtype {:?}", t.dtype))
        })?;
        let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
        let tensor = Tensor::f_from_data_size(&t.data, &shape, kind)
            .map_err(torch(format!("{}: reading `{name}`", path.display())))?;
        tensors.insert(name, tensor);
    }
    Ok(SafetensorsFile {
        tensors,
        metadata: file.metadata,
    })
}
