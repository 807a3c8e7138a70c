//! Seeding: `ModelChoice::build_seeded` gives the same initial weights for the same seed.
//!
//! Its own test binary: libtorch's generator is global to the process, so another test
//! drawing random numbers on a parallel thread between the seeding and the build would
//! change the weights (a caveat `build_seeded` documents).

use df_train::ModelChoice;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Issue: the trainer's seed did not seed the initial weights. `build_seeded` gives the
/// same weights for the same seed whatever ran before, and other weights for another.
#[test]
fn the_same_seed_builds_the_same_weights() {
    let mut choice = ModelChoice::new("efficientnet_b0");
    choice.options.input_size = Some([32, 32]);
    let weights = |seed: u64| {
        let vs = VarStore::new(Device::Cpu);
        choice.build_seeded(&vs, seed).expect("build");
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    };
    let a = weights(7);
    let _ = Tensor::rand([1000], (Kind::Float, Device::Cpu)); // the generator moves on
    let b = weights(7);
    let c = weights(8);
    assert_eq!(a.len(), b.len());
    let differ = |x: &[(String, Tensor)], y: &[(String, Tensor)]| {
        x.iter()
            .zip(y)
            .filter(|((_, p), (_, q))| p != q)
            .map(|((n, _), _)| n.clone())
            .collect::<Vec<_>>()
    };
    assert!(differ(&a, &b).is_empty(), "same seed: {:?}", differ(&a, &b));
    let kernels = differ(&a, &c);
    assert!(
        kernels.iter().any(|n| n.contains("stem_conv")),
        "another seed draws other kernels: {kernels:?}"
    );
}
