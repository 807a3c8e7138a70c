//! Block throughput (placeholder until the benches land).
use criterion::{criterion_group, criterion_main, Criterion};

fn blocks(_c: &mut Criterion) {}

criterion_group!(benches, blocks);
criterion_main!(benches);
