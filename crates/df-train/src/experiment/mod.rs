//! One training run from image folders to a report: what the `train`, `compare` and
//! `demo` examples and the real-data checks share.
//!
//! [`run_experiment`] builds the registered model, opens the image folders, makes the
//! loaders with the model's input transform, trains with the configured optimizer and
//! callbacks, evaluates the final model on the validation set, and writes everything a
//! person opens afterwards into the output directory:
//!
//! | file | what |
//! | --- | --- |
//! | `experiment.json` | the [`ExperimentConfig`] |
//! | `config.json` | the trainer's nested [`crate::TrainingConfig`] (model name and config, optimizer, data, callbacks) |
//! | `last.safetensors` | resumable checkpoint of the last completed epoch |
//! | `best.safetensors`, `model.safetensors` | best and final model (`df-models` checkpoints) |
//! | `history.json`, `history.csv` | per-epoch metrics |
//! | `history.png`, `history.svg` | loss and accuracy curves |
//! | `metrics.json` | `df-metrics`' report on the validation set (final model) |
//! | `roc.png`, `pr.png`, `calibration.png` | the validation curves |
//! | `skipped.json` | unreadable input files, skipped |

mod checks;
mod config;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use df_data::sbi::FaceGeometry;
use df_data::{
    FolderOptions, ImageFolder, ImageSource, Loader, LoaderConfig, PseudoFakeSource, PseudoFakes,
};
use df_layers::util::param_count;
use df_metrics::{EvaluatorConfig, History, HistoryAnalysis};
use df_models::Model;
use tch::nn::VarStore;
use tch::Device;

pub(crate) use self::checks::{changes_against, check_options};
pub use self::checks::{check_experiment, resume_changes};
pub use self::config::{
    DataConfig, DeviceChoice, ExperimentConfig, ExperimentOutcome, ModelChoice,
};
use crate::callbacks::ModelCheckpointConfig;
use crate::data_record::DataRecord;
use crate::error::{config, Error, Result};
use crate::evaluate::evaluate_in;
use crate::run_dir::{self, Reuse};
use crate::run_files::{files, write_report};
use crate::source::{transform_for, BatchSource};
use crate::trainer::{Trainer, SECONDS};

fn json_err(path: &Path) -> impl FnOnce(serde_json::Error) -> Error + '_ {
    move |source| Error::Json {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs the experiment described by `cfg`; see the module documentation for the files
/// it writes.
///
/// Process-wide effects, beside [`Trainer::fit`]'s: in a distributed launch (the
/// environment sets `RANK`, `WORLD_SIZE` ...), the process joins the process group, is
/// bound to end with its launcher, and with several ranks on one machine sets libtorch's
/// number of threads to its share of the cores.
///
/// # Errors
/// An unknown model or invalid option, a missing or single-class data folder, a data or
/// training error ([`Error::NonFiniteLoss`] ...), an I/O error.
pub fn run_experiment(cfg: &ExperimentConfig) -> Result<ExperimentOutcome> {
    let (device, reuse) = check_options(cfg)?;
    let group = join_process_group()?;
    let cfg = &with_group_rank(cfg, group.as_ref())?;
    let device = group_device(group.as_ref(), device)?;
    let resume_changes = if cfg.resume {
        resume_changes(cfg)?
    } else {
        Vec::new()
    };
    let vs = VarStore::new(device);
    let model = cfg.model.build_seeded(&vs, cfg.seed)?;
    let params = param_count(&vs);
    // Validated with every other option in `check_options`.
    let transform =
        transform_for(&model.input_spec(), cfg.data.resize).with_center_crop(cfg.data.center_crop);
    let data = RunData::open(cfg, transform)?;
    let preparation = df_models::ImagePreparation {
        // Face folders made by `prepare_faces`: scoring crops faces the same way.
        faces: crate::source::face_crops_of(&cfg.data.train)?,
        ..crate::source::preparation_of(&transform)
    };
    let mut trainer = trainer_for(cfg, model, vs, &data, resume_changes, preparation, group)?;
    // Every option has been checked (model, data, loaders, optimizer, callbacks): only
    // now is anything written, holding the folder's lock for the whole run (rank 0).
    let _lock = match cfg.rank {
        0 => Some(claim_out_dir(
            cfg,
            reuse,
            data.record.as_ref(),
            data.audit.as_ref(),
        )?),
        _ => None,
    };
    if cfg.rank == 0 {
        data.write_landmark_cache(cfg)?;
    }
    let val_source = data.val.as_ref().map(|l| l as &dyn BatchSource);
    let extra: Vec<(&str, &dyn BatchSource)> = data
        .sbi_holdout
        .as_ref()
        .map(|l| ("sbi", l as &dyn BatchSource))
        .into_iter()
        .collect();
    let history = trainer
        .fit_with_extra(&data.train, val_source, &extra)?
        .clone();
    let (model, var_store) = trainer.into_parts();
    let evaluation = match data.final_loader(cfg)? {
        Some(v) => Some(evaluate_in(
            model.as_ref(),
            v.as_ref(),
            device,
            EvaluatorConfig::default(),
            cfg.precision,
        )?),
        None => None,
    };
    let analysis = analyse(&history, data.val.is_some())?;
    let mut skipped = data.train.skipped();
    if let Some(v) = &data.val {
        skipped.extend(v.skipped());
    }
    skipped.retain(|r| !is_pseudo_path(&r.path));
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.dedup_by(|a, b| a.path == b.path);
    let n_skipped = skipped.len();
    if cfg.rank == 0 {
        write_report(&cfg.out_dir, &history, evaluation.as_ref())?;
        let summary = df_data::SkipSummary::new(skipped);
        df_io::write_atomic(&cfg.out_dir.join(files::SKIPPED), summary.to_json()?)?;
    }
    Ok(ExperimentOutcome {
        seconds_per_epoch: seconds_per_epoch(&history),
        history,
        evaluation,
        analysis,
        params,
        model,
        var_store,
        skipped: n_skipped,
        audit: data.audit,
    })
}

/// Joins the process group of a distributed launch (`train --nproc N`, torchrun, Slurm, a
/// PyTorchJob set `RANK`, `WORLD_SIZE`, `MASTER_ADDR` and `MASTER_PORT`); `None` without
/// one.
fn join_process_group() -> Result<Option<df_dist::ProcessGroup>> {
    let Some(dist) = df_dist::DistConfig::from_env()? else {
        return Ok(None);
    };
    // A rank that `train --nproc` started ends with it, never as an orphan.
    df_dist::bind_to_launcher()?;
    if dist.local_world_size > 1 {
        // The machine's cores shared among its ranks, not oversubscribed.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tch::set_num_threads((cores / dist.local_world_size).max(1) as i32);
    }
    Ok(Some(df_dist::ProcessGroup::new(&dist)?))
}

/// `cfg` with the group's rank and world size (recorded in experiment.json; a resume must
/// keep the world size); several processes without a group are refused.
fn with_group_rank(
    cfg: &ExperimentConfig,
    group: Option<&df_dist::ProcessGroup>,
) -> Result<ExperimentConfig> {
    let mut effective = cfg.clone();
    if let Some(g) = group {
        effective.rank = g.rank();
        effective.world_size = g.world_size();
    } else if cfg.world_size > 1 {
        return Err(config(
            "world_size",
            format!(
                "{} processes need a process group: start them with `train --nproc {}` or \
                 a launcher that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (torchrun)",
                cfg.world_size, cfg.world_size
            ),
        ));
    }
    Ok(effective)
}

/// Where a rank trains: NCCL on the rank's GPU (cuda:LOCAL_RANK); Gloo's collectives take
/// CPU tensors, so a Gloo group refuses a GPU.
fn group_device(group: Option<&df_dist::ProcessGroup>, device: Device) -> Result<Device> {
    match group {
        Some(g) if g.device() != Device::Cpu => Ok(g.device()),
        Some(_) if device != Device::Cpu => Err(config(
            "device",
            format!(
                "{device:?} in a Gloo group: Gloo's collectives take CPU tensors; train on \
                 the CPU, or on GPUs with DF_DIST_BACKEND=nccl (the `nccl` feature)"
            ),
        )),
        _ => Ok(device),
    }
}

/// A run's data: the training loader, the validation loader (this rank's part), the
/// whole validation set of a distributed run (for rank 0's final report), the record
/// of the files (rank 0), and with pseudo-fakes the faces they are made about and the
/// held-out pseudo-fakes scored beside another validation folder.
struct RunData {
    train: Loader,
    val: Option<Loader>,
    val_whole: Option<ImageFolder>,
    record: Option<DataRecord>,
    audit: Option<df_data::AuditReport>,
    transform: df_data::Transform,
    shard: Option<(usize, usize)>,
    /// The validation set's pseudo-fakes (validation on the held-out part of the training
    /// folder), for the final evaluation's loader.
    val_pseudo: Option<(PseudoFakes, Arc<BTreeMap<PathBuf, FaceGeometry>>)>,
    /// The held-out real images and their pseudo-fakes, scored as `val_sbi_*` (`val` and
    /// `val_split` both given).
    sbi_holdout: Option<Loader>,
    /// The faces found, with the cache to write and the one read.
    faces: Option<(
        crate::pseudo::FaceTable,
        Option<crate::pseudo::LandmarkCache>,
    )>,
}

/// Whether a sample path names a pseudo-fake (its real image's path with `#sbi`).
fn is_pseudo_path(path: &Path) -> bool {
    path.as_os_str().as_encoded_bytes().ends_with(b"#sbi")
}

/// Opens the training folder: with pseudo-fakes a folder of real images only is
/// accepted, and one without real images is refused naming the option.
fn open_training_folder(cfg: &ExperimentConfig) -> Result<ImageFolder> {
    let Some(method) = &cfg.data.pseudo_fakes else {
        return Ok(ImageFolder::open(&cfg.data.train)?);
    };
    let options = FolderOptions::default().with_real_only(true);
    let no_reals = |why: String| {
        config(
            "pseudo_fakes",
            format!(
                "--pseudo-fakes {} makes its fakes from real images, and the training folder \
                 {} has none ({why})",
                method.name(),
                cfg.data.train.display()
            ),
        )
    };
    match ImageFolder::open_with(&cfg.data.train, &options) {
        Ok(folder) if folder.label_counts().0 == 0 => Err(no_reals("no real image".into())),
        Ok(folder) => Ok(folder),
        Err(e @ (df_data::Error::SingleClass { .. } | df_data::Error::EmptyClass { .. })) => {
            Err(no_reals(e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The faces of `folder`'s real images ([`crate::pseudo`]): from its `prepare_faces`
/// manifest, the run's cache, else MTCNN; each image without a face noted. With the cache
/// read (to write the new one only when it changed).
///
/// # Errors
/// No real image has a face; the detector fails.
fn run_faces(
    cfg: &ExperimentConfig,
    folder: &ImageFolder,
    method: &PseudoFakes,
) -> Result<(
    crate::pseudo::FaceTable,
    Option<crate::pseudo::LandmarkCache>,
)> {
    let manifest = crate::pseudo::manifest_faces(&cfg.data.train)?;
    let cache_path = cfg.out_dir.join(crate::pseudo::LANDMARKS_FILE);
    let own = crate::pseudo::LandmarkCache::read(&cache_path);
    // Another run's cache to start from (the same data): its faces are not found again.
    let cache = match &cfg.data.landmarks_from {
        Some(path) => {
            let mut seed = crate::pseudo::LandmarkCache::read(path).ok_or_else(|| {
                config(
                    "landmarks_from",
                    format!(
                        "{} is not a landmark cache (a run's {})",
                        path.display(),
                        crate::pseudo::LANDMARKS_FILE
                    ),
                )
            })?;
            if let Some(own) = &own {
                seed.images.extend(own.images.clone());
            }
            Some(seed)
        }
        None => own.clone(),
    };
    let speak = cfg.verbosity != crate::Verbosity::Quiet && cfg.rank == 0;
    let said = std::sync::atomic::AtomicBool::new(false);
    let finder = || -> Result<Box<dyn crate::pseudo::FaceFinder>> {
        if speak && !said.swap(true, std::sync::atomic::Ordering::SeqCst) {
            eprintln!(
                "note: --pseudo-fakes {}: finding the faces of the real images with MTCNN \
                 (once: kept in {})",
                method.name(),
                cache_path.display()
            );
        }
        Ok(Box::new(crate::pseudo::MtcnnFinder::load()?))
    };
    let table = crate::pseudo::find_faces(
        folder,
        &cfg.data.train,
        &manifest,
        cache.as_ref(),
        &finder,
        cfg.data.workers.max(1),
    )?;
    let reals = table.faces.len() + table.no_face.len();
    if table.faces.is_empty() {
        return Err(config(
            "pseudo_fakes",
            format!(
                "no face was found in any of the {reals} real images of {}: --pseudo-fakes {} \
                 blends about a face (MTCNN's box and landmarks); train on face photos or \
                 crops (prepare_faces)",
                cfg.data.train.display(),
                method.name()
            ),
        ));
    }
    if speak && !table.no_face.is_empty() {
        let first = table.no_face[0]
            .strip_prefix(&cfg.data.train)
            .unwrap_or(&table.no_face[0])
            .display()
            .to_string();
        eprintln!(
            "note: --pseudo-fakes {}: no face found in {} of the {reals} real images \
             ({first:?} ...); they get no pseudo-fake",
            method.name(),
            table.no_face.len(),
        );
    }
    Ok((table, own))
}

/// `set` as a loader source: with `pseudo`, plus a pseudo-fake of each real image with a
/// face, drawn once (validation).
fn eval_source(
    set: ImageFolder,
    pseudo: Option<&(PseudoFakes, Arc<BTreeMap<PathBuf, FaceGeometry>>)>,
    seed: u64,
) -> Result<Arc<dyn ImageSource>> {
    Ok(match pseudo {
        Some((method, faces)) => {
            Arc::new(PseudoFakeSource::new(set, faces, *method, seed)?.fixed())
        }
        None => Arc::new(set),
    })
}

impl RunData {
    fn open(cfg: &ExperimentConfig, transform: df_data::Transform) -> Result<RunData> {
        let folder = open_training_folder(cfg)?;
        let faces = match &cfg.data.pseudo_fakes {
            Some(method) => Some(run_faces(cfg, &folder, method)?),
            None => None,
        };
        let face_map = faces.as_ref().map(|(t, _)| Arc::new(t.faces.clone()));
        let pseudo = cfg.data.pseudo_fakes.zip(face_map);
        let (train_set, val_set, holdout) = match (&cfg.data.val, cfg.data.val_split) {
            (Some(dir), split) => {
                let val = ImageFolder::open(dir)?;
                folder.check_disjoint(&val)?;
                match split.filter(|_| pseudo.is_some()) {
                    Some(f) => {
                        let (t, h) = folder.validation_split(f, cfg.seed)?;
                        (t, Some(val), Some(h))
                    }
                    None => (folder, Some(val), None),
                }
            }
            (None, Some(f)) => {
                let (t, v) = folder.validation_split(f, cfg.seed)?;
                (t, Some(v), None)
            }
            (None, None) => (folder, None, None),
        };
        // The validation set is the held-out part of the training folder: its real images'
        // pseudo-fakes join it.
        let val_pseudo = pseudo.clone().filter(|_| cfg.data.val.is_none());
        // The files trained and validated on: a resume on other files is refused, naming
        // what changed; a fresh run records them (`data.json`).
        let record = if cfg.rank == 0 {
            let record = DataRecord::of(&train_set, val_set.as_ref())?;
            if cfg.resume {
                record.check_resume(&cfg.out_dir)?;
            }
            Some(record)
        } else {
            None
        };
        let audit = if cfg.rank == 0 && cfg.data.audit {
            if train_set.label_counts().1 == 0 {
                if cfg.verbosity != crate::Verbosity::Quiet {
                    eprintln!(
                        "note: data audit: skipped, the training folder holds real images \
                         only (its fakes are the pseudo-fakes made from them)"
                    );
                }
                None
            } else {
                Some(audit_data(cfg, &train_set, val_set.as_ref())?)
            }
        } else {
            None
        };
        // Data-parallel: each epoch's order split among the ranks (equal parts, the same
        // number of steps everywhere); the validation set split whole, scores gathered.
        let shard = (cfg.world_size > 1).then_some((cfg.rank, cfg.world_size));
        // The final evaluation (rank 0's report) is on the whole validation set.
        let val_whole = if shard.is_some() {
            val_set.clone()
        } else {
            None
        };
        let val_set = match (val_set, shard) {
            (Some(v), Some((rank, world))) => Some(v.part(rank, world)?),
            (v, _) => v,
        };
        let loader_config = LoaderConfig {
            batch_size: cfg.data.batch_size,
            shuffle: true,
            drop_last: false,
            workers: cfg.data.workers,
            prefetch: 2,
            seed: cfg.seed,
            transform,
            augment: cfg.data.augment,
            balance: cfg.data.balance,
            shard,
        };
        let train = match &pseudo {
            // Each real image and, each epoch, a pseudo-fake of it drawn from (seed, epoch,
            // index): both through the same transform and augmentation.
            Some((method, faces)) => Loader::new(
                PseudoFakeSource::new(train_set, faces, *method, cfg.seed)?,
                loader_config,
            )?,
            None => Loader::new(train_set, loader_config)?,
        };
        let val = val_set
            .map(|v| {
                eval_loader(
                    cfg,
                    transform,
                    eval_source(v, val_pseudo.as_ref(), cfg.seed)?,
                )
            })
            .transpose()?;
        let sbi_holdout = match (holdout, &pseudo) {
            (Some(h), Some(p)) => {
                let h = match shard {
                    Some((rank, world)) => h.part(rank, world)?,
                    None => h,
                };
                Some(eval_loader(
                    cfg,
                    transform,
                    eval_source(h, Some(p), cfg.seed)?,
                )?)
            }
            _ => None,
        };
        Ok(RunData {
            train,
            val,
            val_whole,
            record,
            audit,
            transform,
            shard,
            val_pseudo,
            sbi_holdout,
            faces,
        })
    }

    /// Writes the landmark cache into the run folder when it changed (rank 0, holding the
    /// folder's lock); nothing without pseudo-fakes or when every face came from a
    /// `prepare_faces` manifest.
    fn write_landmark_cache(&self, cfg: &ExperimentConfig) -> Result<()> {
        let Some((table, read)) = &self.faces else {
            return Ok(());
        };
        if table.cache.images.is_empty() || read.as_ref() == Some(&table.cache) {
            return Ok(());
        }
        df_io::write_json(
            &cfg.out_dir.join(crate::pseudo::LANDMARKS_FILE),
            &table.cache,
        )?;
        Ok(())
    }

    /// The loader of the final evaluation: the whole validation set (rank 0 of a
    /// distributed run, which leaves the other ranks none), else the validation loader.
    fn final_loader(&self, cfg: &ExperimentConfig) -> Result<Option<LoaderRef<'_>>> {
        let whole = match (&self.val_whole, cfg.rank) {
            (Some(set), 0) => Some(eval_loader(
                cfg,
                self.transform,
                eval_source(set.clone(), self.val_pseudo.as_ref(), cfg.seed)?,
            )?),
            _ => None,
        };
        Ok(match (whole, self.shard) {
            (Some(whole), _) => Some(LoaderRef::Owned(whole)),
            (None, Some(_)) => None,
            (None, None) => self.val.as_ref().map(LoaderRef::Borrowed),
        })
    }
}

/// A loader made for the final evaluation, or the run's own.
enum LoaderRef<'a> {
    Owned(Loader),
    Borrowed(&'a Loader),
}

impl LoaderRef<'_> {
    fn as_ref(&self) -> &Loader {
        match self {
            LoaderRef::Owned(l) => l,
            LoaderRef::Borrowed(l) => l,
        }
    }
}

/// An evaluation loader over `set`: in order, the validation batch size.
fn eval_loader(
    cfg: &ExperimentConfig,
    transform: df_data::Transform,
    set: Arc<dyn ImageSource>,
) -> Result<Loader> {
    Ok(Loader::from_arc(
        set,
        LoaderConfig::eval(
            transform,
            cfg.data.val_batch_size.unwrap_or(cfg.data.batch_size),
        )
        .with_workers(cfg.data.workers),
    )?)
}

/// The trainer of the run: `cfg`'s optimizer, loss, callbacks (a best-model checkpoint by
/// default), precision, the data's configuration and the images' preparation recorded.
fn trainer_for(
    cfg: &ExperimentConfig,
    model: Box<dyn Model>,
    vs: VarStore,
    data: &RunData,
    resume_changes: Vec<String>,
    preparation: df_models::ImagePreparation,
    group: Option<df_dist::ProcessGroup>,
) -> Result<Trainer> {
    let mut callbacks = cfg.callbacks.clone();
    if callbacks.model_checkpoint.is_none() {
        // Beside a `--val` folder, the held-out pseudo-fakes choose the best model: the
        // folder's fakes are a cross-dataset test the run must not select on.
        let monitor = match (&data.sbi_holdout, &data.val) {
            (Some(_), _) => "val_sbi_loss",
            (None, Some(_)) => "val_loss",
            (None, None) => "loss",
        };
        callbacks.model_checkpoint = Some(ModelCheckpointConfig::new(
            cfg.out_dir.join(files::BEST),
            monitor,
        ));
    }
    let mut builder = Trainer::builder(model, vs)
        .optimizer(cfg.optimizer)
        .loss(cfg.loss)
        .epochs(cfg.epochs)
        .batch_size(cfg.data.batch_size)
        .seed(cfg.seed)
        .freeze_backbone(cfg.freeze_backbone)
        .out_dir(&cfg.out_dir)
        .resume(cfg.resume)
        .resume_changes(resume_changes)
        .data_config(serde_json::to_value(&cfg.data).map_err(json_err(&cfg.out_dir))?)
        .verbosity(cfg.verbosity)
        .precision(cfg.precision)
        .profile(cfg.profile)
        .image_preparation(preparation)
        .distributed(cfg.rank, cfg.world_size);
    if let Some(g) = group {
        builder = builder.process_group(g);
    }
    if let Some(c) = callbacks.early_stopping {
        builder = builder.early_stopping(c);
    }
    if let Some(c) = callbacks.reduce_lr_on_plateau {
        builder = builder.reduce_lr_on_plateau(c);
    }
    if let Some(c) = callbacks.model_checkpoint {
        builder = builder.model_checkpoint(c);
    }
    builder.build()
}

/// Locks the output folder for the run (rank 0), prepares it (`reuse`), removes the
/// temporary files of a killed writer, and writes `experiment.json` and `data.json`.
fn claim_out_dir(
    cfg: &ExperimentConfig,
    reuse: Reuse,
    record: Option<&DataRecord>,
    audit: Option<&df_data::AuditReport>,
) -> Result<run_dir::RunLock> {
    let lock = run_dir::lock(&cfg.out_dir)?;
    run_dir::prepare(&lock, reuse)?;
    run_dir::remove_stale_temporaries(&lock)?;
    /// The configuration with the data audit beside it (read back as the configuration
    /// alone: the audit is a record, not a setting).
    #[derive(serde::Serialize)]
    struct Recorded<'a> {
        #[serde(flatten)]
        cfg: &'a ExperimentConfig,
        #[serde(skip_serializing_if = "Option::is_none")]
        audit: Option<&'a df_data::AuditReport>,
    }
    df_io::write_json(
        &cfg.out_dir.join(files::EXPERIMENT),
        &Recorded { cfg, audit },
    )?;
    if let Some(record) = record {
        df_io::write_json(&cfg.out_dir.join(crate::data_record::DATA_FILE), record)?;
    }
    Ok(lock)
}

/// The data audit of a run's sets; each shortcut found printed as a `note:` line (unless
/// quiet), control characters escaped (file names are in some findings).
fn audit_data(
    cfg: &ExperimentConfig,
    train: &ImageFolder,
    val: Option<&ImageFolder>,
) -> Result<df_data::AuditReport> {
    let report = df_data::audit::audit(train, val, &df_data::AuditOptions::default())?;
    if cfg.verbosity != crate::Verbosity::Quiet {
        for finding in report.findings() {
            let text: String = finding
                .sentence
                .chars()
                .map(|c| match c.is_control() {
                    true => c.escape_debug().to_string(),
                    false => c.to_string(),
                })
                .collect();
            eprintln!("note: data audit: {text}");
        }
    }
    Ok(report)
}

/// Best epoch, generalization gap and fluctuation of the validation curves; `None`
/// without validation, or when no epoch has a finite validation loss (nothing to
/// analyse, which the history itself shows).
fn analyse(history: &History, validates: bool) -> Result<Option<HistoryAnalysis>> {
    if !validates {
        return Ok(None);
    }
    match history.analyze(&df_metrics::AnalysisConfig::monitoring("val_loss")) {
        Ok(analysis) => Ok(Some(analysis)),
        Err(df_metrics::Error::MissingMetric { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The mean of the epochs' wall-clock seconds (0 without an epoch).
fn seconds_per_epoch(history: &History) -> f64 {
    let seconds = history.values(SECONDS);
    if seconds.is_empty() {
        0.0
    } else {
        seconds.iter().sum::<f64>() / seconds.len() as f64
    }
}
