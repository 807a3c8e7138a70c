//! # df-layers
//!
//! Composable building blocks for the deepfake detectors, with Keras semantics (padding,
//! batch-norm epsilon and momentum, activations, variable names), so that models built from
//! them reproduce their Keras references and import Keras weights by layer name.
//!
//! Every block is a value built from `(&nn::Path, &Config) -> Result<Self>` and implements
//! [`tch::nn::ModuleT`]; the `train` flag drives batch norm, dropout and drop-path.
//! Blocks keep the [`MemoryFormat`] of their input (NCHW or channels-last).
//!
//! ```
//! # mod deepfake { pub mod layers { pub use df_layers::*; } }
//! use deepfake::layers::{Activation, ConvBnAct, ConvBnActConfig, BatchNormConfig};
//! use tch::{nn, nn::ModuleT, Device, Kind, Tensor};
//!
//! # fn main() -> deepfake::layers::Result<()> {
//! let vs = nn::VarStore::new(Device::Cpu);
//! let cfg = ConvBnActConfig::new(3, 32, 3)
//!     .with_stride(2)
//!     .with_batch_norm(BatchNormConfig::default())
//!     .with_activation(Activation::Swish)
//!     .with_names("stem_conv", "stem_bn");
//! let stem = ConvBnAct::new(&vs.root(), &cfg)?;
//! let y = stem.forward_t(&Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)), false);
//! assert_eq!(y.size(), [1, 32, 112, 112]);
//! # Ok(()) }
//! ```

mod activation;
mod conv;
mod efficientnet;
mod error;
mod head;
mod inception_resnet;
pub mod init;
pub mod kernels;
mod layout;
mod mesonet;
mod pool;
mod resnet;
mod separable;
pub mod trace;
pub mod util;
mod vgg;

pub use activation::Activation;
pub use conv::{BatchNorm, BatchNormConfig, ConvBnAct, ConvBnActConfig, Padding};
pub use efficientnet::{CorrectPad, MbConv, MbConvConfig, SqueezeExcite, SqueezeExciteConfig};
pub use error::{Error, Result};
pub use head::{Dense, DenseHead, DenseHeadConfig, DenseLayerConfig, DropPath, HeadInput};
pub use inception_resnet::{
    inception_resnet_batch_norm, InceptionResnetA, InceptionResnetB, InceptionResnetBlockConfig,
    InceptionResnetC, ReductionA, ReductionB, ReductionConfig, Stem, StemConfig,
};
pub use init::Initializer;
pub use layout::MemoryFormat;
pub use mesonet::{keras_auto_name, MesoInception, MesoInceptionConfig};
pub use pool::{MaxPool2d, MaxPool2dConfig};
pub use resnet::{
    resnet_batch_norm, ConvBlock, ConvBlockConfig, IdentityBlock, IdentityBlockConfig,
    RESNET_BN_EPS,
};
pub use separable::{SeparableConv2d, SeparableConv2dConfig};
pub use vgg::{VggStage, VggStageConfig};
