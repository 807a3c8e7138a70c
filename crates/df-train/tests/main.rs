//! df-train's integration tests: one binary, a module per area.

mod callbacks;
mod checkpoint;
mod common;
mod detector;
mod distributed;
mod evaluate;
mod fuzz_replay;
mod l2;
mod nan;
mod optim;
mod precision;
mod pseudo;
mod resume;
