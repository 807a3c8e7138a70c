//! Gradients of the blocks that write into their own intermediate tensors in training
//! (ReLU and residual additions run in place, as `nn.ReLU(inplace=True)` and
//! `out += identity` do in PyTorch), checked against central finite differences in f64.
//!
//! The reference is the maths, not autograd: if an in-place step ever overwrote a tensor
//! that a backward formula reads, autograd would either refuse (a panic here) or return a
//! gradient these differences disagree with.

use df_layers::{
    Activation, BatchNormConfig, ConvBlock, ConvBlockConfig, ConvBnAct, ConvBnActConfig,
    IdentityBlock, IdentityBlockConfig, InceptionResnetA, InceptionResnetBlockConfig, MbConv,
    MbConvConfig, MesoInception, MesoInceptionConfig, Padding, SeparableConv2d,
    SeparableConv2dConfig,
};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

const EPS: f64 = 1e-6;

/// libtorch's generator is global and the tests run in parallel: whatever seeds it and
/// then draws from it holds this lock, so that drop-connect draws the same mask in every
/// evaluation of the objective (without it, another test's reseeding in between made the
/// MBConv check fail now and then).
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `sum(block(x) * weights)` in train mode, with the random state reset first so that
/// drop-connect draws the same mask on every call.
fn objective(block: &dyn ModuleT, x: &Tensor, weights: &Tensor) -> Tensor {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(11);
    (block.forward_t(x, true) * weights).sum(Kind::Double)
}

fn value(block: &dyn ModuleT, x: &Tensor, weights: &Tensor) -> f64 {
    tch::no_grad(|| objective(block, x, weights)).double_value(&[])
}

/// Central difference of the objective along one element of `t` (the input or a variable).
fn numeric(block: &dyn ModuleT, x: &Tensor, weights: &Tensor, t: &Tensor, at: i64) -> f64 {
    let flat = t.view(-1);
    let old = flat.double_value(&[at]);
    let set = |v: f64| tch::no_grad(|| drop(flat.get(at).fill_(v)));
    set(old + EPS);
    let plus = value(block, x, weights);
    set(old - EPS);
    let minus = value(block, x, weights);
    set(old);
    (plus - minus) / (2.0 * EPS)
}

fn assert_close(what: &str, analytic: f64, numeric: f64) {
    let tolerance = 1e-5 * (1.0 + analytic.abs());
    assert!(
        (analytic - numeric).abs() <= tolerance,
        "{what}: autograd {analytic} vs finite difference {numeric}"
    );
}

/// Builds a block in f64, then compares autograd's gradient of the objective with central
/// differences at a few elements of the input and of every variable.
fn check<M: ModuleT>(
    name: &str,
    input: &[i64],
    build: impl FnOnce(&nn::Path<'_>) -> df_layers::Result<M>,
) {
    let rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(3);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let block = build(&vs.root()).unwrap_or_else(|e| panic!("{name}: {e}"));
    vs.double();
    // Random values for every trainable variable, biases included: Keras initialises
    // biases to zero, which can put a ReLU input exactly on its kink (a channel that is
    // zero everywhere), where no finite difference agrees with any subgradient.
    tch::no_grad(|| {
        for mut v in vs.trainable_variables() {
            v.copy_(&(v.randn_like() * 0.5));
        }
    });
    let x = Tensor::randn(input, (Kind::Double, Device::Cpu)).set_requires_grad(true);
    let out_shape = tch::no_grad(|| block.forward_t(&x, true)).size();
    let weights = Tensor::randn(&out_shape, (Kind::Double, Device::Cpu));
    drop(rng);

    objective(&block, &x, &weights).backward();
    let mut targets = vec![(format!("{name}: input"), x.shallow_clone())];
    let mut variables: Vec<_> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    targets.extend(
        variables
            .into_iter()
            .filter(|(_, v)| v.requires_grad())
            .map(|(n, v)| (format!("{name}: {n}"), v)),
    );
    let analytic: Vec<Tensor> = targets.iter().map(|(_, t)| t.grad().copy()).collect();

    for ((what, t), grad) in targets.iter().zip(&analytic) {
        let n = t.numel() as i64;
        // A few spread-out elements of each tensor: first, last and two in between.
        for at in [0, n / 3, (2 * n) / 3, n - 1] {
            let a = grad.view(-1).double_value(&[at]);
            let d = numeric(&block, &x, &weights, t, at);
            assert_close(&format!("{what}[{at}]"), a, d);
        }
    }
}

#[test]
fn conv_bn_relu_gradients_match_finite_differences() {
    check("conv_bn_relu", &[2, 3, 6, 6], |p| {
        ConvBnAct::new(
            p,
            &ConvBnActConfig::new(3, 4, 3)
                .with_batch_norm(BatchNormConfig::default())
                .with_activation(Activation::Relu),
        )
    });
}

#[test]
fn identity_block_gradients_match_finite_differences() {
    check("identity_block", &[2, 8, 5, 5], |p| {
        IdentityBlock::new(p, &IdentityBlockConfig::new(2, "conv2_block2"))
    });
}

#[test]
fn conv_block_gradients_match_finite_differences() {
    check("conv_block", &[2, 4, 6, 6], |p| {
        ConvBlock::new(p, &ConvBlockConfig::new(4, 2, 2, "conv3_block1"))
    });
}

#[test]
fn inception_resnet_a_gradients_match_finite_differences() {
    check("block35", &[2, 8, 4, 4], |p| {
        InceptionResnetA::new(
            p,
            &InceptionResnetBlockConfig::block35(1).with_in_channels(8),
        )
    });
}

#[test]
fn mbconv_with_skip_and_drop_connect_gradients_match_finite_differences() {
    check("mbconv", &[4, 4, 5, 5], |p| {
        MbConv::new(
            p,
            &MbConvConfig::new(4, 4, 3, 1, 2)
                .with_prefix("block2b_")
                .with_drop_rate(0.5),
        )
    });
}

#[test]
fn meso_inception_gradients_match_finite_differences() {
    check("meso_inception", &[2, 3, 7, 7], |p| {
        MesoInception::new(p, &MesoInceptionConfig::new(3, [1, 2, 2, 1]))
    });
}

/// Keras' `SeparableConv2D` with an asymmetric "same" padding (stride 2 on an even size),
/// a depth multiplier, a bias and an in-place ReLU.
#[test]
fn separable_conv_gradients_match_finite_differences() {
    check("separable_conv", &[2, 3, 6, 6], |p| {
        SeparableConv2d::new(
            p,
            &SeparableConv2dConfig::new(3, 4, 3, "block2_sepconv1")
                .with_stride(2)
                .with_depth_multiplier(2)
                .with_padding(Padding::Same)
                .with_activation(Activation::Relu),
        )
    });
}
