//! df-models' Keras HDF5 reader (legacy `.h5` and Keras 3 `.weights.h5`) on arbitrary
//! bytes: every tensor read must match its shape; never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    df_models::fuzz::keras_hdf5(data);
});
