//! Builds a model through the facade, scores a random batch and says which devices
//! libtorch sees: if this binary starts, libtorch was found.
//!
//! With two arguments, `CHECKPOINT PHOTOS`, it also saves that (untrained) model as a
//! checkpoint and writes a few synthetic photos (`PHOTOS/real`, `PHOTOS/fake`): the inputs
//! `scripts/check-downstream.sh` runs the README's first program on.
use deepfake::models::{self, checkpoint::save_checkpoint, BuildOptions};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let vs = VarStore::new(Device::Cpu);
    let options = BuildOptions::default().with_input_size(64, 64);
    let model = models::build("meso4", &vs.root(), &options)?;
    let xs = Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    let logits = tch::no_grad(|| model.forward_t(&xs, false));
    println!(
        "deepfake-downstream: {} logits {:?}; cuda available: {}",
        model.name(),
        logits.size(),
        tch::Cuda::is_available()
    );
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [checkpoint, photos] = args.as_slice() {
        save_checkpoint(&vs, model.as_ref(), checkpoint)?;
        let set = deepfake::data::synthetic::generate(photos, 2, 64, 1)?;
        println!(
            "deepfake-downstream: wrote {checkpoint} and {} photos",
            set.len()
        );
    }
    Ok(())
}
