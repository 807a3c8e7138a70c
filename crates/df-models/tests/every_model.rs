//! Every registered model, built through the registry with the study's binary head at a
//! small input: forward gives one logit per image, and one backward pass gives every
//! trainable parameter a finite gradient (timm's "every model forward and backward" test).

use df_layers::util::params_without_finite_grad;
use df_models::registry::{registry, BuildOptions};
use df_models::Top;
use tch::{nn, Device, Kind, Tensor};

#[test]
fn every_registered_model_runs_forward_and_backward_with_finite_gradients() {
    tch::manual_seed(0);
    let mut failures = Vec::new();
    for info in registry() {
        // The smallest input the architecture takes (at least 32), to keep CPU time low.
        let side = info.min_input_size.max(32);
        let vs = nn::VarStore::new(Device::Cpu);
        let options = BuildOptions::default()
            .with_top(Top::study([16, 8], 0.2, 1e-4))
            .with_input_size(side, side);
        let model = match df_models::build(info.name, &vs.root(), &options) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: build failed: {e}", info.name));
                continue;
            }
        };
        let x = Tensor::randn([2, 3, side, side], (Kind::Float, Device::Cpu));
        let logits = model.forward_t(&x, true);
        if logits.size() != [2, 1] {
            failures.push(format!(
                "{}: logits shape {:?}, expected [2, 1]",
                info.name,
                logits.size()
            ));
            continue;
        }
        let target = Tensor::from_slice(&[1.0f32, 0.0]).view([2, 1]);
        let loss = logits.binary_cross_entropy_with_logits::<Tensor>(
            &target,
            None,
            None,
            tch::Reduction::Mean,
        ) + model.l2_penalty();
        let bad = params_without_finite_grad(&vs, &loss);
        if !bad.is_empty() {
            failures.push(format!(
                "{}: no finite gradient for {} parameters, e.g. {:?}",
                info.name,
                bad.len(),
                &bad[..bad.len().min(3)]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
