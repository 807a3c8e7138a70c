//! `fit` on the CPU keeps freed memory for reuse (df_sys::memory) unless told not to, and
//! the policy does not change what is learnt. Its own binary without the test harness: the
//! policy is process-wide, so the run without it must come first, alone.

#[allow(dead_code)] // the shared helpers this test does not use
mod common;

use df_train::{TensorBatches, Trainer, Verbosity};

use crate::common::{tiny, toy_data, values};

fn fit(retain: bool) -> Vec<f64> {
    let (model, vs) = tiny(3, 1e-3, 0.0);
    let (x, y) = toy_data(64, 4);
    let train = TensorBatches::new(x, y, 8).expect("train").shuffled(1);
    let mut trainer = Trainer::builder(model, vs)
        .epochs(2)
        .verbosity(Verbosity::Quiet)
        .retain_freed_memory(retain)
        .build()
        .expect("trainer");
    trainer.fit(&train, None).expect("fit");
    let mut vars: Vec<_> = trainer.var_store().variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.iter().flat_map(|(_, t)| values(t)).collect()
}

fn main() {
    assert!(
        std::env::var("GLIBC_TUNABLES").map_or(true, |t| !t.contains("glibc.malloc.")),
        "run this test without malloc tunables in GLIBC_TUNABLES"
    );
    let without = fit(false);
    assert!(
        !df_sys::memory::retained(),
        "retain_freed_memory(false): fit left the allocator as it was"
    );
    let with = fit(true);
    assert!(
        df_sys::memory::retained(),
        "a CPU fit keeps freed memory by default"
    );
    assert_eq!(without, with, "the same weights either way");
    println!("memory: fit retains freed memory on the CPU unless told not to: ok");
}
