//! The pieces of DDP (PyTorch's `DistributedDataParallel`), one process per rank:
//!
//! - [`broadcast_variables`]: rank 0's parameters and buffers to every rank (at start, after
//!   a resume), so that all ranks start from the same model whatever their own
//!   initialisation; [`Variables::Buffers`] alone keeps batch-norm running statistics
//!   identical (rank 0's, as DDP's default `broadcast_buffers=True` does at each forward);
//! - [`GradientAverager`]: after `backward`, before the optimizer step, every trainable
//!   parameter's gradient averaged across ranks, in buckets of at most
//!   [`DEFAULT_BUCKET_BYTES`] (each bucket flattened into one tensor and reduced in one
//!   collective, so memory stays bounded for ResNet50 or EfficientNet-B7). Frozen
//!   parameters (no `requires_grad`) take no part; a parameter without a gradient on every
//!   rank keeps none; one with a gradient on some ranks only is an error naming it.
//!
//! With equal shards, the averaged gradient of the per-rank mean losses is the gradient of
//! the mean loss over the global batch: `N` ranks on batches of `B` train like one process
//! on batches of `N·B` (for a network without batch norm; with batch norm in training
//! mode each rank normalises by its own batch, as DDP without SyncBatchNorm does).

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::{config, Error, ProcessGroup, Reduce, Result};

/// DDP's default bucket size (25 MiB).
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// Which variables [`broadcast_variables`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variables {
    /// Every variable: parameters and buffers.
    All,
    /// The variables without `requires_grad`: batch-norm running statistics, frozen
    /// parameters.
    Buffers,
}

/// The variables of `vs`, sorted by name (the same order on every rank).
fn sorted_variables(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Consecutive runs of `sizes` (bytes) of one kind, each at most `limit` bytes (a single
/// larger tensor makes a bucket of its own).
fn buckets(items: &[(Kind, usize)], limit: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    let mut kind = None;
    for (i, &(k, size)) in items.iter().enumerate() {
        let fits = kind == Some(k) && bytes + size <= limit;
        match out.last_mut() {
            Some(last) if fits => last.push(i),
            _ => {
                out.push(vec![i]);
                bytes = 0;
                kind = Some(k);
            }
        }
        bytes += size;
    }
    out
}

fn byte_size(t: &Tensor) -> usize {
    let element = match t.kind() {
        Kind::Double | Kind::Int64 => 8,
        Kind::Half | Kind::BFloat16 | Kind::Int16 => 2,
        Kind::Uint8 | Kind::Int8 | Kind::Bool => 1,
        _ => 4,
    };
    t.numel() * element
}

fn tensor_error(rank: usize, operation: &str) -> impl FnOnce(tch::TchError) -> Error + '_ {
    move |source| Error::Tensor {
        rank,
        operation: operation.to_string(),
        source,
    }
}

/// Copies rank `root`'s variables of `vs` (all, or the buffers) into every rank's, in
/// buckets of at most [`DEFAULT_BUCKET_BYTES`]. Every rank must hold the same variables.
///
/// # Errors
/// A collective's error; variables that differ in shape across ranks fail in Gloo.
pub fn broadcast_variables(
    group: &ProcessGroup,
    vs: &VarStore,
    which: Variables,
    root: usize,
) -> Result<()> {
    let vars: Vec<(String, Tensor)> = sorted_variables(vs)
        .into_iter()
        .filter(|(_, t)| which == Variables::All || !t.requires_grad())
        .collect();
    let items: Vec<(Kind, usize)> = vars.iter().map(|(_, t)| (t.kind(), byte_size(t))).collect();
    for bucket in buckets(&items, DEFAULT_BUCKET_BYTES) {
        let parts: Vec<Tensor> = bucket
            .iter()
            .map(|&i| vars[i].1.detach().reshape([-1]))
            .collect();
        let mut flat =
            Tensor::f_cat(&parts, 0).map_err(tensor_error(group.rank(), "broadcast_variables"))?;
        group.broadcast(&mut flat, root)?;
        let mut offset = 0;
        for &i in &bucket {
            let (_, var) = &vars[i];
            let n = var.numel() as i64;
            let values = flat.narrow(0, offset, n).view(var.size().as_slice());
            tch::no_grad(|| var.shallow_clone().f_copy_(&values))
                .map_err(tensor_error(group.rank(), "broadcast_variables"))?;
            offset += n;
        }
    }
    Ok(())
}

/// Averages the gradients of a model's trainable parameters across the ranks (see the
/// module's documentation).
#[derive(Debug)]
pub struct GradientAverager {
    params: Vec<(String, Tensor)>,
    buckets: Vec<Vec<usize>>,
}

impl GradientAverager {
    /// Over the trainable variables of `vs` (those with `requires_grad` now: freeze
    /// before), in buckets of at most `bucket_bytes`.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero bucket size.
    pub fn new(vs: &VarStore, bucket_bytes: usize) -> Result<Self> {
        if bucket_bytes == 0 {
            return Err(config("bucket_bytes", "must be positive"));
        }
        let params: Vec<(String, Tensor)> = sorted_variables(vs)
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        let items: Vec<(Kind, usize)> = params
            .iter()
            .map(|(_, t)| (t.kind(), byte_size(t)))
            .collect();
        let buckets = buckets(&items, bucket_bytes);
        Ok(Self { params, buckets })
    }

    /// The number of buckets (collectives per step).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// The number of parameters averaged.
    pub fn parameter_count(&self) -> usize {
        self.params.len()
    }

    /// Replaces each parameter's gradient by its mean over the ranks. Every rank must call
    /// it at the same step.
    ///
    /// # Errors
    /// A collective's error; [`Error::Config`] naming a parameter that has a gradient on
    /// some ranks and none on others.
    pub fn average(&self, group: &ProcessGroup) -> Result<()> {
        let world = group.world_size() as f64;
        let rank = group.rank();
        for bucket in &self.buckets {
            let n = bucket.len() as i64;
            let grads: Vec<Tensor> = bucket.iter().map(|&i| self.params[i].1.grad()).collect();
            let kind = self.params[bucket[0]].1.kind();
            // The first `n` values say which ranks have a gradient for each parameter.
            let mask: Vec<f32> = grads
                .iter()
                .map(|g| if g.defined() { 1.0 } else { 0.0 })
                .collect();
            // On the parameters' device: NCCL reduces CUDA tensors, and `cat` wants one
            // device.
            let device = self.params[bucket[0]].1.device();
            let mut parts = vec![Tensor::from_slice(&mask).to_kind(kind).to_device(device)];
            for (&i, g) in bucket.iter().zip(&grads) {
                let p = &self.params[i].1;
                parts.push(if g.defined() {
                    g.reshape([-1])
                } else {
                    p.new_zeros([p.numel() as i64], (kind, p.device()))
                });
            }
            let mut flat =
                Tensor::f_cat(&parts, 0).map_err(tensor_error(rank, "gradient averaging"))?;
            group.all_reduce(&mut flat, Reduce::Sum)?;
            let counts = Vec::<f64>::try_from(
                flat.narrow(0, 0, n)
                    .to_device(tch::Device::Cpu)
                    .to_kind(Kind::Double),
            )
            .map_err(tensor_error(rank, "gradient averaging"))?;
            // The sums become means in place, once for the whole bucket.
            let values = flat.size()[0] - n;
            let _ = flat
                .narrow(0, n, values)
                .f_div_scalar_(world)
                .map_err(tensor_error(rank, "gradient averaging"))?;
            let mut offset = n;
            for ((&i, g), &count) in bucket.iter().zip(&grads).zip(&counts) {
                let (name, p) = &self.params[i];
                let numel = p.numel() as i64;
                let have = count.round() as usize;
                if have != 0 && have != group.world_size() {
                    return Err(config(
                        name.clone(),
                        format!(
                            "has a gradient on {have} of {} ranks (unused in the others' \
                             forward pass): data-parallel training needs every trainable \
                             parameter used on every rank, or frozen",
                            group.world_size()
                        ),
                    ));
                }
                if have != 0 {
                    let mean = flat.narrow(0, offset, numel).view(p.size().as_slice());
                    tch::no_grad(|| g.shallow_clone().f_copy_(&mean))
                        .map_err(tensor_error(rank, "gradient averaging"))?;
                }
                offset += numel;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_respect_the_limit_and_the_kind() {
        let f = Kind::Float;
        let items = [
            (f, 10),
            (f, 10),
            (f, 30),
            (Kind::Double, 5),
            (Kind::Double, 5),
            (f, 1),
        ];
        assert_eq!(
            buckets(&items, 20),
            vec![vec![0, 1], vec![2], vec![3, 4], vec![5]]
        );
        assert_eq!(
            buckets(&items, 100),
            vec![vec![0, 1, 2], vec![3, 4], vec![5]]
        );
        assert_eq!(buckets(&[], 10), Vec::<Vec<usize>>::new());
    }
}
