//! The shim's 2×2 max pooling against libtorch's own `max_pool2d` (the reference): the
//! same values, and the same gradient — which element of a window receives it — on inputs
//! full of ties (small integers), with NaN, -inf and odd sizes, in f32 and bf16, with and
//! without autograd.

use df_sys::pool::{max_pool_2x2, supports};
use tch::{Device, Kind, Tensor};

/// Values in {-1, 0, 1, 2}: most windows hold ties.
fn tied(shape: &[i64], kind: Kind, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randint_low(-1, 3, shape, (Kind::Int64, Device::Cpu)).to_kind(kind)
}

fn reference(x: &Tensor) -> Tensor {
    x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
}

/// Same values and NaNs in the same places.
fn assert_same(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.size(), b.size(), "{what}: shape");
    assert_eq!(a.kind(), b.kind(), "{what}: kind");
    let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
    assert!(a.isnan().equal(&b.isnan()), "{what}: NaNs in other places");
    let (a, b) = (a.nan_to_num(0.0, None, None), b.nan_to_num(0.0, None, None));
    assert!(a.equal(&b), "{what}: values differ: {a} vs {b}");
}

fn gradients(x: &Tensor, pool: impl Fn(&Tensor) -> Tensor, upstream: &Tensor) -> Tensor {
    let x = x.detach().set_requires_grad(true);
    let y = pool(&x);
    (y * upstream).sum(Kind::Float).backward();
    x.grad()
}

#[test]
fn values_and_gradients_match_libtorch_with_ties_nans_and_odd_sizes() {
    for kind in [Kind::Float, Kind::BFloat16] {
        for (i, shape) in [
            [2, 3, 8, 8],
            [3, 5, 7, 9],
            [1, 1, 2, 2],
            [2, 2, 4, 13],
            [16, 11, 32, 32],
        ]
        .iter()
        .enumerate()
        {
            let x = tied(shape, kind, i as i64);
            let flat = x.view([-1]);
            let n = flat.size()[0];
            // A NaN and a -inf in a few windows (a NaN wins its window: libtorch's rule).
            let _ = flat.narrow(0, n / 3, 1).fill_(f64::NAN);
            let _ = flat.narrow(0, n / 2, 1).fill_(f64::NEG_INFINITY);
            assert!(supports(&x));
            let what = format!("{kind:?} {shape:?}");
            assert_same(&max_pool_2x2(&x).expect("pool"), &reference(&x), &what);

            // Distinct upstream values show which element of each window got which.
            let out = reference(&x).size();
            let upstream = Tensor::arange(out.iter().product::<i64>(), (Kind::Float, Device::Cpu))
                .view(out.as_slice())
                .to_kind(kind)
                + 1.0;
            let ours = gradients(&x, |x| max_pool_2x2(x).expect("pool"), &upstream);
            let theirs = gradients(&x, reference, &upstream);
            assert_same(&ours, &theirs, &format!("{what} gradient"));
        }
    }
}

#[test]
fn an_input_that_needs_no_gradient_gets_the_same_values() {
    let x = tied(&[4, 6, 10, 12], Kind::Float, 9);
    let _guard = tch::no_grad_guard();
    let y = max_pool_2x2(&x.set_requires_grad(true)).expect("pool");
    assert!(!y.requires_grad());
    assert_same(&y, &reference(&x), "no grad");
}

#[test]
fn inputs_it_does_not_take_are_refused_by_name() {
    // NHWC in memory: the same shape, channels innermost.
    let cl = tied(&[2, 8, 8, 3], Kind::Float, 1).permute([0, 3, 1, 2]);
    let cases = [
        ("channels-last", cl, "not contiguous NCHW"),
        ("f64", tied(&[2, 3, 8, 8], Kind::Double, 1), "dtype"),
        ("3-d", tied(&[3, 8, 8], Kind::Float, 1), "dimensions"),
        (
            "1 row",
            tied(&[2, 3, 1, 8], Kind::Float, 1),
            "smaller than the window",
        ),
    ];
    for (what, x, message) in cases {
        assert!(!supports(&x), "{what}");
        let err = max_pool_2x2(&x).expect_err(what).to_string();
        assert!(
            err.contains(message) && err.contains("max_pool_2x2"),
            "{what}: {err}"
        );
    }
}
