//! What the hardware computes natively, for choosing a precision: the CPU's bf16
//! instructions (`avx512_bf16`, `amx_bf16`) and a CUDA device's compute capability (bf16
//! arithmetic from 8.0, Ampere, on).
//!
//! The CUDA query looks up the CUDA runtime's `cudaDeviceGetAttribute` in the running
//! process (loaded with libtorch's CUDA library): a CPU-only process, or one without a
//! GPU, reports none, and nothing is linked against CUDA.

use std::ffi::{c_char, c_int, c_void, CStr};

/// The CPU's flags (Linux `/proc/cpuinfo`, first processor), empty where unknown.
pub fn cpu_flags() -> Vec<String> {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("flags"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, flags)| flags.split_whitespace().map(str::to_string).collect())
        })
        .unwrap_or_default()
}

/// The CPU's bf16 instructions among `avx512_bf16` and `amx_bf16` (empty: none).
pub fn cpu_bf16_flags() -> Vec<String> {
    cpu_flags()
        .into_iter()
        .filter(|f| f == "avx512_bf16" || f == "amx_bf16")
        .collect()
}

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// `cudaDevAttrComputeCapabilityMajor` / `Minor` of the CUDA runtime API.
const ATTR_MAJOR: c_int = 75;
const ATTR_MINOR: c_int = 76;

type GetAttribute = unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int;

/// The compute capability `(major, minor)` of CUDA device `index`, or `None` when the
/// CUDA runtime is not loaded in this process or does not know the device.
pub fn cuda_compute_capability(index: usize) -> Option<(i32, i32)> {
    let index = c_int::try_from(index).ok()?;
    let name: &CStr = c"cudaDeviceGetAttribute";
    // SAFETY: dlsym with RTLD_DEFAULT (a null handle on glibc) only searches the symbols
    // already loaded in the process; the name is a valid NUL-terminated string.
    let symbol = unsafe { dlsym(std::ptr::null_mut(), name.as_ptr()) };
    if symbol.is_null() {
        return None;
    }
    // SAFETY: the symbol is the CUDA runtime's `cudaError_t cudaDeviceGetAttribute(int*
    // value, cudaDeviceAttr attr, int device)`, whose C signature `GetAttribute` matches
    // (the enum is an int).
    let get: GetAttribute = unsafe { std::mem::transmute::<*mut c_void, GetAttribute>(symbol) };
    let (mut major, mut minor) = (0, 0);
    // SAFETY: both pointers are to live locals; the call writes one int through each
    // and returns an error code (0: success) for an unknown device.
    let ok = unsafe {
        get(&mut major, ATTR_MAJOR, index) == 0 && get(&mut minor, ATTR_MINOR, index) == 0
    };
    ok.then_some((major, minor))
}
