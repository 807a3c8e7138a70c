use df_models::registry::{self, BuildOptions};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn main() {
    let out = std::path::PathBuf::from(std::env::args().nth(1).expect("out dir"));
    tch::manual_seed(7);
    let vs = VarStore::new(Device::Cpu);
    let options = BuildOptions::default().with_input_size(64, 64);
    let model = registry::build("meso4", &vs.root(), &options).expect("build");
    df_models::checkpoint::save_checkpoint(&vs, model.as_ref(), out.join("meso4_v1.safetensors")).expect("save");
    let xs = Tensor::arange(2 * 3 * 64 * 64, (Kind::Float, Device::Cpu)).fmod(251.0) / 251.0;
    let xs = xs.view([2, 3, 64, 64]);
    let logits = tch::no_grad(|| tch::nn::ModuleT::forward_t(model.as_ref(), &xs, false));
    let v = Vec::<f32>::try_from(logits.view([-1])).expect("f32");
    let json = serde_json::json!({
        "written_by": format!("deepfake {} (df-models at commit {})", "0.1.0", std::env::var("COMMIT").unwrap_or_default()),
        "model": "meso4", "input_size": [64, 64], "seed": 7,
        "input": "(arange(2*3*64*64) % 251) / 251, shape [2, 3, 64, 64]",
        "logits": v,
    });
    std::fs::write(out.join("meso4_v1.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
}
