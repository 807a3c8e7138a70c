//! Every registered model trains as a binary detector through [`ModelChoice`]: backbone
//! models get the study's head, MesoNet keeps the authors', and a top that is not a
//! detector is refused by name.

use df_models::{registry, Top};
use df_train::ModelChoice;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[test]
fn every_registered_model_gives_one_logit_per_image() {
    for info in registry::registry() {
        let size = info.min_input_size.max(64);
        let mut choice = ModelChoice::new(info.name);
        choice.options.input_size = Some([size, size]);
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let model = choice
            .build(&vs)
            .unwrap_or_else(|e| panic!("{}: {e}", info.name));
        let xs = Tensor::rand([2, 3, size, size], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&xs, true);
        assert_eq!(out.size(), [2, 1], "{}", info.name);
        let top = choice.build_options().expect("options").top.expect("top");
        if matches!(info.default_top(), Top::ImageNet { .. }) {
            assert_eq!(top, Top::study([256, 128], 0.5, 0.0), "{}", info.name);
        } else {
            assert_eq!(top, info.default_top(), "{}", info.name);
        }
    }
}

#[test]
fn an_imagenet_top_is_refused_by_name() {
    let mut choice = ModelChoice::new("resnet50");
    choice.options.input_size = Some([32, 32]);
    choice.options.top = Some(Top::ImageNet { classes: 1000 });
    let vs = VarStore::new(Device::Cpu);
    let err = choice.build(&vs).expect_err("not a detector").to_string();
    assert!(
        err.contains("invalid top") && err.contains("1000 logits"),
        "{err}"
    );
}
