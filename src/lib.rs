//! # deepfake
//!
//! Deepfake face-image detection on libtorch, as a set of reusable crates. This facade
//! re-exports them under one name:
//!
//! | module | crate | what |
//! | --- | --- | --- |
//! | [`layers`] | `df-layers` | building blocks with Keras semantics (conv-bn-act, MBConv, inception, residual blocks) |
//! | [`models`] | `df-models` | the study's architectures, their registry and weight import |
//! | [`data`] | `df-data` | image folders, decoding, augmentation, the batch loader, the synthetic forgery set |
//! | [`train`] | `df-train` | the training loop, optimizers, L2, callbacks |
//! | [`metrics`] | `df-metrics` | accuracy, ROC/AUC, EER, calibration, history analysis, plots |
//! | [`io`] | `df-io` | the one atomic file writer and the safetensors reader/writer |

pub use df_data as data;
pub use df_io as io;
pub use df_layers as layers;
pub use df_metrics as metrics;
pub use df_models as models;
pub use df_train as train;
pub use tch;
