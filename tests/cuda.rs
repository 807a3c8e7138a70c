//! GPU-only checks, compiled with the `cuda` feature (`make test-cuda`, or on a device
//! machine `scripts/device/cuda_tests.sh`). They fail, never skip, when no CUDA device
//! is visible: a machine that runs them is meant to have one.
//!
//! - every family gives the same logits on CUDA as on the CPU with the same weights
//!   (eval mode; the CPU's channels-last default against CUDA's format as it comes);
//! - a detector trains on CUDA through `Trainer`, and its checkpoint reopens on the CPU
//!   with the same outputs;
//! - autocast on CUDA (through df-sys): convolutions in bf16/f16, batch norm's statistics
//!   and the loss in f32, as PyTorch's CUDA policy says; bf16 and f16 training (f16 with
//!   the loss scaler) decrease the loss on CUDA, and the scaler skips a step whose
//!   gradients hold an infinity.

use deepfake::models::registry::{self, BuildOptions};
use deepfake::models::Top;
use deepfake::tch::nn::VarStore;
use deepfake::tch::{Cuda, Device, Kind, Tensor};
use deepfake::train::{
    save_model, GradScaler, GradScalerConfig, OptimizerConfig, Precision, TensorBatches, Trainer,
    Verbosity,
};

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
    // The first registered model of each family (the registry's order).
    let mut families: Vec<&str> = Vec::new();
    for info in registry::registry() {
        if families.contains(&info.family) {
            continue;
        }
        families.push(info.family);
        let name = info.name;
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

#[test]
fn autocast_on_cuda_computes_convolutions_low_and_keeps_batch_norm_and_the_loss_f32() {
    let gpu = cuda();
    let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, gpu));
    let w = Tensor::randn([5, 3, 3, 3], (Kind::Float, gpu));
    let mean = Tensor::zeros([5], (Kind::Float, gpu));
    let var = Tensor::ones([5], (Kind::Float, gpu));
    for precision in [Precision::Bf16, Precision::F16] {
        let kind = precision.autocast_kind().expect("a low precision");
        precision.check(gpu).expect("autocast on CUDA");
        let scope = precision.scope(gpu).expect("scope").expect("a scope");
        let y = x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        assert_eq!(y.kind(), kind, "conv2d under {precision}");
        let bn = y.batch_norm(
            None::<Tensor>,
            None::<Tensor>,
            Some(mean.shallow_clone()),
            Some(var.shallow_clone()),
            true,
            0.1,
            1e-3,
            false,
        );
        // CUDA's policy: batch_norm runs in its input's dtype, the running statistics
        // (f32 buffers) stay f32.
        assert_eq!(mean.kind(), Kind::Float);
        assert!(
            mean.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "the running mean was updated under {precision}"
        );
        let logits = bn.mean_dim(&[1i64, 2, 3][..], false, Kind::Float);
        let labels = Tensor::ones([4], (Kind::Float, gpu));
        let loss = logits.binary_cross_entropy_with_logits::<Tensor>(
            &labels,
            None,
            None,
            deepfake::tch::Reduction::Mean,
        );
        assert_eq!(loss.kind(), Kind::Float, "the loss under {precision}");
        drop(scope);
        let after = x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        assert_eq!(after.kind(), Kind::Float, "after the {precision} scope");
    }
}

#[test]
fn mixed_precision_training_on_cuda_decreases_the_loss_and_the_scaler_skips_infinities() {
    let gpu = cuda();
    for precision in [Precision::Bf16, Precision::F16] {
        tch_seed(7);
        let vs = VarStore::new(Device::Cpu);
        let options = BuildOptions::default()
            .with_input_size(32, 32)
            .with_top(Top::pooled(&[], 0.0));
        let model = registry::build("resnet50", &vs.root(), &options).expect("build");
        // Separable: the class is which half of the image is brighter.
        let xs = Tensor::rand([64, 3, 32, 32], (Kind::Float, Device::Cpu)) * 255.0;
        let ys = Tensor::randint(2, [64], (Kind::Float, Device::Cpu));
        let _ = xs
            .narrow(3, 0, 16)
            .g_add_(&(ys.view([64, 1, 1, 1]) * 200.0 - 100.0));
        let data = TensorBatches::new(xs, ys, 16).expect("batches");
        let mut trainer = Trainer::builder(model, vs)
            .device(gpu)
            .optimizer(OptimizerConfig::adam(1e-3))
            .epochs(5)
            .precision(precision)
            .verbosity(Verbosity::Quiet)
            .build()
            .expect("trainer");
        let history = trainer.fit(&data, None).expect("fit on CUDA");
        let loss = history.values("loss");
        assert!(
            loss.last().expect("a loss") < &(0.8 * loss[0]),
            "{precision} on CUDA: {loss:?}"
        );
    }
    // The scaler on CUDA: an infinite gradient skips the step and halves the scale.
    let mut scaler = GradScaler::new(GradScalerConfig::default(), gpu).expect("scaler");
    let before = scaler.scale().expect("scale");
    let p = Tensor::ones([3], (Kind::Float, gpu)).set_requires_grad(true);
    let loss =
        (&p * Tensor::from_slice(&[1.0f32, f32::INFINITY, 1.0]).to_device(gpu)).sum(Kind::Float);
    scaler.scale_loss(&loss).backward();
    let found_inf = scaler.unscale(&[p.shallow_clone()]).expect("unscale");
    assert!(found_inf, "the infinity was not found");
    scaler.update(found_inf);
    assert_eq!(scaler.scale().expect("scale"), before / 2.0);
    assert_eq!(scaler.skipped_steps(), 1);
}

fn tch_seed(seed: i64) {
    deepfake::tch::manual_seed(seed);
}
