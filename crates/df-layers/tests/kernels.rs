//! A traced pooling layer: inside `kernels::standard_ops` the tracer records libtorch's
//! `max_pool2d` (which it can see), so the graph traced at one batch gives the layer's
//! values at another; df-sys's custom kernel, which the tracer cannot see, is not used.

use df_layers::{kernels, MaxPool2d, MaxPool2dConfig, Padding};
use tch::nn::Module;
use tch::{CModule, Device, Kind, Tensor};

#[test]
fn a_pooling_layer_traced_under_standard_ops_runs_at_another_batch() {
    let pool = MaxPool2d::new(&MaxPool2dConfig::new(2, Padding::Valid)).expect("pool");
    tch::manual_seed(3);
    let traced_on = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
    let module = CModule::create_by_tracing("pool", "forward", &[traced_on], &mut |xs| {
        kernels::standard_ops(|| vec![pool.forward(&xs[0])])
    })
    .expect("trace");
    let x = Tensor::randn([5, 3, 8, 8], (Kind::Float, Device::Cpu));
    let want = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
    let got = module
        .forward_ts(&[&x])
        .expect("the traced graph runs at batch 5");
    assert_eq!(got.size(), want.size());
    assert!(
        got.equal(&want),
        "the traced pooling differs from max_pool2d"
    );
    // Outside the switch the layer still takes df-sys's kernel: the same values.
    assert!(kernels::custom_allowed());
    assert!(pool.forward(&x).equal(&want));
}
