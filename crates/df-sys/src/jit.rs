//! TorchScript archives with extra files, and the tracer's state: what `tch` 0.24's
//! `CModule` lacks for a self-describing export.
//!
//! [`save_with_extra_files`] re-saves an archive (the bytes `tch::CModule::save` wrote) with
//! named extra files, through libtorch's `torch::jit::Module::save(stream, extra_files)`:
//! the entries `extra/NAME` that Python reads with `torch.jit.load(f, _extra_files=...)`.
//! [`extra_file`] reads one back. [`abandon_tracing`] clears a trace that `tch`'s
//! `CModule::create_by_tracing` left open when its end failed (an output the tracer cannot
//! see), so that the thread can trace again.
//!
//! ```
//! use tch::{CModule, Device, Kind, Tensor};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let x = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
//! let module = CModule::create_by_tracing("m", "forward", &[x], &mut |xs| vec![xs[0].relu()])?;
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("m.pt");
//! module.save(&path)?;
//! let archive = std::fs::read(&path)?;
//! let with = df_sys::jit::save_with_extra_files(&archive, &[("card.json", b"{}".as_slice())])?;
//! assert_eq!(df_sys::jit::extra_file(&with, "card.json")?.as_deref(), Some(b"{}".as_slice()));
//! assert_eq!(df_sys::jit::extra_file(&archive, "card.json")?, None);
//! # Ok(()) }
//! ```

use std::ffi::{c_char, c_int, CString};

use crate::{check, Error, Result};

mod ffi {
    use std::ffi::{c_char, c_int};

    extern "C" {
        pub fn df_jit_free(data: *mut u8);
        pub fn df_jit_save_with_extra_files(
            data: *const u8,
            len: usize,
            names: *const *const c_char,
            values: *const *const u8,
            value_lens: *const usize,
            n: usize,
            out: *mut *mut u8,
            out_len: *mut usize,
        ) -> *mut c_char;
        pub fn df_jit_extra_file(
            data: *const u8,
            len: usize,
            name: *const c_char,
            found: *mut c_int,
            out: *mut *mut u8,
            out_len: *mut usize,
        ) -> *mut c_char;
        pub fn df_jit_is_tracing(tracing: *mut c_int) -> *mut c_char;
        pub fn df_jit_abandon_tracing() -> *mut c_char;
    }
}

/// Takes over a buffer the shim allocated: copies it and frees it once.
fn take_buffer(data: *mut u8, len: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    // SAFETY: a non-null buffer from the shim is a malloc'd block of at least `len`
    // initialised bytes (copy_out) that nothing else references; it is read here, then
    // freed once by the shim's own free and never used again.
    let bytes = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
    // SAFETY: as above.
    unsafe { ffi::df_jit_free(data) };
    bytes
}

fn c_name(name: &str) -> Result<CString> {
    if name.is_empty() || name.contains('/') {
        return Err(Error::Invalid {
            option: "extra file name",
            reason: format!("`{name}` must be a non-empty name without `/`"),
        });
    }
    CString::new(name).map_err(|_| Error::Invalid {
        option: "extra file name",
        reason: format!("`{}` contains a NUL byte", name.escape_debug()),
    })
}

/// The TorchScript archive `archive` (the bytes of a file `torch.jit.save` or
/// `tch::CModule::save` wrote) saved again with the extra files `files` (name, contents),
/// which replace extra files of the same names. The module is loaded on the CPU.
///
/// # Errors
/// [`Error::Invalid`] for a name that is empty or holds `/` or NUL; [`Error::Torch`] for
/// bytes that are not a TorchScript archive.
pub fn save_with_extra_files(archive: &[u8], files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let names = files
        .iter()
        .map(|(name, _)| c_name(name))
        .collect::<Result<Vec<_>>>()?;
    let name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let value_ptrs: Vec<*const u8> = files.iter().map(|(_, v)| v.as_ptr()).collect();
    let value_lens: Vec<usize> = files.iter().map(|(_, v)| v.len()).collect();
    let (mut out, mut out_len) = (std::ptr::null_mut::<u8>(), 0usize);
    // SAFETY: `archive` and every value are live slices of the given lengths, the names
    // live NUL-terminated strings, the three arrays hold `files.len()` entries each, all
    // borrowed for the call; `out` and `out_len` point to locals the shim sets (a malloc'd
    // buffer on success); the returned message is null or owned and freed by `check`.
    let message = unsafe {
        ffi::df_jit_save_with_extra_files(
            archive.as_ptr(),
            archive.len(),
            name_ptrs.as_ptr(),
            value_ptrs.as_ptr(),
            value_lens.as_ptr(),
            files.len(),
            &mut out,
            &mut out_len,
        )
    };
    check(
        || {
            format!(
                "saving a TorchScript archive of {} bytes with extra files",
                archive.len()
            )
        },
        message,
    )?;
    Ok(take_buffer(out, out_len))
}

/// The extra file `name` of the TorchScript archive `archive`, `None` when it has none.
///
/// # Errors
/// As [`save_with_extra_files`].
pub fn extra_file(archive: &[u8], name: &str) -> Result<Option<Vec<u8>>> {
    let c = c_name(name)?;
    let (mut found, mut out, mut out_len): (c_int, *mut u8, usize) = (0, std::ptr::null_mut(), 0);
    // SAFETY: `archive` is a live slice of its length and `c` a live NUL-terminated string,
    // borrowed for the call; the three outputs point to locals the shim sets; the returned
    // message is null or owned and freed by `check`.
    let message = unsafe {
        ffi::df_jit_extra_file(
            archive.as_ptr(),
            archive.len(),
            c.as_ptr(),
            &mut found,
            &mut out,
            &mut out_len,
        )
    };
    check(|| format!("reading extra file `{name}`"), message)?;
    let bytes = take_buffer(out, out_len);
    Ok((found != 0).then_some(bytes))
}

/// Whether this thread is inside a trace.
///
/// # Errors
/// [`Error::Torch`] (not expected).
pub fn is_tracing() -> Result<bool> {
    let mut tracing: c_int = 0;
    // SAFETY: `tracing` is a local the shim sets; the message is null or owned by `check`.
    let message = unsafe { ffi::df_jit_is_tracing(&mut tracing) };
    check(|| "tracer::isTracing".to_string(), message)?;
    Ok(tracing != 0)
}

/// Ends this thread's trace, if one is open, without making a graph: after
/// `tch::CModule::create_by_tracing` failed at its end, which leaves the trace open.
///
/// # Errors
/// [`Error::Torch`] (not expected).
pub fn abandon_tracing() -> Result<()> {
    // SAFETY: no arguments; the message is null or owned by `check`.
    let message = unsafe { ffi::df_jit_abandon_tracing() };
    check(|| "tracer::abandon".to_string(), message)
}
