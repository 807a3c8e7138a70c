//! An opt-in, thread-local trace of the layers a forward pass runs, with their output
//! shapes: what Keras' `model.summary()` shows and `tch` modules, having no forward hooks,
//! cannot report by themselves.
//!
//! Blocks call [`record`] at the points where Keras has a layer; outside [`capture`] that
//! costs one thread-local flag check (the name is built by a closure that is then never
//! called), so the ordinary forward path is unaffected. Inside [`capture`], every call on
//! the capturing thread appends a [`LayerRecord`] in execution order.
//!
//! ```
//! # mod deepfake { pub mod layers { pub use df_layers::*; } }
//! use deepfake::layers::{trace, ConvBnAct, ConvBnActConfig, BatchNormConfig};
//! use tch::{nn, nn::ModuleT, Device, Kind, Tensor};
//!
//! # fn main() -> deepfake::layers::Result<()> {
//! let vs = nn::VarStore::new(Device::Cpu);
//! let cfg = ConvBnActConfig::new(3, 16, 3)
//!     .with_stride(2)
//!     .with_batch_norm(BatchNormConfig::default())
//!     .with_names("stem_conv", "stem_bn");
//! let stem = ConvBnAct::new(&vs.root(), &cfg)?;
//! let x = Tensor::zeros([1, 3, 16, 16], (Kind::Float, Device::Cpu));
//! let (_, layers) = trace::capture(|| stem.forward_t(&x, false));
//! assert_eq!(layers[0].name, "stem_conv");
//! assert_eq!(layers[0].class, "Conv2D");
//! assert_eq!(layers[1].name, "stem_bn");
//! assert_eq!(layers[1].output_shape, [1, 16, 8, 8]);
//! # Ok(()) }
//! ```
//!
//! # What is recorded
//!
//! Names are Keras layer names, without the `VarStore` path prefix the model may be built
//! under. Every layer that holds weights is recorded by its block (`Conv2D` and
//! `DepthwiseConv2D` by [`crate::ConvBnAct`], `BatchNormalization` by [`crate::BatchNorm`],
//! `Dense` by [`crate::Dense`]). Weightless layers are recorded where the block knows the
//! name Keras gives them: pooling and flattening of a [`crate::DenseHead`] (`flatten`,
//! `avg_pool`, `max_pool`), VGG's `block{i}_pool`, ResNet's `{block}_{i}_relu`,
//! `{block}_add` and `{block}_out`, EfficientNet's `{prefix}expand_activation`,
//! `{prefix}dwconv_pad`, `{prefix}activation`, `{prefix}se_squeeze`, `{prefix}se_reshape`,
//! `{prefix}se_excite`, `{prefix}drop` and `{prefix}add`, Inception-ResNet's
//! `{block}_mixed`, `{block}_ac`, `mixed_5b`, `mixed_6a` and `mixed_7a`. The models in
//! `df-models` add their own: ResNet's `conv1_pad`, `conv1_relu`, `pool1_pad`,
//! `pool1_pool`; EfficientNet's `stem_conv_pad`, `stem_activation`, `top_activation`;
//! Inception-ResNet-v2's `conv_7b_ac`; a pooled backbone's `avg_pool` or `max_pool`; and
//! MesoNet's `concatenate_{i}` and `max_pooling2d_{i}`, the names Keras gives them in a
//! fresh session (like the MesoNet variables).
//!
//! Not recorded: layers Keras names automatically where the block cannot know the number
//! (the activations and pools inside Inception-ResNet's `conv2d_bn` units and stem), the
//! activation of a convolution or dense layer that Keras fuses into that layer or follows
//! with its own `Activation`/`LeakyReLU` layer without a fixed name, `Dropout` inside a
//! dense head, and the input preprocessing Keras runs as layers (`Rescaling`,
//! `Normalization`), which here belongs to the model's input specification.

use std::cell::{Cell, RefCell};

use tch::Tensor;

/// One layer run during a [`capture`]d forward pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LayerRecord {
    /// Keras layer name (`block1a_dwconv`, `conv2_block1_add`, `fc1` ...).
    pub name: String,
    /// Keras layer class (`Conv2D`, `DepthwiseConv2D`, `BatchNormalization`, `Dense`,
    /// `Activation`, `MaxPooling2D`, `GlobalAveragePooling2D`, `Flatten`, `ZeroPadding2D`,
    /// `Reshape`, `Add`, `Multiply`, `Concatenate`, `Dropout` ...).
    pub class: &'static str,
    /// Shape of the layer's output, batch axis included, NCHW for feature maps
    /// (`[N, C, H, W]`; `[N, units]` after flattening, pooling or a dense layer).
    pub output_shape: Vec<i64>,
}

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static RECORDS: RefCell<Vec<LayerRecord>> = const { RefCell::new(Vec::new()) };
    // Inside `capture_outputs`: the output of each record, in step with RECORDS.
    static KEEP: Cell<bool> = const { Cell::new(false) };
    static OUTPUTS: RefCell<Vec<Option<Tensor>>> = const { RefCell::new(Vec::new()) };
}

/// Restores the enclosing capture's state when a capture ends, normally or by a panic.
struct Restore {
    active: bool,
    outer: Option<Vec<LayerRecord>>,
}

impl Restore {
    /// Ends the capture: the records made during it, handing a copy to the enclosing
    /// capture if there is one.
    fn finish(&mut self) -> Vec<LayerRecord> {
        let mut outer = self.outer.take().unwrap_or_default();
        let mine = RECORDS.take();
        if self.active {
            outer.extend(mine.iter().cloned());
        }
        RECORDS.set(outer);
        ACTIVE.set(self.active);
        mine
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if self.outer.is_some() {
            self.finish();
        }
    }
}

/// Runs `f` and returns its result with the layers it ran on this thread, in execution
/// order.
///
/// Captures nest: an inner capture returns the records made during it, and they also
/// appear, in place, in the enclosing capture's records. The enclosing state is restored
/// when `f` returns or panics. Records are per thread: layers run by `f` on other threads
/// are not captured.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<LayerRecord>) {
    let mut restore = Restore {
        active: ACTIVE.replace(true),
        outer: Some(RECORDS.take()),
    };
    let value = f();
    let records = restore.finish();
    (value, records)
}

/// Restores the enclosing [`capture_outputs`]' state, normally or by a panic.
struct RestoreOutputs {
    keep: bool,
    outer: Option<Vec<Option<Tensor>>>,
}

impl RestoreOutputs {
    fn finish(&mut self) -> Vec<Option<Tensor>> {
        let mut outer = self.outer.take().unwrap_or_default();
        let mine = OUTPUTS.take();
        if self.keep {
            outer.extend(mine.iter().map(|t| t.as_ref().map(Tensor::shallow_clone)));
        }
        OUTPUTS.set(outer);
        KEEP.set(self.keep);
        mine
    }
}

impl Drop for RestoreOutputs {
    fn drop(&mut self) {
        if self.outer.is_some() {
            self.finish();
        }
    }
}

/// As [`capture`], with each layer's output tensor (`None` for a layer recorded by its
/// shape alone, [`record_shape`]): what an export's check compares, layer by layer,
/// between a traced graph and the model. The tensors are shallow copies of the outputs
/// (kept alive until the result is dropped).
pub fn capture_outputs<T>(f: impl FnOnce() -> T) -> (T, Vec<(LayerRecord, Option<Tensor>)>) {
    let mut restore = RestoreOutputs {
        keep: KEEP.replace(true),
        outer: Some(OUTPUTS.take()),
    };
    let (value, records) = capture(f);
    let outputs = restore.finish();
    (value, records.into_iter().zip(outputs).collect())
}

/// Whether a [`capture`] is running on this thread.
pub fn is_active() -> bool {
    ACTIVE.get()
}

/// Records that the layer `name()` of Keras class `class` produced `output`; does nothing
/// (and calls nothing) outside a [`capture`].
///
/// For blocks and models: call it where Keras has a layer, with the tensor that layer
/// outputs; `name` is a closure so that no string is built when nothing is captured.
pub fn record(name: impl FnOnce() -> String, class: &'static str, output: &Tensor) {
    if !is_active() {
        return;
    }
    let record = LayerRecord {
        name: name(),
        class,
        output_shape: output.size(),
    };
    push(record, Some(output));
}

fn push(record: LayerRecord, output: Option<&Tensor>) {
    if KEEP.get() {
        OUTPUTS.with_borrow_mut(|o| o.push(output.map(Tensor::shallow_clone)));
    }
    RECORDS.with_borrow_mut(|r| r.push(record));
}

/// As [`record`], for a layer whose Keras output shape differs from a tensor at hand
/// (Keras' `GlobalAveragePooling2D` gives `[N, C]` where the block keeps `[N, C, 1, 1]`):
/// `shape` is called only inside a [`capture`].
pub fn record_shape(
    name: impl FnOnce() -> String,
    class: &'static str,
    shape: impl FnOnce() -> Vec<i64>,
) {
    if !is_active() {
        return;
    }
    let record = LayerRecord {
        name: name(),
        class,
        output_shape: shape(),
    };
    push(record, None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn zeros(shape: &[i64]) -> Tensor {
        Tensor::zeros(shape, (Kind::Float, Device::Cpu))
    }

    fn names(records: &[LayerRecord]) -> Vec<&str> {
        records.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn records_only_inside_capture() {
        let called = Cell::new(false);
        record(
            || {
                called.set(true);
                "outside".into()
            },
            "Dense",
            &zeros(&[1, 2]),
        );
        assert!(!called.get(), "the name closure ran outside a capture");
        assert!(!is_active());
        let (value, records) = capture(|| {
            assert!(is_active());
            record(|| "conv".into(), "Conv2D", &zeros(&[1, 4, 3, 3]));
            record_shape(|| "pool".into(), "GlobalAveragePooling2D", || vec![1, 4]);
            7
        });
        assert_eq!(value, 7);
        assert!(!is_active());
        assert_eq!(
            records,
            [
                LayerRecord {
                    name: "conv".into(),
                    class: "Conv2D",
                    output_shape: vec![1, 4, 3, 3],
                },
                LayerRecord {
                    name: "pool".into(),
                    class: "GlobalAveragePooling2D",
                    output_shape: vec![1, 4],
                },
            ]
        );
        record(|| "after".into(), "Dense", &zeros(&[1, 2]));
        let ((), again) = capture(|| ());
        assert!(
            again.is_empty(),
            "records leaked between captures: {again:?}"
        );
    }

    #[test]
    fn nested_captures_see_their_own_records_and_the_outer_sees_all() {
        let ((inner, middle), outer) = capture(|| {
            record(|| "a".into(), "Conv2D", &zeros(&[1]));
            let ((), inner) = capture(|| record(|| "b".into(), "Conv2D", &zeros(&[1])));
            record(|| "c".into(), "Conv2D", &zeros(&[1]));
            (inner, is_active())
        });
        assert_eq!(names(&inner), ["b"]);
        assert!(
            middle,
            "the outer capture was switched off by the inner one"
        );
        assert_eq!(names(&outer), ["a", "b", "c"]);
        assert!(!is_active());
    }

    #[test]
    fn a_panic_inside_capture_restores_the_outer_state() {
        let ((), outer) = capture(|| {
            record(|| "before".into(), "Add", &zeros(&[1]));
            let result = std::panic::catch_unwind(|| {
                capture(|| {
                    record(|| "lost".into(), "Add", &zeros(&[1]));
                    panic!("inside");
                })
            });
            assert!(result.is_err());
            assert!(is_active());
            record(|| "after".into(), "Add", &zeros(&[1]));
        });
        // The panicking capture's records still reach the enclosing one.
        assert_eq!(names(&outer), ["before", "lost", "after"]);
        assert!(!is_active());
        let result = std::panic::catch_unwind(|| capture(|| panic!("top level")));
        assert!(result.is_err());
        assert!(
            !is_active(),
            "a panicking top-level capture left tracing on"
        );
        record(|| "outside".into(), "Add", &zeros(&[1]));
        let ((), empty) = capture(|| ());
        assert!(empty.is_empty(), "{empty:?}");
    }

    #[test]
    fn capture_outputs_keeps_each_records_tensor_in_step() {
        let x = Tensor::from_slice(&[1.0f32, -2.0]);
        let ((), kept) = capture_outputs(|| {
            record(|| "a".into(), "Dense", &x);
            let ((), inner) = capture(|| record_shape(|| "b".into(), "Flatten", || vec![2]));
            assert_eq!(names(&inner), ["b"]);
            record(|| "c".into(), "Dense", &(&x * 2.0));
        });
        let kept_names: Vec<&str> = kept.iter().map(|(r, _)| r.name.as_str()).collect();
        assert_eq!(kept_names, ["a", "b", "c"]);
        let values: Vec<Option<Vec<f32>>> = kept
            .iter()
            .map(|(_, t)| t.as_ref().map(|t| Vec::<f32>::try_from(t).expect("f32")))
            .collect();
        assert_eq!(values, [Some(vec![1.0, -2.0]), None, Some(vec![2.0, -4.0])]);
        assert!(!KEEP.get());
        let ((), plain) = capture(|| record(|| "d".into(), "Dense", &x));
        assert_eq!(names(&plain), ["d"]);
        assert!(
            OUTPUTS.with_borrow(Vec::is_empty),
            "a plain capture kept tensors"
        );
    }

    #[test]
    fn records_are_per_thread() {
        let ((), records) = capture(|| {
            std::thread::spawn(|| {
                assert!(!is_active());
                record(|| "other".into(), "Dense", &zeros(&[1]));
            })
            .join()
            .expect("thread");
            record(|| "mine".into(), "Dense", &zeros(&[1]));
        });
        assert_eq!(names(&records), ["mine"]);
    }
}
