//! scratch
use df_data::synthetic::SyntheticSet;
use df_data::{Loader, LoaderConfig, Transform};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn main() -> df_data::Result<()> {
    let size: u32 = std::env::var("SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(64);
    let n: usize = std::env::var("N").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let epochs: u64 = std::env::var("EPOCHS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    tch::manual_seed(0);
    let t0 = std::time::Instant::now();
    let train = SyntheticSet::new(n, size, 1)?;
    let val = SyntheticSet::new(60, size, 2)?;
    let cfg = LoaderConfig::default().with_batch_size(32).with_workers(2).with_transform(Transform::unit(size, size)).with_seed(3);
    let train = Loader::new(train, cfg)?;
    let val = Loader::new(val, LoaderConfig::eval(Transform::unit(size, size), 40))?;
    let vs = nn::VarStore::new(Device::Cpu);
    let p = vs.root();
    let conv = |i, o, k, name: &str| nn::conv2d(&p / name, i, o, k, nn::ConvConfig { padding: k / 2, ..Default::default() });
    let bn = |c, name: &str| nn::batch_norm2d(&p / name, c, nn::BatchNormConfig { eps: 1e-3, momentum: 0.01, ..Default::default() });
    let (c1, c2, c3, c4) = (conv(3, 8, 3, "c1"), conv(8, 8, 5, "c2"), conv(8, 16, 5, "c3"), conv(16, 16, 5, "c4"));
    let (b1, b2, b3, b4) = (bn(8, "b1"), bn(8, "b2"), bn(16, "b3"), bn(16, "b4"));
    let feat = (size / 32) as i64;
    let d1 = nn::linear(&p / "d1", 16 * feat * feat, 16, Default::default());
    let d2 = nn::linear(&p / "d2", 16, 1, Default::default());
    let net = nn::func_t(move |x, train| {
        let x = x.apply(&c1).relu().apply_t(&b1, train).max_pool2d_default(2);
        let x = x.apply(&c2).relu().apply_t(&b2, train).max_pool2d_default(2);
        let x = x.apply(&c3).relu().apply_t(&b3, train).max_pool2d_default(2);
        let x = x.apply(&c4).relu().apply_t(&b4, train).max_pool2d(4, 4, 0, 1, false);
        let x = x.flatten(1, -1).dropout(0.5, train).apply(&d1).leaky_relu().dropout(0.5, train);
        x.apply(&d2).squeeze_dim(1)
    });
    let mut opt = nn::Adam::default().build(&vs, 1e-3)?;
    for epoch in 0..epochs {
        let mut tl = 0.0; let mut nb = 0.0;
        for b in train.epoch(epoch) {
            let b = b?;
            let loss = net.forward_t(&b.images, true).binary_cross_entropy_with_logits::<Tensor>(&b.labels, None, None, tch::Reduction::Mean);
            opt.backward_step(&loss);
            tl += loss.double_value(&[]); nb += 1.0;
        }
        let (mut c, mut t) = (0i64, 0i64);
        tch::no_grad(|| for b in val.epoch(0) { let b = b.unwrap(); let pred = net.forward_t(&b.images, false).gt(0.0).to_kind(Kind::Float); c += pred.eq_tensor(&b.labels).sum(Kind::Int64).int64_value(&[]); t += b.len() as i64; });
        println!("epoch {epoch}: loss {:.3} val acc {:.3} ({:?})", tl / nb, c as f64 / t as f64, t0.elapsed());
    }
    Ok(())
}
