//! libtorch's autocast through the shim, against PyTorch's documented CPU policy
//! (torch.amp "CPU Ops that can autocast to bfloat16": conv2d, linear, matmul ...; "CPU
//! Ops that can autocast to float32": binary_cross_entropy_with_logits ...): the compute
//! dtype of convolutions changes, batch-norm statistics, the loss and the gradients of f32
//! parameters stay f32, and a scope restores the state it found.

use df_sys::autocast::{self, Autocast};
use df_sys::Error;
use tch::{Device, Kind, Tensor};

const CPU: Device = Device::Cpu;

fn conv(x: &Tensor, w: &Tensor) -> Tensor {
    x.conv2d(w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1)
}

#[test]
fn convolutions_linear_layers_and_matmul_run_in_the_scope_dtype() {
    let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, CPU));
    let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, CPU));
    let a = Tensor::randn([5, 6], (Kind::Float, CPU));
    let b = Tensor::randn([6, 7], (Kind::Float, CPU));
    for kind in [Kind::BFloat16, Kind::Half] {
        let scope = Autocast::enter(CPU, kind).expect("autocast on the CPU");
        assert_eq!(conv(&x, &w).kind(), kind, "conv2d under {kind:?}");
        assert_eq!(a.matmul(&b).kind(), kind, "matmul under {kind:?}");
        assert_eq!(
            a.linear(&b.tr(), None::<Tensor>).kind(),
            kind,
            "linear under {kind:?}"
        );
        // Elementwise operations are not cast: they follow their inputs.
        assert_eq!((&x + 1.0).kind(), Kind::Float);
        drop(scope);
        assert_eq!(conv(&x, &w).kind(), Kind::Float, "after the {kind:?} scope");
    }
    // The values are the f32 result rounded through bf16, not something else.
    let reference = conv(&x, &w);
    let low = {
        let _bf16 = Autocast::enter(CPU, Kind::BFloat16).expect("autocast");
        conv(&x, &w)
    };
    let err = (low.to_kind(Kind::Float) - &reference)
        .abs()
        .max()
        .double_value(&[]);
    let scale = reference.abs().max().double_value(&[]);
    assert!(err > 0.0, "bf16 must round");
    assert!(
        err < 0.05 * scale,
        "bf16 error {err} against a magnitude {scale}"
    );
}

#[test]
fn batch_norm_statistics_the_loss_and_gradients_stay_f32() {
    let x = Tensor::randn([4, 3, 6, 6], (Kind::Float, CPU));
    let w = Tensor::randn([2, 3, 3, 3], (Kind::Float, CPU)).set_requires_grad(true);
    let gamma = Tensor::ones([2], (Kind::Float, CPU)).set_requires_grad(true);
    let beta = Tensor::zeros([2], (Kind::Float, CPU)).set_requires_grad(true);
    let running_mean = Tensor::zeros([2], (Kind::Float, CPU));
    let running_var = Tensor::ones([2], (Kind::Float, CPU));
    let target = Tensor::from_slice(&[0.0f32, 1.0, 1.0, 0.0]);
    let scope = Autocast::enter(CPU, Kind::BFloat16).expect("autocast");
    let h = conv(&x, &w);
    assert_eq!(h.kind(), Kind::BFloat16);
    let h = h.batch_norm(
        Some(&gamma),
        Some(&beta),
        Some(&running_mean),
        Some(&running_var),
        true,
        0.1,
        1e-3,
        false,
    );
    let logits = h.mean_dim([1i64, 2, 3].as_slice(), false, None);
    let loss = logits.binary_cross_entropy_with_logits::<Tensor>(
        &target,
        None,
        None,
        tch::Reduction::Mean,
    );
    assert_eq!(
        loss.kind(),
        Kind::Float,
        "the loss is on autocast's f32 list"
    );
    drop(scope);
    loss.backward();
    assert_eq!(running_mean.kind(), Kind::Float);
    assert_eq!(running_var.kind(), Kind::Float);
    assert!(
        running_mean.abs().sum(Kind::Float).double_value(&[]) > 0.0,
        "statistics updated"
    );
    for (name, p) in [("conv", &w), ("gamma", &gamma), ("beta", &beta)] {
        let g = p.grad();
        assert!(g.defined(), "{name} has a gradient");
        assert_eq!(g.kind(), Kind::Float, "{name}'s gradient");
        assert!(bool::try_from(g.isfinite().all()).expect("bool"), "{name}");
    }
}

#[test]
fn scopes_nest_and_restore_the_state_they_found() {
    let default = autocast::dtype(CPU).expect("dtype");
    assert!(!autocast::is_enabled(CPU).expect("state"));
    let x = Tensor::randn([2, 3, 5, 5], (Kind::Float, CPU));
    let w = Tensor::randn([2, 3, 3, 3], (Kind::Float, CPU));
    {
        let _outer = Autocast::enter(CPU, Kind::BFloat16).expect("outer");
        {
            let _inner = Autocast::enter(CPU, Kind::Half).expect("inner");
            assert_eq!(conv(&x, &w).kind(), Kind::Half);
        }
        assert!(autocast::is_enabled(CPU).expect("state"));
        assert_eq!(conv(&x, &w).kind(), Kind::BFloat16, "the outer scope again");
    }
    assert!(!autocast::is_enabled(CPU).expect("state"));
    assert_eq!(autocast::dtype(CPU).expect("dtype"), default);
    // The state is per thread: another thread never saw this one's scope.
    let _scope = Autocast::enter(CPU, Kind::BFloat16).expect("scope");
    let other = std::thread::spawn(|| autocast::is_enabled(CPU).expect("state"))
        .join()
        .expect("thread");
    assert!(!other);
}

#[test]
fn a_full_precision_kind_is_no_scope_and_other_kinds_are_refused() {
    assert!(Autocast::maybe(CPU, None).expect("none").is_none());
    assert!(Autocast::maybe(CPU, Some(Kind::Float))
        .expect("f32")
        .is_none());
    assert!(Autocast::maybe(CPU, Some(Kind::BFloat16))
        .expect("bf16")
        .is_some());
    for kind in [Kind::Float, Kind::Double, Kind::Int64] {
        match Autocast::enter(CPU, kind) {
            Err(Error::Invalid { option, reason }) => {
                assert_eq!(option, "autocast dtype");
                assert!(reason.contains(&format!("{kind:?}")), "{reason}");
            }
            other => panic!("{kind:?}: {other:?}"),
        }
    }
    assert!(
        !autocast::is_enabled(CPU).expect("state"),
        "nothing left enabled"
    );
}
