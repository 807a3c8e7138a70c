//! Keras → libtorch weight layouts: the one place where tensors change shape on import.
//!
//! Keras stores tensors channels-last; this workspace computes NCHW (see DESIGN.md, "NCHW
//! inside, Keras semantics at the edges"). Every conversion is a pure permutation or
//! reshape, no arithmetic:
//!
//! | Keras tensor | Keras shape | libtorch variable | libtorch shape |
//! | --- | --- | --- | --- |
//! | `Conv2D` `kernel` | `(kh, kw, in, out)` (HWIO) | `{layer}.weight` | `[out, in, kh, kw]` (OIHW) |
//! | `DepthwiseConv2D` `depthwise_kernel` | `(kh, kw, C, M)` | `{layer}.weight` | `[C·M, 1, kh, kw]` |
//! | `SeparableConv2D` `depthwise_kernel` | `(kh, kw, C, M)` | `{layer}.depthwise_weight` | `[C·M, 1, kh, kw]` |
//! | `SeparableConv2D` `pointwise_kernel` | `(1, 1, C·M, out)` | `{layer}.pointwise_weight` | `[out, C·M, 1, 1]` |
//! | `Dense` `kernel` | `(in, out)` | `{layer}.weight` | `[out, in]` |
//! | `Dense` `kernel` after a `Flatten` of `(H, W, C)` | `(H·W·C, out)`, rows in NHWC order | `{layer}.weight` | `[out, C·H·W]`, columns in NCHW order |
//! | `bias` (any layer) | `(out,)` | `{layer}.bias` | `[out]` |
//! | `BatchNormalization` `gamma` / `beta` | `(C,)` | `{layer}.weight` / `{layer}.bias` | `[C]` |
//! | `BatchNormalization` `moving_mean` / `moving_variance` | `(C,)` | `{layer}.running_mean` / `{layer}.running_var` | `[C]` |
//!
//! A `BatchNormalization` with `scale=False` (InceptionResNetV2) has no `gamma` and its
//! libtorch counterpart no `weight`; one with `center=False` has no `beta` / `bias`.
//!
//! A `SeparableConv2D`'s depthwise kernel converts as a `DepthwiseConv2D`'s (only the
//! variable name differs: [`KerasRole::torch_name`] gives `weight`, the importer asks the
//! layer's class) and its pointwise kernel as a 1×1 `Conv2D` kernel.
//!
//! The depthwise case: TensorFlow numbers the output channels of a depthwise convolution
//! `c·M + m` (input channel `c`, multiplier index `m`), which is libtorch's order for
//! `groups = C`, so `(kh, kw, C, M)` becomes `[C, M, kh, kw]` and then `[C·M, 1, kh, kw]`.
//!
//! The flatten case: Keras' `Flatten` of an NHWC map `(H, W, C)` numbers feature
//! `(y·W + x)·C + c`; libtorch's flatten of NCHW numbers the same value `c·H·W + y·W + x`.
//! The first dense layer after a `Flatten` therefore has its input rows permuted (see
//! [`dense_kernel_after_flatten`]); later dense layers only transpose.

use tch::Tensor;

use crate::error::{Error, Result};

/// What a Keras weight is, from its name (legacy files: `kernel:0`, `gamma:0` ...) or its
/// position in a Keras 3 layer's `vars` group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KerasRole {
    /// `Conv2D`/`Dense` `kernel`.
    Kernel,
    /// `DepthwiseConv2D` (or `SeparableConv2D`) `depthwise_kernel`.
    DepthwiseKernel,
    /// `SeparableConv2D` `pointwise_kernel`, a 1×1 convolution kernel.
    PointwiseKernel,
    /// `bias` of a convolution or dense layer.
    Bias,
    /// `BatchNormalization` `gamma` (scale).
    Gamma,
    /// `BatchNormalization` `beta` (offset).
    Beta,
    /// `BatchNormalization` `moving_mean`.
    MovingMean,
    /// `BatchNormalization` `moving_variance`.
    MovingVariance,
    /// `Normalization` `mean` (EfficientNet's input normalisation).
    NormalizationMean,
    /// `Normalization` `variance`.
    NormalizationVariance,
    /// `Normalization` `count`.
    NormalizationCount,
}

impl KerasRole {
    /// The role of a legacy weight name's last component (`kernel:0`, `gamma` ...), or
    /// `None` for a name this importer does not know.
    pub fn from_weight_name(name: &str) -> Option<Self> {
        let base = name.rsplit('/').next().unwrap_or(name);
        let base = base.split(':').next().unwrap_or(base);
        Some(match base {
            "kernel" => Self::Kernel,
            "depthwise_kernel" => Self::DepthwiseKernel,
            "pointwise_kernel" => Self::PointwiseKernel,
            "bias" => Self::Bias,
            "gamma" => Self::Gamma,
            "beta" => Self::Beta,
            "moving_mean" => Self::MovingMean,
            "moving_variance" => Self::MovingVariance,
            "mean" => Self::NormalizationMean,
            "variance" => Self::NormalizationVariance,
            "count" => Self::NormalizationCount,
            _ => return None,
        })
    }

    /// The libtorch variable name this role maps to inside its layer (`weight`, `bias`,
    /// `running_mean`, `running_var`, `pointwise_weight`), or `None` for the roles with no
    /// model variable (`Normalization`'s statistics, which live in the model's
    /// [`crate::InputSpec`]). A `SeparableConv2D`'s depthwise kernel is `depthwise_weight`
    /// instead ([`crate::keras::KerasLayerKind::torch_name`]).
    pub fn torch_name(self) -> Option<&'static str> {
        match self {
            Self::Kernel | Self::DepthwiseKernel | Self::Gamma => Some("weight"),
            Self::PointwiseKernel => Some("pointwise_weight"),
            Self::Bias | Self::Beta => Some("bias"),
            Self::MovingMean => Some("running_mean"),
            Self::MovingVariance => Some("running_var"),
            Self::NormalizationMean | Self::NormalizationVariance | Self::NormalizationCount => {
                None
            }
        }
    }
}

/// The libtorch shape of a Keras tensor of `role` and Keras `shape`; `flatten` is the
/// `[C, H, W]` map a `Flatten` fed into this dense kernel, if any.
///
/// # Errors
/// [`Error::Layout`] when the shape does not fit the role (a 3-D kernel, a flatten shape
/// that does not multiply to the kernel's rows).
pub fn torch_shape(
    role: KerasRole,
    shape: &[i64],
    flatten: Option<[i64; 3]>,
    tensor: &str,
) -> Result<Vec<i64>> {
    let bad = |reason: String| Error::Layout {
        tensor: tensor.to_owned(),
        reason,
    };
    match (role, shape) {
        (KerasRole::Kernel, &[kh, kw, i, o]) => Ok(vec![o, i, kh, kw]),
        (KerasRole::PointwiseKernel, &[kh, kw, i, o]) => Ok(vec![o, i, kh, kw]),
        (KerasRole::DepthwiseKernel, &[kh, kw, c, m]) => Ok(vec![c * m, 1, kh, kw]),
        (KerasRole::Kernel, &[i, o]) => {
            if let Some([c, h, w]) = flatten {
                if c * h * w != i {
                    return Err(bad(format!(
                        "the dense kernel has {i} input rows but follows a Flatten of \
                         {h}×{w}×{c} = {} features",
                        c * h * w
                    )));
                }
            }
            Ok(vec![o, i])
        }
        (KerasRole::Kernel | KerasRole::DepthwiseKernel, _) => Err(bad(format!(
            "a {role:?} must be 2-D or 4-D, got shape {shape:?}"
        ))),
        (KerasRole::PointwiseKernel, _) => {
            Err(bad(format!("a {role:?} must be 4-D, got shape {shape:?}")))
        }
        _ => Ok(shape.to_vec()),
    }
}

/// Converts a Keras tensor of `role` (values in Keras' row-major order, Keras `shape`) to
/// its libtorch layout; `flatten` as in [`torch_shape`].
///
/// # Shapes
/// See the module table.
///
/// # Errors
/// [`Error::Layout`] as in [`torch_shape`], or when `values` does not hold the product of
/// `shape` elements.
pub fn to_torch(
    role: KerasRole,
    values: &[f32],
    shape: &[i64],
    flatten: Option<[i64; 3]>,
    tensor: &str,
) -> Result<Tensor> {
    let numel: i64 = shape.iter().product();
    if numel < 0 || values.len() as i64 != numel {
        return Err(Error::Layout {
            tensor: tensor.to_owned(),
            reason: format!(
                "shape {shape:?} needs {numel} values, the file holds {}",
                values.len()
            ),
        });
    }
    torch_shape(role, shape, flatten, tensor)?;
    let keras = Tensor::from_slice(values).reshape(shape);
    let converted = match (role, shape) {
        (KerasRole::Kernel | KerasRole::PointwiseKernel, [_, _, _, _]) => conv_kernel(&keras),
        (KerasRole::DepthwiseKernel, [_, _, _, _]) => depthwise_kernel(&keras),
        (KerasRole::Kernel, [_, _]) => match flatten {
            Some(chw) => dense_kernel_after_flatten(&keras, chw),
            None => dense_kernel(&keras),
        },
        _ => keras,
    };
    Ok(converted.contiguous())
}

/// `Conv2D` kernel, HWIO → OIHW.
///
/// # Shapes
/// `[kh, kw, in, out]` → `[out, in, kh, kw]`.
pub fn conv_kernel(kernel: &Tensor) -> Tensor {
    kernel.permute([3, 2, 0, 1])
}

/// `DepthwiseConv2D` kernel, `(kh, kw, C, M)` → `[C·M, 1, kh, kw]`.
///
/// # Shapes
/// `[kh, kw, C, M]` → `[C·M, 1, kh, kw]`.
pub fn depthwise_kernel(kernel: &Tensor) -> Tensor {
    let size = kernel.size();
    let (kh, kw, c, m) = (size[0], size[1], size[2], size[3]);
    kernel.permute([2, 3, 0, 1]).reshape([c * m, 1, kh, kw])
}

/// `Dense` kernel, `(in, out)` → `[out, in]`.
///
/// # Shapes
/// `[in, out]` → `[out, in]`.
pub fn dense_kernel(kernel: &Tensor) -> Tensor {
    kernel.transpose(0, 1)
}

/// The kernel of the first `Dense` after a `Flatten` of a `[C, H, W]` feature map: Keras'
/// rows come in NHWC order, libtorch's columns in NCHW order.
///
/// # Shapes
/// `[H·W·C, out]` → `[out, C·H·W]`.
pub fn dense_kernel_after_flatten(kernel: &Tensor, [c, h, w]: [i64; 3]) -> Tensor {
    let out = kernel.size()[1];
    kernel
        .reshape([h, w, c, out])
        .permute([3, 2, 0, 1])
        .reshape([out, c * h * w])
}

/// Feature map `[C, H, W]` flattened as Keras does (NHWC order), the inverse view of
/// [`dense_kernel_after_flatten`]: useful to check a converted kernel.
///
/// # Shapes
/// `[N, C, H, W]` → `[N, H·W·C]`.
pub fn keras_flatten(xs: &Tensor) -> Tensor {
    xs.permute([0, 2, 3, 1]).flatten(1, -1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn arange(shape: &[i64]) -> Tensor {
        let n: i64 = shape.iter().product();
        Tensor::arange(n, (Kind::Float, Device::Cpu)).reshape(shape)
    }

    #[test]
    fn conv_kernel_moves_axes() {
        let k = arange(&[3, 5, 2, 4]);
        let t = conv_kernel(&k);
        assert_eq!(t.size(), [4, 2, 3, 5]);
        // t[o, i, y, x] == k[y, x, i, o]
        let a = t.double_value(&[3, 1, 2, 4]);
        let b = k.double_value(&[2, 4, 1, 3]);
        assert_eq!(a, b);
    }

    #[test]
    fn depthwise_channel_order_is_c_times_m_plus_m() {
        let k = arange(&[3, 3, 4, 2]);
        let t = depthwise_kernel(&k);
        assert_eq!(t.size(), [8, 1, 3, 3]);
        // output channel c·M + m = 2·2 + 1 = 5 holds k[.., 2, 1]
        assert_eq!(t.double_value(&[5, 0, 1, 2]), k.double_value(&[1, 2, 2, 1]));
    }

    /// A separable convolution computed from Keras' kernels (depthwise, then the 1×1
    /// pointwise as a matrix over channels, written out with einsum from Keras' layouts)
    /// equals libtorch's two convolutions with the converted kernels.
    #[test]
    fn separable_kernels_convert_to_libtorch_layouts() {
        let (c, m, out, k) = (3, 2, 5, 3);
        let dw = Tensor::randn([k, k, c, m], (Kind::Float, Device::Cpu));
        let pw = Tensor::randn([1, 1, c * m, out], (Kind::Float, Device::Cpu));
        let x = Tensor::randn([2, c, 6, 6], (Kind::Float, Device::Cpu));
        // Keras: y[n, y, x, c·M + m] = Σ_ij x[n, c, y+i, x+j] · dw[i, j, c, m], valid.
        let patches = x.unfold(2, k, 1).unfold(3, k, 1); // [N, C, 4, 4, k, k]
        let depth = Tensor::einsum("ncyxij,ijcm->ncmyx", &[&patches, &dw], None::<i64>);
        let depth = depth.reshape([2, c * m, 4, 4]);
        let keras = Tensor::einsum(
            "nkyx,ko->noyx",
            &[&depth, &pw.view([c * m, out])],
            None::<i64>,
        );
        let dw_t = to_torch(
            KerasRole::DepthwiseKernel,
            &values(&dw),
            &[k, k, c, m],
            None,
            "dw",
        )
        .expect("depthwise");
        let pw_t = to_torch(
            KerasRole::PointwiseKernel,
            &values(&pw),
            &[1, 1, c * m, out],
            None,
            "pw",
        )
        .expect("pointwise");
        assert_eq!(pw_t.size(), [out, c * m, 1, 1]);
        let ours = x
            .conv2d(&dw_t, None::<&Tensor>, [1, 1], [0, 0], [1, 1], c)
            .conv2d(&pw_t, None::<&Tensor>, [1, 1], [0, 0], [1, 1], 1);
        let diff = (keras - ours).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "max difference {diff}");
        assert_eq!(
            KerasRole::from_weight_name("block2_sepconv1/pointwise_kernel:0"),
            Some(KerasRole::PointwiseKernel)
        );
        let err = to_torch(KerasRole::PointwiseKernel, &[0.0; 6], &[6, 1], None, "pw")
            .expect_err("2-D pointwise");
        assert!(err.to_string().contains("4-D"), "{err}");
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).expect("f32 values")
    }

    #[test]
    fn flatten_permutation_matches_keras_flatten() {
        // A dense layer applied to Keras' NHWC flatten must equal the converted layer on
        // libtorch's NCHW flatten.
        let (c, h, w, out) = (3, 2, 5, 4);
        let kernel = Tensor::randn([h * w * c, out], (Kind::Float, Device::Cpu));
        let x = Tensor::randn([2, c, h, w], (Kind::Float, Device::Cpu));
        let keras = keras_flatten(&x).matmul(&kernel);
        let ours = x
            .flatten(1, -1)
            .matmul(&dense_kernel_after_flatten(&kernel, [c, h, w]).transpose(0, 1));
        let diff = (keras - ours).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "max difference {diff}");
    }

    #[test]
    fn roles_from_legacy_names() {
        assert_eq!(
            KerasRole::from_weight_name("conv2d_5/kernel:0"),
            Some(KerasRole::Kernel)
        );
        assert_eq!(
            KerasRole::from_weight_name("batch_normalization_5/moving_variance:0"),
            Some(KerasRole::MovingVariance)
        );
        assert_eq!(KerasRole::from_weight_name("x/iterations:0"), None);
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let err = to_torch(KerasRole::Kernel, &[0.0; 5], &[2, 3], None, "dense/kernel")
            .expect_err("5 values for a 2×3 kernel");
        assert!(err.to_string().contains("dense/kernel"), "{err}");
        let err = to_torch(
            KerasRole::Kernel,
            &[0.0; 6],
            &[6, 1],
            Some([1, 2, 2]),
            "dense/kernel",
        )
        .expect_err("flatten of 4 features into 6 rows");
        assert!(err.to_string().contains("Flatten"), "{err}");
    }
}
