//! The batch loader: shapes, values, order, determinism across workers, drop_last,
//! balancing, bounded prefetch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use df_data::{
    Augment, Balance, ChannelOrder, ImageFolder, ImageSource, Label, Loader, LoaderConfig,
    Normalize, ResizeFilter, SkipReason, Transform,
};
use image::RgbImage;

use crate::common::{folder, pattern, pixel};

fn config(batch: usize, workers: usize) -> LoaderConfig {
    LoaderConfig::default()
        .with_batch_size(batch)
        .with_workers(workers)
        .with_transform(Transform::unit(12, 12))
        .with_seed(11)
}

#[test]
fn batches_have_the_right_shapes_and_every_sample_once() {
    let dir = folder(13, 10, 12);
    let ds = ImageFolder::open(dir.path()).expect("open");
    let loader = Loader::new(ds.clone(), config(5, 2)).expect("loader");
    assert_eq!(loader.len(), 5);
    let batches: Vec<_> = loader.epoch(0).map(|b| b.expect("batch")).collect();
    let sizes: Vec<usize> = batches.iter().map(|b| b.len()).collect();
    assert_eq!(sizes, [5, 5, 5, 5, 3]);
    for b in &batches {
        let n = b.len() as i64;
        assert_eq!(b.images.size(), [n, 3, 12, 12]);
        assert_eq!(b.images.kind(), tch::Kind::Float);
        assert_eq!(b.labels.size(), [n]);
        assert!(b.weights.is_none());
        // Labels follow the folders: fake = 1.
        let labels = Vec::<f32>::try_from(&b.labels).expect("labels");
        for (p, l) in b.paths.iter().zip(&labels) {
            let fake = p.components().any(|c| c.as_os_str() == "fake");
            assert_eq!(*l, if fake { 1.0 } else { 0.0 }, "{}", p.display());
        }
    }
    let mut all: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..23).collect::<Vec<_>>());

    let dropping = Loader::new(ds, config(5, 2).with_drop_last(true)).expect("loader");
    assert_eq!(dropping.len(), 4);
    let sizes: Vec<usize> = dropping.epoch(0).map(|b| b.expect("batch").len()).collect();
    assert_eq!(sizes, [5, 5, 5, 5]);
}

#[test]
fn values_are_the_decoded_pixels_transformed() {
    let dir = folder(2, 2, 12);
    let ds = ImageFolder::open(dir.path()).expect("open");
    // No shuffle, no augmentation, same size: x = pixel / 255, CHW.
    let cfg = config(4, 0).with_shuffle(false);
    let loader = Loader::new(ds.clone(), cfg).expect("loader");
    let batch = loader.epoch(0).next().expect("one batch").expect("batch");
    // Sample 0 is fake/f000.png, written with pattern seed 1000.
    assert!(batch.paths[0].ends_with("fake/f000.png"));
    let x = Vec::<f32>::try_from(batch.images.get(0).flatten(0, -1)).expect("values");
    for (y, xx) in [(0u32, 0u32), (3, 7), (11, 11)] {
        let p = pixel(xx, y, 1000);
        for c in 0..3 {
            let v = x[(c * 144 + y * 12 + xx) as usize];
            assert_eq!(
                v,
                f32::from(p[c as usize]) * (1.0 / 255.0),
                "({xx},{y}) channel {c}"
            );
        }
    }
    // BGR with caffe-style offsets: channel 0 is blue − 103.939.
    let caffe = Transform::unit(12, 12)
        .with_scale(1.0)
        .with_channel_order(ChannelOrder::Bgr)
        .with_normalize(Normalize::Offset {
            offset: [-103.939, -116.779, -123.68],
        });
    let mean_std = Transform::unit(12, 12).with_normalize(Normalize::MeanStd {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    });
    for (t, expect) in [
        (
            caffe,
            [
                f32::from(pixel(3, 2, 1000)[2]) - 103.939,
                f32::from(pixel(3, 2, 1000)[1]) - 116.779,
            ],
        ),
        (
            mean_std,
            [
                (f32::from(pixel(3, 2, 1000)[0]) / 255.0 - 0.485) / 0.229,
                (f32::from(pixel(3, 2, 1000)[1]) / 255.0 - 0.456) / 0.224,
            ],
        ),
    ] {
        let l = Loader::new(
            ds.clone(),
            config(1, 0).with_shuffle(false).with_transform(t),
        )
        .expect("loader");
        let b = l.epoch(0).next().expect("batch").expect("batch");
        let v0 = b.images.double_value(&[0, 0, 2, 3]) as f32;
        let v1 = b.images.double_value(&[0, 1, 2, 3]) as f32;
        assert!(
            (v0 - expect[0]).abs() < 1e-4 && (v1 - expect[1]).abs() < 1e-4,
            "{t:?}: {v0} {v1} vs {expect:?}"
        );
    }
    // Resizing happens in the loader: 12×12 images to 7×5.
    let l = Loader::new(
        ds,
        config(4, 1).with_transform(Transform::unit(5, 7).with_resize(ResizeFilter::Bilinear)),
    )
    .expect("loader");
    assert_eq!(
        l.epoch(0)
            .next()
            .expect("batch")
            .expect("batch")
            .images
            .size(),
        [4, 3, 5, 7]
    );
}

fn epoch_content(loader: &Loader, epoch: u64) -> Vec<(Vec<f32>, Vec<f32>, Vec<PathBuf>)> {
    loader
        .epoch(epoch)
        .map(|b| {
            let b = b.expect("batch");
            (
                Vec::<f32>::try_from(b.images.flatten(0, -1)).expect("images"),
                Vec::<f32>::try_from(&b.labels).expect("labels"),
                b.paths,
            )
        })
        .collect()
}

#[test]
fn batches_are_identical_whatever_the_number_of_workers() {
    let dir = folder(9, 8, 20);
    let ds = ImageFolder::open(dir.path()).expect("open");
    let cfg = |w| {
        config(4, w)
            .with_augment(Augment::forensic())
            .with_transform(Transform::unit(16, 16))
    };
    let reference = Loader::new(ds.clone(), cfg(0)).expect("loader");
    let e0 = epoch_content(&reference, 0);
    let e1 = epoch_content(&reference, 1);
    assert_eq!(e0.len(), 5);
    for workers in [1, 3, 8] {
        let l = Loader::new(ds.clone(), cfg(workers)).expect("loader");
        assert!(epoch_content(&l, 0) == e0, "{workers} workers, epoch 0");
        assert!(epoch_content(&l, 1) == e1, "{workers} workers, epoch 1");
    }
    // Epochs differ in order and augmentation; the same epoch again is identical.
    assert!(e0 != e1);
    assert!(epoch_content(&reference, 0) == e0);
    let order0: Vec<_> = e0.iter().flat_map(|b| b.2.clone()).collect();
    let order1: Vec<_> = e1.iter().flat_map(|b| b.2.clone()).collect();
    assert_ne!(order0, order1, "shuffled per epoch");
    // Another seed, another order.
    let other = Loader::new(ds, cfg(2).with_seed(12)).expect("loader");
    assert_ne!(other.epoch_order(0), reference.epoch_order(0));
}

#[test]
fn oversampling_balances_classes_and_class_weights_are_reported() {
    let dir = folder(40, 10, 4);
    let ds = ImageFolder::open(dir.path()).expect("open");
    let labels: Vec<Label> = ds.samples().iter().map(|s| s.label).collect();
    let loader =
        Loader::new(ds.clone(), config(10, 0).with_balance(Balance::Oversample)).expect("loader");
    let mut fake = 0usize;
    let mut total = 0usize;
    let mut distinct_fake = std::collections::BTreeSet::new();
    for epoch in 0..60 {
        let order = loader.epoch_order(epoch);
        assert_eq!(order.len(), 50);
        for i in order {
            total += 1;
            if labels[i] == Label::Fake {
                fake += 1;
                distinct_fake.insert(i);
            }
        }
    }
    // 3000 draws at p = 1/2: the standard deviation of the fraction is 0.009.
    let ratio = fake as f64 / total as f64;
    assert!(
        (ratio - 0.5).abs() < 0.04,
        "fake fraction {ratio} with oversampling (0.2 without)"
    );
    assert_eq!(distinct_fake.len(), 10, "every fake image is drawn");
    // The batches follow the order.
    let batch = loader.epoch(3).next().expect("batch").expect("batch");
    assert_eq!(batch.indices, loader.epoch_order(3)[..10]);

    let weighted =
        Loader::new(ds, config(50, 1).with_balance(Balance::ClassWeights)).expect("loader");
    let [wr, wf] = weighted.class_weights();
    assert!(
        (wr - 50.0 / 80.0).abs() < 1e-6 && (wf - 50.0 / 20.0).abs() < 1e-6,
        "{wr} {wf}"
    );
    let b = weighted.epoch(0).next().expect("batch").expect("batch");
    let w = Vec::<f32>::try_from(b.weights.as_ref().expect("weights")).expect("weights");
    let l = Vec::<f32>::try_from(&b.labels).expect("labels");
    let (mut sum_real, mut sum_fake) = (0.0, 0.0);
    for (wi, li) in w.iter().zip(&l) {
        if *li == 1.0 {
            assert_eq!(*wi, wf);
            sum_fake += wi;
        } else {
            assert_eq!(*wi, wr);
            sum_real += wi;
        }
    }
    assert!(
        (sum_real - sum_fake).abs() < 1e-4,
        "balanced total weight {sum_real} vs {sum_fake}"
    );
}

/// A source that counts decodes, to watch how far ahead the loader works.
struct Counting {
    loads: Arc<AtomicUsize>,
    n: usize,
}

impl ImageSource for Counting {
    fn len(&self) -> usize {
        self.n
    }
    fn label(&self, index: usize) -> Label {
        if index.is_multiple_of(2) {
            Label::Real
        } else {
            Label::Fake
        }
    }
    fn path(&self, index: usize) -> PathBuf {
        PathBuf::from(format!("counting/{index}"))
    }
    fn load(&self, index: usize) -> Result<RgbImage, SkipReason> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if index == 7 {
            return Err(SkipReason::Corrupt("index 7 is bad".into()));
        }
        Ok(pattern(8, 8, index as u32))
    }
}

#[test]
fn prefetch_is_bounded_and_bad_samples_shrink_their_batch() {
    let loads = Arc::new(AtomicUsize::new(0));
    let source = Counting {
        loads: Arc::clone(&loads),
        n: 4000,
    };
    let mut cfg = config(4, 2)
        .with_transform(Transform::unit(8, 8))
        .with_shuffle(false);
    cfg.prefetch = 3;
    let loader = Loader::new(source, cfg).expect("loader");
    let mut it = loader.epoch(0);
    let first = it.next().expect("batch").expect("batch");
    assert_eq!(first.len(), 4);
    let second = it.next().expect("batch").expect("batch");
    assert_eq!(
        second.indices,
        [4, 5, 6],
        "sample 7 is skipped, the batch shrinks"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Two batches consumed; at most workers + prefetch = 5 more are ever in flight.
    let ahead = loads.load(Ordering::SeqCst);
    assert!(
        ahead <= (2 + 5) * 4,
        "{ahead} images decoded after two batches"
    );
    assert!(ahead >= 3 * 4, "the loader prefetches ({ahead} decoded)");
    drop(it); // stops the workers mid-epoch
    let after_drop = loads.load(Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(
        loads.load(Ordering::SeqCst),
        after_drop,
        "no work after the iterator is dropped"
    );
    let skipped = loader.skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].path, PathBuf::from("counting/7"));
}

#[test]
fn invalid_configurations_are_errors() {
    let dir = folder(2, 2, 4);
    let ds = ImageFolder::open(dir.path()).expect("open");
    assert!(Loader::new(ds.clone(), config(0, 1)).is_err());
    assert!(Loader::new(
        ds.clone(),
        config(2, 1).with_transform(Transform::unit(0, 4))
    )
    .is_err());
    let bad_std = Transform::unit(4, 4).with_normalize(Normalize::MeanStd {
        mean: [0.0; 3],
        std: [1.0, 0.0, 1.0],
    });
    assert!(Loader::new(ds.clone(), config(2, 1).with_transform(bad_std)).is_err());
    let bad_aug = Augment {
        zoom_range: [1.2, 0.8],
        ..Augment::none()
    };
    assert!(Loader::new(ds, config(2, 1).with_augment(bad_aug)).is_err());
    // A config is plain data: it round-trips through JSON.
    let cfg = config(8, 3)
        .with_augment(Augment::forensic())
        .with_balance(Balance::Oversample);
    let back: LoaderConfig =
        serde_json::from_str(&serde_json::to_string(&cfg).expect("json")).expect("parse");
    assert_eq!(back, cfg);
}

/// Data-parallel shards (`LoaderConfig::shard`), as `DistributedSampler(drop_last=True)`:
/// 23 samples over 3 ranks give 7 each (the 2 left over dropped), disjoint, drawn from
/// one epoch order shared by all ranks (rank r takes positions r, r+3, ...), a new
/// partition each epoch, the same number of batches on every rank.
#[test]
fn shards_split_each_epoch_into_equal_disjoint_parts() {
    let dir = folder(13, 10, 12);
    let ds = ImageFolder::open(dir.path()).expect("open");
    let whole = Loader::new(ds.clone(), config(3, 1)).expect("loader");
    for epoch in [0, 1] {
        let order = whole.epoch_order(epoch);
        let mut seen = Vec::new();
        for rank in 0..3 {
            let loader = Loader::new(ds.clone(), config(3, 1).with_shard(rank, 3)).expect("shard");
            assert_eq!(loader.samples_per_epoch(), 7);
            assert_eq!(
                loader.len(),
                3,
                "7 samples in batches of 3: every rank 3 steps"
            );
            let part = loader.epoch_order(epoch);
            let expected: Vec<usize> = order
                .iter()
                .copied()
                .skip(rank)
                .step_by(3)
                .take(7)
                .collect();
            assert_eq!(part, expected, "epoch {epoch} rank {rank}");
            let drawn: Vec<usize> = loader
                .epoch(epoch)
                .flat_map(|b| b.expect("batch").indices)
                .collect();
            assert_eq!(drawn, part);
            seen.extend(part);
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 21, "disjoint: 21 distinct samples");
    }
    let e0 = Loader::new(ds.clone(), config(3, 1).with_shard(0, 3)).expect("shard");
    assert_ne!(
        e0.epoch_order(0),
        e0.epoch_order(1),
        "a new partition each epoch"
    );
    for (rank, world) in [(3, 3), (0, 0), (0, 24)] {
        let err = Loader::new(ds.clone(), config(3, 1).with_shard(rank, world))
            .expect_err("invalid shard");
        assert!(err.to_string().contains("shard"), "{err}");
    }
}
