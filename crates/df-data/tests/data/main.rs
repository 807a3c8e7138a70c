//! df-data's integration tests, one binary with a module per area.

mod audit;
mod augment;
mod common;
mod crop;
mod enhance;
mod folder;
mod fuzz_replay;
mod loader;
mod perturb;
mod pillow;
mod sbi;
mod synthetic;
mod video;
