//! # df-models
//!
//! The architectures of the study, Keras-exact, built from `df-layers` blocks; a registry
//! of them; native safetensors checkpoints and Keras HDF5 weight import.

mod error;
pub mod spec;

pub use error::{Error, Result};
pub use spec::{ChannelOrder, InputSpec, Model, Polarity, Preprocessing, Top};
// Architecture modules (one per family) and weight I/O are declared below.
