//! df-io's safetensors reader on arbitrary bytes: header, metadata, checksum, tensor
//! views. It must return `Ok` or an error, never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    df_io::fuzz::safetensors_parse(data);
});
