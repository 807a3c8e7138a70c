//! NCCL through df-dist (the `nccl` feature), on a GPU machine: world size 1 on cuda:0
//! (NCCL refuses two ranks on one GPU), which runs the whole ProcessGroupNCCL path:
//! rendezvous, every collective on CUDA tensors against its definition, DDP's broadcast
//! and bucketed averaging on a real model's gradients, and a data-parallel `Trainer` run
//! whose checkpoint reopens on the CPU. They fail, never skip, without a CUDA device
//! (`scripts/device/nccl_tests.sh` runs them on a device machine).

use std::time::Duration;

use deepfake::dist::ddp::{broadcast_variables, GradientAverager, Variables, DEFAULT_BUCKET_BYTES};
use deepfake::dist::{Backend, DistConfig, ProcessGroup, Reduce};
use deepfake::models::registry::{self, BuildOptions};
use deepfake::tch::nn::VarStore;
use deepfake::tch::{Cuda, Device, Kind, Tensor};
use deepfake::train::{OptimizerConfig, TensorBatches, Trainer, Verbosity};

fn group() -> ProcessGroup {
    assert!(
        Cuda::is_available(),
        "the `nccl` feature's tests need a CUDA device (Cuda::device_count() = {})",
        Cuda::device_count()
    );
    let port = deepfake::dist::free_port().expect("a free port");
    let mut config = DistConfig::local(0, 1, port).with_timeout(Duration::from_secs(120));
    config.backend = Backend::Nccl;
    ProcessGroup::new(&config).expect("an NCCL group of one")
}

fn cpu_values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).reshape([-1]))
        .expect("values")
}

#[test]
fn nccl_collectives_give_what_they_define() {
    let g = group();
    assert_eq!(g.device(), Device::Cuda(0));
    let gpu = Device::Cuda(0);
    let mut t = Tensor::from_slice(&[1.0f32, -2.0, 3.5]).to_device(gpu);
    g.all_reduce(&mut t, Reduce::Sum).expect("sum");
    assert_eq!(cpu_values(&t), [1.0, -2.0, 3.5]);
    g.all_reduce(&mut t, Reduce::Mean).expect("mean");
    assert_eq!(cpu_values(&t), [1.0, -2.0, 3.5]);
    g.broadcast(&mut t, 0).expect("broadcast");
    let gathered = g.all_gather(&t).expect("all_gather");
    assert_eq!(gathered.len(), 1);
    assert_eq!(cpu_values(&gathered[0]), [1.0, -2.0, 3.5]);
    let uneven = g
        .all_gather_uneven(&Tensor::from_slice(&[0.25f32, 0.5]).to_device(gpu))
        .expect("uneven");
    assert_eq!(cpu_values(&uneven), [0.25, 0.5]);
    assert!(g.all_agree(true).expect("agree"));
    g.barrier().expect("barrier");
    // A CPU tensor is refused, naming the device.
    let mut cpu = Tensor::ones([2], (Kind::Float, Device::Cpu));
    let err = g
        .all_reduce(&mut cpu, Reduce::Sum)
        .expect_err("a CPU tensor");
    assert!(
        err.to_string()
            .contains("NCCL group takes tensors on Cuda(0)"),
        "{err}"
    );
}

#[test]
fn nccl_averages_a_real_models_gradients_and_trains() {
    let g = group();
    let gpu = Device::Cuda(0);
    // ResNet50's gradients (ones) through the buckets: a world of one keeps them.
    let vs = VarStore::new(gpu);
    let info = registry::info("resnet50").expect("resnet50");
    let options = BuildOptions {
        top: Some(
            info.top_for(Some(deepfake::models::TopKind::Pooled), None)
                .expect("top"),
        ),
        input_size: Some([64, 64]),
        ..BuildOptions::default()
    };
    let _model = registry::build("resnet50", &vs.root(), &options).expect("build");
    broadcast_variables(&g, &vs, Variables::All, 0).expect("broadcast");
    let total = vs
        .trainable_variables()
        .iter()
        .map(|t| t.sum(Kind::Float))
        .fold(Tensor::zeros([], (Kind::Float, gpu)), |a, b| a + b);
    total.backward();
    let averager = GradientAverager::new(&vs, DEFAULT_BUCKET_BYTES).expect("averager");
    assert!(averager.bucket_count() > 1);
    let started = std::time::Instant::now();
    averager.average(&g).expect("average");
    eprintln!(
        "resnet50: {} parameters in {} buckets averaged in {:?} (world 1)",
        averager.parameter_count(),
        averager.bucket_count(),
        started.elapsed()
    );
    for t in vs.trainable_variables() {
        let grad = t.grad();
        assert_eq!(grad.min().double_value(&[]), 1.0);
        assert_eq!(grad.max().double_value(&[]), 1.0);
    }
    drop(g);

    // A data-parallel Trainer run on the GPU through the group.
    let g = group();
    let vs = VarStore::new(gpu);
    let model = registry::build(
        "meso4",
        &vs.root(),
        &BuildOptions::default().with_input_size(32, 32),
    )
    .expect("meso4");
    let x = Tensor::rand([16, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0.0f32, 1.0]).repeat([8]);
    let mut trainer = Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::adam(1e-3))
        .epochs(2)
        .verbosity(Verbosity::Quiet)
        .process_group(g)
        .build()
        .expect("trainer");
    let batches = TensorBatches::new(x.shallow_clone(), y.shallow_clone(), 8).expect("batches");
    let history = trainer.fit(&batches, Some(&batches)).expect("fit").clone();
    assert_eq!(history.epochs.len(), 2);
    assert!(history.epochs[1].metrics["val_loss"].is_finite());
}
