//! A run's history files (`history.json`, `history.csv`, which `compare` and the analysis
//! read back) on arbitrary bytes: parse, analyse, write again; never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    df_metrics::fuzz::history_files(data);
});
