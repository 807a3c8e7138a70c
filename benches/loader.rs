//! Loader throughput: images per second decoded, resized to 256×256, augmented and
//! batched into NCHW `f32` tensors by `df_data::Loader`, on
//! `../shared/data/lfw-faceswap/train` (2,400 JPEGs of 250×250).
//!
//! The work per image, the same as the PyTorch peer `benches/peers/loader_torch.py`
//! (torchvision `ImageFolder` + transforms, `DataLoader` with the same workers and batch):
//! decode → resize to 256×256 (Pillow-style antialiased bilinear) → affine warp
//! (rotation ±10°, shifts ±10 %, zoom 0.9–1.1, shear ±5°) → horizontal flip (p = 1/2)
//! → brightness 0.8–1.2 → pixels/255 → batches of 32, shuffled.
//!
//! One iteration is one full epoch (a new shuffle each time); the id is
//! `cpu/loader/w{workers}_b{batch}`. Workers default to 2, or `$DF_BENCH_LOADER_WORKERS`.
//! `DF_BENCH_CLOCK=cpu` times the CPU time of the whole process (every thread) instead
//! of wall time: images per CPU-second, a comparison that holds on a busy machine (the
//! peer's `--clock cpu` counts its worker processes likewise).
//! Without `../shared`, the bench runs on a generated synthetic set of 250×250 JPEGs
//! instead, under the id `cpu/loader_synthetic/...`, so that it never fails for want of data.
//!
//! ```text
//! cargo bench --bench loader
//! .venv-tools/bin/python benches/peers/loader_torch.py     # the peer, same settings
//! ```
//!
//! A second group, `cpu/{loader,loader_synthetic}_recipe/{plain,augment}_w1`, prices the
//! augmentations of `scripts/recipes/lfw_robust.sh` (`flip,jpeg:30-95,rescale:0.4-1@0.6,
//! blur:0-1.5@0.3`, the spec of `benches/augment_cost.sh`) on that recipe's loader
//! (central crop 0.512, bilinear to 128×128, batches of 16) with one worker: an epoch
//! without and with them, so the difference is what they add to an epoch's work. Its
//! times do not depend on a training run sharing the cores, as `augment_cost.sh`'s do;
//! with `DF_BENCH_CLOCK=cpu` they are CPU-seconds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

#[path = "common/clock.rs"]
mod clock;
use clock::Clock;
use df_data::{Augment, ImageFolder, Loader, LoaderConfig, ResizeFilter, Transform};

const BATCH: usize = 32;
const SIZE: u32 = 256;

fn workers() -> usize {
    std::env::var("DF_BENCH_LOADER_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// The LFW face-swap training folder, or a synthetic stand-in (and the id's group).
fn dataset() -> (ImageFolder, &'static str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/lfw-faceswap/train");
    if root.is_dir() {
        let ds = ImageFolder::open(&root).expect("lfw-faceswap/train opens");
        return (ds, "loader");
    }
    eprintln!(
        "note: {} is missing; benchmarking a synthetic set of 250×250 JPEGs instead",
        root.display()
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/synthetic-250");
    let ds = df_data::synthetic::generate(&dir, 300, 250, 1).expect("synthetic set");
    (ds, "loader_synthetic")
}

/// The study's augmentation, matching the peer's torchvision transforms.
fn augment() -> Augment {
    Augment::study()
}

/// `iters` whole epochs of `loader` (the next epoch numbers from `epoch`, so each has a
/// new shuffle), timed by `clock`; every image must come once per epoch.
fn time_epochs(loader: &Loader, epoch: &AtomicU64, clock: &Clock, iters: u64) -> Duration {
    let n = loader.samples_per_epoch();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let e = epoch.fetch_add(1, Ordering::Relaxed);
        let start = clock.now();
        let mut images = 0;
        for batch in loader.epoch(e) {
            let batch = batch.expect("batch");
            images += batch.len();
            std::hint::black_box(&batch.images);
        }
        total += clock.now().saturating_sub(start);
        assert_eq!(images, n, "every image once per epoch");
    }
    total
}

fn loader_throughput(c: &mut Criterion) {
    let (ds, group_name) = dataset();
    let n = ds.len();
    let w = workers();
    let config = LoaderConfig::default()
        .with_batch_size(BATCH)
        .with_workers(w)
        .with_transform(Transform::unit(SIZE, SIZE).with_resize(ResizeFilter::Bilinear))
        .with_augment(augment())
        .with_seed(1);
    let loader = Loader::new(ds, config).expect("loader");
    let epoch = AtomicU64::new(0);
    let clock = Clock::from_env();

    let mut group = c.benchmark_group(format!("cpu/{group_name}"));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(format!("w{w}_b{BATCH}"), |b| {
        b.iter_custom(|iters| time_epochs(&loader, &epoch, &clock, iters))
    });
    group.finish();
    assert!(
        loader.skipped().is_empty(),
        "skipped: {:?}",
        loader.skipped()
    );
}

/// The lfw_robust recipe's augmentations.
const RECIPE_SPEC: &str = "flip,jpeg:30-95,rescale:0.4-1@0.6,blur:0-1.5@0.3";

fn recipe_augment_cost(c: &mut Criterion) {
    let (ds, group_name) = dataset();
    let n = ds.len();
    let ds = std::sync::Arc::new(ds);
    let clock = Clock::from_env();
    let transform = Transform::unit(128, 128)
        .with_resize(ResizeFilter::Bilinear)
        .with_center_crop(Some(0.512));
    let mut group = c.benchmark_group(format!("cpu/{group_name}_recipe"));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(n as u64));
    for (name, augment) in [
        ("plain", Augment::none()),
        (
            "augment",
            Augment::from_spec(RECIPE_SPEC).expect("the recipe's spec"),
        ),
    ] {
        let config = LoaderConfig::default()
            .with_batch_size(16)
            .with_workers(1)
            .with_transform(transform)
            .with_augment(augment)
            .with_seed(1);
        let loader = Loader::from_arc(ds.clone(), config).expect("loader");
        let epoch = AtomicU64::new(0);
        group.bench_function(format!("{name}_w1"), |b| {
            b.iter_custom(|iters| time_epochs(&loader, &epoch, &clock, iters))
        });
    }
    group.finish();
}

// A private module: `criterion_group!` generates an undocumented `pub fn`.
mod suite {
    use super::{criterion_group, loader_throughput, recipe_augment_cost, Criterion, Duration};

    criterion_group! {
        name = benches;
        // One iteration is a whole epoch (about a second or more): ten of them.
        // Command-line options (`--sample-size`, `--measurement-time`) override these.
        config = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(20));
        targets = loader_throughput, recipe_augment_cost
    }
}
criterion_main!(suite::benches);
