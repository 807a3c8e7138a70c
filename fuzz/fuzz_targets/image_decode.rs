//! df-data's image decoding (JPEG, PNG, BMP, WebP by content) and the training pipeline
//! (centre crop, resize filters, augmentations, normalisation) on arbitrary bytes: every
//! value written is finite; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    df_data::fuzz::image_decode(data);
});
