//! df-train (placeholder crate doc; filled in by its issue).

mod error;
pub use error::{Error, Result};
