//! Builds a model through the facade, scores a random batch and says which devices
//! libtorch sees: if this binary starts, libtorch was found.
use deepfake::models::{self, BuildOptions};
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
    Ok(())
}
