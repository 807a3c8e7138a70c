//! The run configuration files read back (a stored `experiment.json` on resume, an
//! `ExperimentConfig`'s checks, a checkpoint's model configuration) on arbitrary bytes:
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    df_train::fuzz::run_config(data);
});
