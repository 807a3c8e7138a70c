//! The batch loader: per-epoch seeded order, decoding and augmentation on worker
//! threads, a bounded prefetch window, batches in order.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::augment::{keyed_rng, sample_rng, Augment};
use crate::dataset::{ImageSource, Label};
use crate::error::{Error, Result};
use crate::pipeline::prepare_image;
use crate::skip::{SkipReason, SkipReport, SkipSummary};
use crate::transform::Transform;

/// How the loader compensates for unequal numbers of real and fake images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Every sample once per epoch.
    #[default]
    None,
    /// Weighted sampling with replacement: an epoch draws as many samples as the
    /// dataset holds, each draw picking real or fake with probability 1/2, then a
    /// sample of that label uniformly. Replaces `shuffle`.
    Oversample,
    /// Every sample once per epoch, and each batch carries per-sample weights
    /// `n / (2 · n_label)` (scikit-learn's `class_weight="balanced"`), for a weighted
    /// loss; see [`Loader::class_weights`].
    ClassWeights,
}

/// The loader's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoaderConfig {
    /// Samples per batch.
    pub batch_size: usize,
    /// Shuffle the samples each epoch (seeded by `seed` and the epoch).
    pub shuffle: bool,
    /// Drop the last batch if it is incomplete.
    pub drop_last: bool,
    /// Decoding threads, started for each epoch; 0 decodes on the calling thread
    /// (which then keeps one batch-sized staging buffer).
    pub workers: usize,
    /// Batches prepared ahead beyond one per worker (at least 1 is used). At most
    /// `workers + prefetch` batches exist at once, made or waiting to be taken: memory
    /// is bounded by that, whatever the dataset size.
    pub prefetch: usize,
    /// Seed of the shuffling, sampling and augmentation.
    pub seed: u64,
    /// Resizing and normalisation.
    pub transform: Transform,
    /// Augmentation ([`Augment::none`] for evaluation).
    pub augment: Augment,
    /// Class balancing.
    pub balance: Balance,
    /// `(rank, world_size)`: this process's part of each epoch in data-parallel training,
    /// as PyTorch's `DistributedSampler(drop_last=True)`: every rank draws the same
    /// epoch order (same seed), takes every `world_size`-th sample from its rank, and
    /// the order's tail that would make the parts unequal is dropped, so every rank
    /// takes the same number of steps. `None`: the whole epoch.
    pub shard: Option<(usize, usize)>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 32,
            shuffle: true,
            drop_last: false,
            workers: std::thread::available_parallelism()
                .map(|n| n.get().min(8))
                .unwrap_or(2),
            prefetch: 2,
            seed: 0,
            transform: Transform::default(),
            augment: Augment::none(),
            balance: Balance::None,
            shard: None,
        }
    }
}

impl LoaderConfig {
    /// An evaluation configuration: no shuffle, no augmentation, every sample once.
    pub fn eval(transform: Transform, batch_size: usize) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: false,
            transform,
            ..LoaderConfig::default()
        }
    }

    /// Sets the batch size.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets the number of worker threads.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the transform.
    pub fn with_transform(mut self, transform: Transform) -> Self {
        self.transform = transform;
        self
    }

    /// Sets the augmentation.
    pub fn with_augment(mut self, augment: Augment) -> Self {
        self.augment = augment;
        self
    }

    /// Sets the balancing.
    pub fn with_balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    /// Sets shuffling.
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Sets the part of each epoch this rank takes ([`LoaderConfig::shard`]).
    pub fn with_shard(mut self, rank: usize, world_size: usize) -> Self {
        self.shard = Some((rank, world_size));
        self
    }

    /// Sets `drop_last`.
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }
}

/// One batch of model inputs.
///
/// A sample whose file turns out to be unreadable is left out of its batch (and
/// reported by [`Loader::skipped`]), so a batch can be smaller than `batch_size`.
#[derive(Debug)]
pub struct Batch {
    /// Images, `[N, 3, H, W]` f32, transformed as the config says.
    pub images: Tensor,
    /// Targets, `[N]` f32: 1 = fake, 0 = real.
    pub labels: Tensor,
    /// Per-sample weights `[N]` f32 with [`Balance::ClassWeights`], else `None`.
    pub weights: Option<Tensor>,
    /// The files of the samples, in batch order.
    pub paths: Vec<PathBuf>,
    /// The samples' indices in the source.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch has no sample.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

struct Shared {
    source: Arc<dyn ImageSource>,
    config: LoaderConfig,
    sample_weights: [f32; 2],
    skipped: Mutex<BTreeMap<PathBuf, SkipReport>>,
}

/// Yields shuffled, augmented batches of an [`ImageSource`], decoding on a pool of
/// worker threads.
///
/// The content of every batch is a function of the source, the config and the epoch
/// only: sample order comes from an RNG keyed by `(seed, epoch)`, each sample's
/// augmentation from one keyed by `(seed, epoch, position in the epoch)`, and batches
/// are returned in order, so the number of workers changes speed, not results.
///
/// ```no_run
/// # mod deepfake { pub mod data { pub use df_data::*; } }
/// use deepfake::data::{Augment, ImageFolder, Loader, LoaderConfig, Transform};
/// # fn main() -> deepfake::data::Result<()> {
/// let data = ImageFolder::open("data/train")?;
/// let config = LoaderConfig::default()
///     .with_transform(Transform::unit(256, 256))
///     .with_augment(Augment::study())
///     .with_workers(4)
///     .with_seed(7);
/// let loader = Loader::new(data, config)?;
/// for epoch in 0..2 {
///     for batch in loader.epoch(epoch) {
///         let batch = batch?;
///         assert_eq!(batch.images.size()[1..], [3, 256, 256]);
///     }
/// }
/// println!("{}", loader.skip_summary().to_json()?);
/// # Ok(()) }
/// ```
pub struct Loader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("samples", &self.shared.source.len())
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Loader {
    /// A loader over `source`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero batch size, an invalid transform or
    /// augmentation, or an empty source.
    pub fn new(source: impl ImageSource + 'static, config: LoaderConfig) -> Result<Self> {
        Self::from_arc(Arc::new(source), config)
    }

    /// A loader over a shared source.
    ///
    /// # Errors
    /// As [`Loader::new`].
    pub fn from_arc(source: Arc<dyn ImageSource>, config: LoaderConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        config.transform.validate()?;
        config.augment.validate()?;
        if source.is_empty() {
            return Err(Error::config("source", "the dataset has no sample"));
        }
        if let Some((rank, world)) = config.shard {
            if world == 0 || rank >= world {
                return Err(Error::config(
                    "shard",
                    format!("rank {rank} of world size {world}: need rank < world_size"),
                ));
            }
            if source.len() < world {
                return Err(Error::config(
                    "shard",
                    format!("{} samples cannot be shared by {world} ranks", source.len()),
                ));
            }
        }
        let mut counts = [0usize; 2];
        for i in 0..source.len() {
            counts[source.label(i).index()] += 1;
        }
        let n = source.len() as f32;
        let weight = |c: usize| if c == 0 { 0.0 } else { n / (2.0 * c as f32) };
        let skipped = source
            .skipped()
            .into_iter()
            .map(|r| (r.path.clone(), r))
            .collect();
        Ok(Loader {
            shared: Arc::new(Shared {
                source,
                config,
                sample_weights: [weight(counts[0]), weight(counts[1])],
                skipped: Mutex::new(skipped),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.shared.config
    }

    /// The source.
    pub fn source(&self) -> &dyn ImageSource {
        self.shared.source.as_ref()
    }

    /// Samples drawn per epoch: the source's size, or this rank's part of it
    /// ([`LoaderConfig::shard`]).
    pub fn samples_per_epoch(&self) -> usize {
        let n = self.shared.source.len();
        match self.shared.config.shard {
            Some((_, world)) => n / world,
            None => n,
        }
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        let n = self.samples_per_epoch();
        let b = self.shared.config.batch_size;
        if self.shared.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Whether an epoch has no batch (`drop_last` with fewer samples than a batch).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `(real, fake)` class weights `n / (2 · n_label)`, as Keras' `class_weight`
    /// would take them; [`Balance::ClassWeights`] puts them in every batch.
    pub fn class_weights(&self) -> [f32; 2] {
        self.shared.sample_weights
    }

    /// The source indices of epoch `epoch`, in order (before dropping an incomplete
    /// last batch).
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        epoch_order(&self.shared, epoch)
    }

    /// The batches of epoch `epoch`. Worker threads start now and stop when the
    /// iterator ends or is dropped.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        EpochIter::new(Arc::clone(&self.shared), epoch)
    }

    /// Every input skipped so far: those left out when the source was opened and those
    /// that failed to decode in an epoch, sorted by path.
    pub fn skipped(&self) -> Vec<SkipReport> {
        lock(&self.shared.skipped).values().cloned().collect()
    }

    /// [`Loader::skipped`] as a summary (serialisable to JSON).
    pub fn skip_summary(&self) -> SkipSummary {
        SkipSummary::new(self.skipped())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const TAG_ORDER: u64 = 0x6f72_6465_7221; // "order!"

fn epoch_order(shared: &Shared, epoch: u64) -> Vec<usize> {
    let order = whole_epoch_order(shared, epoch);
    match shared.config.shard {
        Some((rank, world)) => {
            let per_rank = order.len() / world;
            order
                .into_iter()
                .skip(rank)
                .step_by(world)
                .take(per_rank)
                .collect()
        }
        None => order,
    }
}

/// The epoch's order over the whole source (the same on every rank).
fn whole_epoch_order(shared: &Shared, epoch: u64) -> Vec<usize> {
    let n = shared.source.len();
    let cfg = &shared.config;
    let mut rng = keyed_rng(cfg.seed, epoch, u64::MAX, TAG_ORDER);
    match cfg.balance {
        Balance::Oversample => {
            let mut by_label: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
            for i in 0..n {
                by_label[shared.source.label(i).index()].push(i);
            }
            if by_label.iter().any(Vec::is_empty) {
                let all: Vec<usize> = (0..n).collect();
                return (0..n).map(|_| all[rng.random_range(0..n)]).collect();
            }
            (0..n)
                .map(|_| {
                    let group = &by_label[usize::from(rng.random::<bool>())];
                    group[rng.random_range(0..group.len())]
                })
                .collect()
        }
        Balance::None | Balance::ClassWeights => {
            let mut order: Vec<usize> = (0..n).collect();
            if cfg.shuffle {
                order.shuffle(&mut rng);
            }
            order
        }
    }
}

/// A batch's work: its number and the `(position in epoch, source index)` pairs.
type Job = (usize, Vec<(usize, usize)>);

/// The batches of one epoch, in order (see [`Loader::epoch`]).
///
/// Yields `Result<Batch>`: bad images never produce an error (they are skipped); an
/// error means the machinery failed (a worker panicked, libtorch failed).
pub struct EpochIter {
    shared: Arc<Shared>,
    epoch: u64,
    jobs: Vec<Job>,
    next_issue: usize,
    next_yield: usize,
    max_in_flight: usize,
    job_tx: Option<Sender<Job>>,
    result_rx: Option<Receiver<(usize, Result<Option<Batch>>)>>,
    pending: BTreeMap<usize, Result<Option<Batch>>>,
    cancel: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl EpochIter {
    fn new(shared: Arc<Shared>, epoch: u64) -> Self {
        let cfg = &shared.config;
        let order = epoch_order(&shared, epoch);
        let mut jobs: Vec<Job> = order
            .chunks(cfg.batch_size)
            .enumerate()
            .map(|(b, chunk)| {
                let start = b * cfg.batch_size;
                (
                    b,
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(k, &i)| (start + k, i))
                        .collect(),
                )
            })
            .collect();
        if cfg.drop_last && jobs.last().is_some_and(|(_, j)| j.len() < cfg.batch_size) {
            jobs.pop();
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let mut it = EpochIter {
            shared: Arc::clone(&shared),
            epoch,
            jobs,
            next_issue: 0,
            next_yield: 0,
            max_in_flight: cfg.workers + cfg.prefetch.max(1),
            job_tx: None,
            result_rx: None,
            pending: BTreeMap::new(),
            cancel,
            workers: Vec::new(),
        };
        if cfg.workers > 0 && !it.jobs.is_empty() {
            let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
            let (res_tx, res_rx) = crossbeam_channel::unbounded();
            for w in 0..cfg.workers.min(it.jobs.len()) {
                let job_rx = job_rx.clone();
                let res_tx = res_tx.clone();
                let shared = Arc::clone(&shared);
                let cancel = Arc::clone(&it.cancel);
                let spawned = std::thread::Builder::new()
                    .name(format!("df-data-worker-{w}"))
                    .spawn(move || worker(&shared, epoch, &job_rx, &res_tx, &cancel));
                // If a thread cannot be spawned the others (or the caller) do the work.
                if let Ok(handle) = spawned {
                    it.workers.push(handle);
                }
            }
            if !it.workers.is_empty() {
                it.job_tx = Some(job_tx);
                it.result_rx = Some(res_rx);
            }
        }
        it
    }

    /// Batches this epoch yields at most (fewer if every image of a batch is bad).
    pub fn batches(&self) -> usize {
        self.jobs.len()
    }

    fn issue(&mut self) {
        let Some(tx) = &self.job_tx else { return };
        while self.next_issue < self.jobs.len()
            && self.next_issue < self.next_yield + self.max_in_flight
        {
            let job = std::mem::take(&mut self.jobs[self.next_issue].1);
            if tx.send((self.next_issue, job)).is_err() {
                break;
            }
            self.next_issue += 1;
        }
    }

    fn shutdown(&mut self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.job_tx = None;
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        self.result_rx = None;
    }
}

impl Iterator for EpochIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.next_yield < self.jobs.len() {
            let current = self.next_yield;
            let outcome = if self.job_tx.is_none() {
                let job = std::mem::take(&mut self.jobs[current].1);
                run_job(&self.shared, self.epoch, &job)
            } else {
                self.issue();
                loop {
                    if let Some(r) = self.pending.remove(&current) {
                        break r;
                    }
                    let received = self.result_rx.as_ref().map(Receiver::recv);
                    match received {
                        Some(Ok((b, r))) => {
                            self.pending.insert(b, r);
                        }
                        _ => {
                            break Err(Error::WorkerPanic(
                                "every loader worker stopped before the epoch ended".into(),
                            ))
                        }
                    }
                }
            };
            self.next_yield += 1;
            match outcome {
                Ok(Some(batch)) => return Some(Ok(batch)),
                Ok(None) => continue,
                Err(e) => {
                    self.next_yield = self.jobs.len();
                    self.shutdown();
                    return Some(Err(e));
                }
            }
        }
        self.shutdown();
        None
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker(
    shared: &Shared,
    epoch: u64,
    jobs: &Receiver<Job>,
    results: &Sender<(usize, Result<Option<Batch>>)>,
    cancel: &AtomicBool,
) {
    while let Ok((b, job)) = jobs.recv() {
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        let r =
            catch_unwind(AssertUnwindSafe(|| run_job(shared, epoch, &job))).unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(Error::WorkerPanic(msg))
            });
        if results.send((b, r)).is_err() {
            break;
        }
    }
}

/// Decodes and transforms one batch; `None` if every sample was skipped.
fn run_job(shared: &Shared, epoch: u64, job: &[(usize, usize)]) -> Result<Option<Batch>> {
    let cfg = &shared.config;
    let t = &cfg.transform;
    let per = t.numel();
    BATCH_BUFFER.with(|buf| {
        let mut data = buf.borrow_mut();
        // Every value used is written below; growing (not re-zeroing) the worker's
        // buffer saves a memset of the whole batch (libtorch copies it anyway).
        if data.len() < per * job.len() {
            data.resize(per * job.len(), 0.0);
        }
        fill_batch(shared, epoch, job, &mut data)
    })
}

thread_local! {
    /// Each worker's batch staging buffer, reused from batch to batch.
    static BATCH_BUFFER: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn fill_batch(
    shared: &Shared,
    epoch: u64,
    job: &[(usize, usize)],
    data: &mut [f32],
) -> Result<Option<Batch>> {
    let cfg = &shared.config;
    let t = &cfg.transform;
    let per = t.numel();
    let mut labels = Vec::with_capacity(job.len());
    let mut paths = Vec::with_capacity(job.len());
    let mut indices = Vec::with_capacity(job.len());
    let mut n = 0;
    for &(pos, idx) in job {
        let loaded = shared.source.load_epoch(idx, epoch).and_then(|img| {
            t.check_crop(img.width(), img.height())
                .map(|()| img)
                .map_err(SkipReason::TooSmall)
        });
        let img = match loaded {
            Ok(img) => img,
            Err(reason) => {
                let path = shared.source.path(idx);
                lock(&shared.skipped)
                    .entry(path.clone())
                    .or_insert(SkipReport { path, reason });
                continue;
            }
        };
        let mut rng = sample_rng(cfg.seed, epoch, pos as u64);
        prepare_image(
            &img,
            t,
            &cfg.augment,
            &mut rng,
            &mut data[n * per..(n + 1) * per],
        )?;
        labels.push(shared.source.label(idx));
        paths.push(shared.source.path(idx));
        indices.push(idx);
        n += 1;
    }
    if n == 0 {
        return Ok(None);
    }
    let images = Tensor::f_from_slice(&data[..n * per])?.f_view([
        n as i64,
        3,
        i64::from(t.height),
        i64::from(t.width),
    ])?;
    let targets: Vec<f32> = labels.iter().map(|l| l.target()).collect();
    let weights = match cfg.balance {
        Balance::ClassWeights => {
            let w: Vec<f32> = labels
                .iter()
                .map(|l: &Label| shared.sample_weights[l.index()])
                .collect();
            Some(Tensor::f_from_slice(&w)?)
        }
        _ => None,
    };
    Ok(Some(Batch {
        images,
        labels: Tensor::f_from_slice(&targets)?,
        weights,
        paths,
        indices,
    }))
}
