//! GPU-only checks, compiled with the `cuda` feature (`make test-cuda`, or on a device
//! machine `scripts/device/cuda_tests.sh`). They fail, never skip, when no CUDA device
//! is visible: a machine that runs them is meant to have one.
//!
//! - every family gives the same logits on CUDA as on the CPU with the same weights
//!   (eval mode; the CPU's channels-last default against CUDA's format as it comes);
//! - a detector trains on CUDA through `Trainer`, and its checkpoint reopens on the CPU
//!   with the same outputs.

use deepfake::models::registry::{self, BuildOptions};
use deepfake::models::Top;
use deepfake::tch::nn::VarStore;
use deepfake::tch::{Cuda, Device, Kind, Tensor};
use deepfake::train::{save_model, OptimizerConfig, TensorBatches, Trainer, Verbosity};

fn cuda() -> Device {
    assert!(
        Cuda::is_available(),
        "the `cuda` feature's tests need a CUDA device, and libtorch sees none \
         (Cuda::device_count() = {})",
        Cuda::device_count()
    );
    Device::Cuda(0)
}

#[test]
fn every_family_gives_the_cpu_logits_on_cuda() {
    let gpu = cuda();
    for name in [
        "meso4",
        "vgg16_c",
        "resnet50",
        "efficientnet_b0",
        "inception_resnet_v2",
    ] {
        let info = registry::info(name).expect("registered");
        let size = info.min_input_size.max(64);
        let options = BuildOptions::default()
            .with_input_size(size, size)
            .with_top(Top::study([16, 8], 0.5, 0.0));
        tch_seed(3);
        let mut vs = VarStore::new(Device::Cpu);
        let model = registry::build(name, &vs.root(), &options).expect(name);
        let xs = Tensor::rand([2, 3, size, size], (Kind::Float, Device::Cpu));
        let cpu = deepfake::tch::no_grad(|| model.forward_t(&xs, false));
        vs.set_device(gpu);
        let on_gpu = deepfake::tch::no_grad(|| model.forward_t(&xs.to_device(gpu), false))
            .to_device(Device::Cpu);
        let diff = (&cpu - &on_gpu).abs().max().double_value(&[]);
        let scale = cpu.abs().max().double_value(&[]).max(1.0);
        // cuDNN may use TF32 or other algorithms: a relative tolerance.
        assert!(
            diff <= 2e-3 * scale,
            "{name}: CPU and CUDA logits differ by {diff}"
        );
    }
}

#[test]
fn a_detector_trains_on_cuda_and_reopens_on_the_cpu() {
    let gpu = cuda();
    tch_seed(5);
    let vs = VarStore::new(Device::Cpu);
    let options = BuildOptions::default()
        .with_input_size(64, 64)
        .with_top(Top::study([16, 8], 0.5, 0.0));
    let model = registry::build("efficientnet_b0", &vs.root(), &options).expect("build");
    let xs = Tensor::rand([32, 3, 64, 64], (Kind::Float, Device::Cpu));
    let ys = Tensor::cat(
        &[
            Tensor::zeros([16], (Kind::Float, Device::Cpu)),
            Tensor::ones([16], (Kind::Float, Device::Cpu)),
        ],
        0,
    );
    let data = TensorBatches::new(xs.shallow_clone(), ys, 8).expect("batches");
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut trainer = Trainer::builder(model, vs)
        .device(gpu)
        .optimizer(OptimizerConfig::adam(1e-3))
        .epochs(2)
        .out_dir(dir.path())
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    let history = trainer.fit(&data, None).expect("fit on CUDA");
    assert_eq!(history.epochs.len(), 2);
    let (model, vs) = trainer.into_parts();
    assert_eq!(vs.device(), gpu, "the variables stayed on the GPU");
    let path = dir.path().join("cuda.safetensors");
    save_model(&path, model.as_ref(), &vs).expect("save");
    let reopened = deepfake::models::load_checkpoint(&path, Device::Cpu).expect("reopen");
    let probe = xs.narrow(0, 0, 4);
    let on_gpu = deepfake::tch::no_grad(|| model.forward_t(&probe.to_device(gpu), false))
        .to_device(Device::Cpu);
    let on_cpu = deepfake::tch::no_grad(|| reopened.forward_t(&probe, false));
    let diff = (&on_gpu - &on_cpu).abs().max().double_value(&[]);
    assert!(
        diff < 1e-3,
        "the reopened model scores {diff} away from the GPU's"
    );
}

fn tch_seed(seed: i64) {
    deepfake::tch::manual_seed(seed);
}
