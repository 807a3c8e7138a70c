//! Temporary experiment (deleted after use).
#![allow(missing_docs)]
use df_models::keras::KerasImportOptions;
use df_models::registry::{load_keras, KerasLoadOptions};
use df_models::Polarity;
use std::path::Path;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

fn read_npy(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).expect("read");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).expect("h");
    let dims = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).expect("s");
    let shape: Vec<i64> = dims.split(',').filter(|d| !d.trim().is_empty()).map(|d| d.trim().parse().expect("d")).collect();
    let values: Vec<f32> = bytes[10 + len..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Tensor::from_slice(&values).reshape(shape.as_slice())
}

#[test]
fn f64_experiment() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/generated/keras_apps");
    for b in [3usize, 4, 7] {
        let name = format!("efficientnet_b{b}"); let size = [0i64, 99, 96, 81, 72, 64, 65, 64][b];
        let options = KerasLoadOptions {
            import: KerasImportOptions::default().with_polarity(Polarity::Fake),
            top: None,
            input_size: Some([size, size]),
        };
        let loaded = load_keras(&name, dir.join(format!("{name}.weights.h5")), Device::Cpu, &options).expect("load");
        let x = read_npy(&dir.join(format!("{name}.input.npy")));
        let want = read_npy(&dir.join(format!("{name}.output.npy")));
        let y32 = tch::no_grad(|| loaded.model.forward_t(&x, false));
        let cfg = df_models::EfficientNetConfig::preset(b).expect("p").with_input_size(size, size);
        let mut vs = tch::nn::VarStore::new(Device::Cpu);
        let m = df_models::EfficientNet::new(&vs.root(), &cfg).expect("m");
        vs.copy(&loaded.var_store).expect("copy");
        vs.double();
        let vars = vs.variables();
        let y64 = tch::no_grad(|| {
            let f = m.features_t(&x.to_kind(Kind::Double), false).mean_dim(&[-2i64, -1][..], false, Kind::Double);
            f.linear(&vars["predictions.weight"], Some(&vars["predictions.bias"]))
        });
        let d = |a: &Tensor, b: &Tensor| (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs().max().double_value(&[]);
        eprintln!("{name}: scale {:.3e}  |ours32-keras| {:.3e}  |ours32-ours64| {:.3e}  |keras-ours64| {:.3e}",
            want.abs().max().double_value(&[]), d(&y32, &want), d(&y32, &y64), d(&want, &y64));
    }
}
