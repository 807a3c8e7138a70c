//! # df-models
//!
//! The architectures of the study, Keras-exact, built from `df-layers` blocks; a catalogue
//! of them by name and the open family registry ([`mod@registry`]); model families
//! ([`family`]);
//! native safetensors checkpoints ([`checkpoint`]) and Keras HDF5 weight import
//! ([`keras`]), opened by [`load`].
//!
//! Adding a model of an existing family is one catalogue row in its family file; a new
//! family is one file (an implementation of [`Family`] and its catalogue rows, a
//! `CATALOGUE`) and one line in the list of family files below (see
//! `docs/architecture.md`).

mod error;
pub mod spec;

pub use error::{Error, Result, WeightMismatchReport};
/// Re-exported: [`Model::config_json`] returns its `Value`, so a custom model needs it.
pub use serde_json;
pub use spec::{
    ChannelOrder, FaceCropRecord, ImagePreparation, InputSpec, Model, Polarity, Preprocessing,
    ResizeMethod, Top, TopKind,
};
// Architecture modules (one per family) and weight I/O are declared below.
pub mod checkpoint;
pub mod family;
pub mod keras;
pub mod layout;
pub mod load;
pub mod registry;
pub mod summary;
mod top_head;

/// Declares each family file as a public module and lists its `CATALOGUE` (its catalogue
/// rows and families) for [`mod@registry`], which gathers them in this order.
macro_rules! family_files {
    ($($file:ident,)*) => {
        $(pub mod $file;)*
        /// The family files' catalogues, in registry order.
        pub(crate) const FAMILY_FILES: &[registry::Catalogue] = &[$($file::CATALOGUE,)*];
    };
}

// The family files, one line each, in registry order.
family_files! {
    meso,
    vgg,
    resnet,
    efficientnet,
    inception_resnet_v2,
    xception,
}

pub use efficientnet::{efficientnet, EfficientNet, EfficientNetConfig};
pub use family::{BuildOptions, Family};
pub use inception_resnet_v2::{inception_resnet_v2, InceptionResNetV2, InceptionResNetV2Config};
pub use load::{load_checkpoint, load_keras, load_weights, open_checkpoint, LoadedModel};
pub use meso::{meso4, meso_inception4, Meso4, MesoConfig, MesoInception4};
pub use registry::{build, names, register_family, registry, ModelInfo, Recipe};
pub use resnet::{resnet, ResNet, ResNetConfig};
pub use vgg::{vgg16, Vgg16, VggConfig, VggVariant};

// Compiles (and runs, where not `no_run`) the Rust examples of docs/models.md.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/models.md")]
struct ModelsDoc;

/// The entry point of the fuzz target `keras_hdf5` (`fuzz/`), shared with the test that
/// replays its corpus on stable, so both exercise the same code.
#[doc(hidden)]
pub mod fuzz {
    /// Reads `data` as a Keras weights file; when it reads, every tensor's values must
    /// match its shape and every layer name must split or not without a panic. Every
    /// error is acceptable, a panic or an unbounded allocation is not.
    pub fn keras_hdf5(data: &[u8]) {
        let Ok(weights) = crate::keras::KerasWeights::from_bytes("fuzz-input.h5", data.to_vec())
        else {
            return;
        };
        for layer in &weights.layers {
            let _ = crate::keras::auto_name_parts(&layer.name);
            for t in &layer.tensors {
                let numel = t
                    .shape
                    .iter()
                    .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?));
                assert_eq!(
                    numel,
                    Some(t.values.len()),
                    "{}: shape {:?} against {} values",
                    t.path,
                    t.shape,
                    t.values.len()
                );
            }
        }
        let _ = weights.value_count();
    }
}
