//! A tiny model and data set shared by the tests, and fixture loading.

use df_layers::{
    Activation, BatchNormConfig, ConvBnAct, ConvBnActConfig, DenseHead, DenseHeadConfig,
    DenseLayerConfig, HeadInput, Padding,
};
use df_models::{InputSpec, Model, Preprocessing};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// conv(3→4, 3×3, stride 2, same) + BN + ReLU, then Flatten → Dense(8, relu) →
/// Dropout → Dense(1): a MesoNet in miniature, on 8×8 inputs.
#[derive(Debug)]
pub struct TinyNet {
    conv: ConvBnAct,
    head: DenseHead,
    l2: f64,
    dropout: f64,
}

impl TinyNet {
    pub fn new(p: &nn::Path<'_>, l2: f64, dropout: f64) -> Self {
        let conv = ConvBnAct::new(
            &(p / "block1"),
            &ConvBnActConfig::new(3, 4, 3)
                .with_stride(2)
                .with_padding(Padding::Same)
                .with_batch_norm(BatchNormConfig::default())
                .with_activation(Activation::Relu)
                .with_names("conv", "bn"),
        )
        .expect("conv");
        let head = DenseHead::new(
            &(p / "head"),
            &DenseHeadConfig {
                input_shape: [4, 4, 4],
                input: HeadInput::Flatten,
                layers: vec![
                    DenseLayerConfig::new("dense", 8, Activation::Relu).with_l2(l2),
                    DenseLayerConfig::new("dense_1", 1, Activation::Linear)
                        .with_dropout_before(dropout)
                        .with_l2(l2),
                ],
            },
        )
        .expect("head");
        Self {
            conv,
            head,
            l2,
            dropout,
        }
    }
}

impl ModuleT for TinyNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for TinyNet {
    fn forward_features(&self, xs: &Tensor, train: bool) -> Tensor {
        self.conv.forward_t(xs, train)
    }
    fn forward_head(&self, features: &Tensor, train: bool) -> Tensor {
        self.head.forward_t(features, train)
    }
    fn name(&self) -> &str {
        "tiny_net"
    }
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            height: 8,
            width: 8,
            preprocessing: Preprocessing::unit(),
        }
    }
    fn family(&self) -> &str {
        "tiny_net"
    }
    fn config_json(&self) -> df_models::Result<serde_json::Value> {
        Ok(serde_json::json!({ "l2": self.l2, "dropout": self.dropout }))
    }
    fn head(&self) -> Option<&DenseHead> {
        Some(&self.head)
    }
}

/// A TinyNet on the CPU, its weights drawn from `seed`.
pub fn tiny(seed: i64, l2: f64, dropout: f64) -> (Box<dyn Model>, nn::VarStore) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = TinyNet::new(&vs.root(), l2, dropout);
    (Box::new(model), vs)
}

/// `n` images 3×8×8 and labels: fake when the first channel's mean brightness is above
/// the second's (learnable, a little noisy).
pub fn toy_data(n: i64, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let x = Tensor::randn([n, 3, 8, 8], (Kind::Float, Device::Cpu));
    let score = x.select(1, 0).mean_dim(&[1i64, 2][..], false, Kind::Float)
        - x.select(1, 1).mean_dim(&[1i64, 2][..], false, Kind::Float)
        + Tensor::randn([n], (Kind::Float, Device::Cpu)) * 0.05;
    let y = score.gt(0.0).to_kind(Kind::Float);
    (x, y)
}

/// Values of a tensor as `f64`.
pub fn values(t: &Tensor) -> Vec<f64> {
    let t = t.detach().to_kind(Kind::Double).flatten(0, -1);
    Vec::<f64>::try_from(&t).expect("tensor to vec")
}

#[path = "../../../fixtures/lookup.rs"]
mod lookup;

/// The JSON file `file` of fixture set `name` (committed or generated, see
/// `fixtures/lookup.rs`), or a panic telling how to make it.
pub fn fixture(name: &str, file: &str) -> serde_json::Value {
    lookup::json(name, file)
}

/// A JSON array of numbers as `Vec<f64>`.
pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}
