//! The synthetic forgery set: determinism, layout, and that its classes differ in
//! local texture, not in mean colour.

use df_data::synthetic::{self, SyntheticConfig, SyntheticFormat, SyntheticSet};
use df_data::{ImageSource, Label, Loader, LoaderConfig, Transform};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

#[test]
fn generation_is_deterministic_and_writes_both_classes() {
    let a = synthetic::fake_face(3, 64, 9);
    assert_eq!(a, synthetic::fake_face(3, 64, 9));
    assert_ne!(a, synthetic::fake_face(3, 64, 10));
    assert_ne!(a, synthetic::fake_face(4, 64, 9));
    assert_eq!(
        synthetic::real_face(0, 48, 1),
        synthetic::real_face(0, 48, 1)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let ds = synthetic::generate(dir.path(), 5, 40, 2).expect("generate");
    assert_eq!(ds.label_counts(), (5, 5));
    assert!(
        dir.path().join("real/00004.jpg").is_file() && dir.path().join("fake/00000.jpg").is_file()
    );
    let png = tempfile::tempdir().expect("tempdir");
    let cfg = SyntheticConfig {
        format: SyntheticFormat::Png,
        ..SyntheticConfig::new(2, 40, 2)
    };
    synthetic::generate_with(png.path(), &cfg).expect("generate");
    let written = image::open(png.path().join("fake/00001.png"))
        .expect("png")
        .to_rgb8();
    assert_eq!(
        written,
        synthetic::fake_face(1, 40, 2),
        "PNG files hold the in-memory images"
    );
    assert!(synthetic::generate(dir.path(), 0, 40, 1).is_err());
    assert!(synthetic::generate(dir.path(), 1, 16, 1).is_err());

    let set = SyntheticSet::new(3, 40, 2).expect("set");
    assert_eq!(set.len(), 6);
    assert_eq!((set.label(2), set.label(3)), (Label::Real, Label::Fake));
    assert_eq!(set.load(4).expect("image"), synthetic::fake_face(1, 40, 2));
}

/// Mean RGB of each image and its label.
fn features(n: usize, size: u32, seed: u64) -> (Vec<[f64; 3]>, Vec<bool>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n as u64 {
        for (label, img) in [
            (false, synthetic::real_face(i, size, seed)),
            (true, synthetic::fake_face(i, size, seed)),
        ] {
            let mut m = [0f64; 3];
            for p in img.pixels() {
                for c in 0..3 {
                    m[c] += f64::from(p[c]);
                }
            }
            let count = f64::from(size * size);
            x.push(m.map(|v| v / count));
            y.push(label);
        }
    }
    (x, y)
}

/// Fisher's linear discriminant on 3 features: fit on `(x, y)`, return the direction and threshold.
fn fisher(x: &[[f64; 3]], y: &[bool]) -> ([f64; 3], f64) {
    let mean = |cls: bool| {
        let rows: Vec<_> = x
            .iter()
            .zip(y)
            .filter(|(_, l)| **l == cls)
            .map(|(r, _)| *r)
            .collect();
        let n = rows.len() as f64;
        let mut m = [0f64; 3];
        for r in &rows {
            for c in 0..3 {
                m[c] += r[c] / n;
            }
        }
        (m, rows)
    };
    let (m0, r0) = mean(false);
    let (m1, r1) = mean(true);
    let mut s = [[1e-6f64; 3]; 3];
    for (m, rows) in [(m0, &r0), (m1, &r1)] {
        for r in rows.iter() {
            for i in 0..3 {
                for j in 0..3 {
                    s[i][j] += (r[i] - m[i]) * (r[j] - m[j]);
                }
            }
        }
    }
    let d = [m1[0] - m0[0], m1[1] - m0[1], m1[2] - m0[2]];
    // Solve s w = d by Cramer's rule.
    let det = |a: [[f64; 3]; 3]| {
        a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
    };
    let ds = det(s);
    let w: [f64; 3] = std::array::from_fn(|k| {
        let mut a = s;
        for i in 0..3 {
            a[i][k] = d[i];
        }
        det(a) / ds
    });
    let proj = |m: [f64; 3]| w[0] * m[0] + w[1] * m[1] + w[2] * m[2];
    (w, (proj(m0) + proj(m1)) / 2.0)
}

#[test]
fn mean_colour_does_not_separate_the_classes() {
    let (xtr, ytr) = features(150, 48, 1);
    let (xte, yte) = features(150, 48, 2);
    let (w, t) = fisher(&xtr, &ytr);
    let correct = xte
        .iter()
        .zip(&yte)
        .filter(|(r, l)| ((w[0] * r[0] + w[1] * r[1] + w[2] * r[2]) > t) == **l)
        .count();
    let acc = correct as f64 / yte.len() as f64;
    println!("mean-RGB linear classifier accuracy: {acc:.3}");
    assert!(
        acc < 0.65,
        "a linear classifier on mean RGB reaches {acc:.3}"
    );
}

#[test]
fn a_small_cnn_learns_the_classes_in_a_few_epochs() {
    tch::manual_seed(0);
    let size = 64;
    let train = SyntheticSet::new(200, size, 1).expect("set");
    let val = SyntheticSet::new(60, size, 2).expect("set");
    let cfg = LoaderConfig::default()
        .with_batch_size(16)
        .with_workers(2)
        .with_transform(Transform::unit(size, size))
        .with_seed(3);
    let train = Loader::new(train, cfg.clone()).expect("loader");
    let val =
        Loader::new(val, LoaderConfig::eval(Transform::unit(size, size), 40)).expect("loader");

    let vs = nn::VarStore::new(Device::Cpu);
    let p = vs.root();
    let conv = |i, o, name: &str| {
        nn::conv2d(
            &p / name,
            i,
            o,
            3,
            nn::ConvConfig {
                padding: 1,
                ..Default::default()
            },
        )
    };
    let (c1, c2, c3) = (conv(3, 8, "c1"), conv(8, 16, "c2"), conv(16, 16, "c3"));
    let fc = nn::linear(&p / "fc", 16, 1, Default::default());
    let bn = |c, name: &str| nn::batch_norm2d(&p / name, c, Default::default());
    let (b1, b2, b3) = (bn(8, "b1"), bn(16, "b2"), bn(16, "b3"));
    let net = nn::func_t(move |x, train| {
        let x = x
            .apply(&c1)
            .apply_t(&b1, train)
            .relu()
            .max_pool2d_default(2); // [N, 8, 32, 32]
        let x = x
            .apply(&c2)
            .apply_t(&b2, train)
            .relu()
            .max_pool2d_default(2); // [N, 16, 16, 16]
        let x = x
            .apply(&c3)
            .apply_t(&b3, train)
            .relu()
            .adaptive_max_pool2d([1, 1])
            .0
            .flatten(1, -1); // [N, 16]
        x.apply(&fc).squeeze_dim(1)
    });
    let mut opt = nn::Adam::default().build(&vs, 3e-3).expect("optimizer");
    let evaluate = || {
        let (mut correct, mut total) = (0i64, 0i64);
        tch::no_grad(|| {
            for b in val.epoch(0) {
                let b = b.expect("batch");
                let pred = net.forward_t(&b.images, false).gt(0.0).to_kind(Kind::Float);
                correct += pred.eq_tensor(&b.labels).sum(Kind::Int64).int64_value(&[]);
                total += b.len() as i64;
            }
        });
        correct as f64 / total as f64
    };
    let mut accs = Vec::new();
    for epoch in 0..6 {
        for b in train.epoch(epoch) {
            let b = b.expect("batch");
            let loss = net
                .forward_t(&b.images, true)
                .binary_cross_entropy_with_logits::<Tensor>(
                    &b.labels,
                    None,
                    None,
                    tch::Reduction::Mean,
                );
            opt.backward_step(&loss);
        }
        accs.push(evaluate());
    }
    let best = accs.iter().cloned().fold(0.0, f64::max);
    println!("small CNN validation accuracy per epoch: {accs:?}");
    assert!(best > 0.85, "validation accuracy per epoch {accs:?}");
}
