//! # df-models
//!
//! The architectures of the study, Keras-exact, built from `df-layers` blocks; a registry
//! of them; native safetensors checkpoints and Keras HDF5 weight import.

mod error;
pub mod spec;

pub use error::{Error, Result, WeightMismatchReport};
pub use spec::{ChannelOrder, InputSpec, Model, Polarity, Preprocessing, Top, TopKind};
// Architecture modules (one per family) and weight I/O are declared below.
pub mod checkpoint;
pub mod efficientnet;
pub mod inception_resnet_v2;
pub mod keras;
pub mod layout;
pub mod meso;
pub mod registry;
pub mod resnet;
mod top_head;
pub mod vgg;

pub use efficientnet::{efficientnet, EfficientNet, EfficientNetConfig};
pub use inception_resnet_v2::{inception_resnet_v2, InceptionResNetV2, InceptionResNetV2Config};
pub use meso::{meso4, meso_inception4, Meso4, MesoConfig, MesoInception4};
pub use registry::{build, registry, BuildOptions, LoadedModel, ModelInfo};
pub use resnet::{resnet50, ResNet50, ResNetConfig};
pub use vgg::{vgg16, Vgg16, VggConfig, VggVariant};

// Compiles (and runs, where not `no_run`) the Rust examples of docs/models.md.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/models.md")]
struct ModelsDoc;
