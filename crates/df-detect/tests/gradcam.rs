//! Grad-CAM (`df_detect::grad_cam`, `Detector::explain_image`) against independent
//! references: PyTorch's autograd on the same weights (`scripts/fixtures/torch_gradcam.py`),
//! Adebayo et al.'s weight-randomisation check, and a model whose logit reads one quadrant.

#[path = "../../../fixtures/lookup.rs"]
mod lookup;

use std::path::Path;

use df_detect::{grad_cam, Detector, DetectorOptions, Verdict};
use df_models::{BuildOptions, Model, Top};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

#[derive(serde::Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    case: String,
    model: String,
    size: i64,
    layer: String,
    top: String,
}

/// The case's model with the fixture's weights, and the fixture's other tensors.
fn fixture_model(case: &Case) -> (VarStore, Box<dyn Model>, Vec<(String, Tensor)>) {
    let top = match case.top.as_str() {
        "mesonet" => Top::mesonet(),
        "binary_pooled" => Top::binary_pooled(),
        other => panic!("unknown top {other}"),
    };
    let vs = VarStore::new(Device::Cpu);
    let options = BuildOptions::default()
        .with_input_size(case.size, case.size)
        .with_top(top);
    let model = df_models::build(&case.model, &vs.root(), &options).expect("build");
    let file = lookup::path("torch_gradcam", &format!("{}.safetensors", case.case));
    let tensors = Tensor::read_safetensors(&file).expect("read the fixture");
    let mut variables = vs.variables();
    let mut rest = Vec::new();
    tch::no_grad(|| {
        for (name, t) in tensors {
            match variables.remove(&name) {
                Some(v) => {
                    assert_eq!(v.size(), t.size(), "{}: {name}", case.case);
                    v.shallow_clone().copy_(&t);
                }
                None => rest.push((name, t)),
            }
        }
    });
    let missing: Vec<&String> = variables.keys().collect();
    assert!(
        missing.is_empty(),
        "{}: not in the fixture: {missing:?}",
        case.case
    );
    (vs, model, rest)
}

fn named<'a>(tensors: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &tensors.iter().find(|(n, _)| n == name).expect(name).1
}

fn cases() -> Vec<Case> {
    let cases: Cases = lookup::json("torch_gradcam", "cases.json");
    cases.cases
}

#[test]
fn maps_equal_pytorch_autograd_grad_cam_on_the_same_weights() {
    for case in cases() {
        let (_vs, model, tensors) = fixture_model(&case);
        let x = named(&tensors, "input");
        let cam = grad_cam(model.as_ref(), x).expect("grad-cam");
        assert_eq!(cam.layer, case.layer, "{}", case.case);
        let logit = named(&tensors, "logit").double_value(&[0, 0]);
        assert!(
            (f64::from(cam.logits[0]) - logit).abs() < 1e-4,
            "{}: logit {} vs PyTorch's {logit}",
            case.case,
            cam.logits[0]
        );
        let expected = named(&tensors, "map");
        let got = cam.maps.get(0);
        assert_eq!(got.size(), expected.size(), "{}", case.case);
        let diff = (&got - expected).abs().max().double_value(&[]);
        eprintln!("{}: max |Rust - PyTorch| = {diff:e}", case.case);
        assert!(diff < 1e-4, "{}: max |Rust - PyTorch| = {diff}", case.case);
    }
}

/// Ranks with ties averaged.
fn ranks(values: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// `n` Gaussian values of standard deviation `std` (splitmix64 and Box-Muller: the same on
/// every run, whatever other tests draw from libtorch's generator meanwhile).
fn gaussian(state: &mut u64, n: usize, std: f64) -> Vec<f32> {
    let mut uniform = || {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos() * std) as f32
        })
        .collect()
}

/// Spearman's rank correlation (Pearson's of the ranks); 0 when either map is constant
/// (an all-zero map: nothing of the reference's ranking is left).
fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        return 0.0;
    }
    sab / (saa * sbb).sqrt()
}

#[test]
fn spearman_of_the_test_is_spearman() {
    assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
    assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    // scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]) = 0.9486832980505138
    assert!(
        (spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]) - 0.948_683_298_050_513_8).abs()
            < 1e-12
    );
}

fn flat(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.contiguous().view([-1])).expect("values")
}

/// Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018): a map that explains
/// the model changes when the model's weights are replaced by random ones. Each
/// convolution and dense layer is redrawn (Gaussian, He scale); the batch norms are kept.
#[test]
fn randomising_the_weights_changes_the_map_adebayo_sanity_check() {
    for case in cases().into_iter().filter(|c| c.model.starts_with("meso")) {
        let (vs, model, tensors) = fixture_model(&case);
        let x = named(&tensors, "input");
        let reference = flat(&grad_cam(model.as_ref(), x).expect("cam").maps);
        // The first three seeds whose random weights give a map with some evidence (an
        // all-zero map would pass trivially).
        let mut tried = 0;
        for seed in 1..=12 {
            let mut state = seed;
            let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            variables.sort_by(|a, b| a.0.cmp(&b.0));
            tch::no_grad(|| {
                for (name, v) in variables {
                    if name.ends_with(".weight") && v.dim() >= 2 {
                        let fan_in: i64 = v.size()[1..].iter().product();
                        let std = (2.0 / fan_in as f64).sqrt();
                        let values = gaussian(&mut state, v.numel(), std);
                        v.shallow_clone()
                            .copy_(&Tensor::from_slice(&values).view(v.size().as_slice()));
                    }
                }
            });
            let random = flat(&grad_cam(model.as_ref(), x).expect("cam").maps);
            let max = random.iter().copied().fold(0.0f32, f32::max);
            if max > 0.0 {
                tried += 1;
            }
            let rho = spearman(&reference, &random);
            eprintln!("{} seed {seed}: Spearman {rho:.3}", case.case);
            assert!(
                rho < 0.5,
                "{} seed {seed}: rank correlation {rho} of the map with random weights",
                case.case
            );
            // Back to the fixture's weights for the next seed.
            let file = lookup::path("torch_gradcam", &format!("{}.safetensors", case.case));
            let saved = Tensor::read_safetensors(&file).expect("read");
            let variables = vs.variables();
            tch::no_grad(|| {
                for (name, t) in saved {
                    if let Some(v) = variables.get(&name) {
                        v.shallow_clone().copy_(&t);
                    }
                }
            });
            if tried == 3 {
                break;
            }
        }
        assert_eq!(
            tried, 3,
            "{}: random weights keep giving all-zero maps",
            case.case
        );
    }
}

/// A model whose logit reads one quadrant of the picture: its feature map has one channel
/// per quadrant (the picture's mean over channels, masked to that quadrant, pooled 4×4),
/// and its head sums the channel of quadrant `q` only.
#[derive(Debug)]
struct Quadrant {
    q: i64,
    size: i64,
}

impl ModuleT for Quadrant {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for Quadrant {
    fn name(&self) -> &str {
        "quadrant"
    }
    fn input_spec(&self) -> df_models::InputSpec {
        df_models::InputSpec {
            height: self.size,
            width: self.size,
            preprocessing: df_models::Preprocessing::unit(),
        }
    }
    fn family(&self) -> &str {
        "quadrant"
    }
    fn config_json(&self) -> df_models::Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    fn forward_features(&self, xs: &Tensor, _train: bool) -> Tensor {
        let grey = xs.mean_dim([1i64].as_slice(), true, Kind::Float); // [N, 1, S, S]
        let half = self.size / 2;
        let masks: Vec<Tensor> = (0..4)
            .map(|q| {
                let m = Tensor::zeros([1, 1, self.size, self.size], (Kind::Float, Device::Cpu));
                let _ = m
                    .narrow(2, (q / 2) * half, half)
                    .narrow(3, (q % 2) * half, half)
                    .fill_(1.0);
                &grey * m
            })
            .collect();
        Tensor::cat(&masks, 1).avg_pool2d([4, 4], [4, 4], [0, 0], false, true, None::<i64>)
    }
    fn forward_head(&self, features: &Tensor, _train: bool) -> Tensor {
        features
            .narrow(1, self.q, 1)
            .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float)
            .view([-1, 1])
    }
    fn head(&self) -> Option<&df_layers::DenseHead> {
        None
    }
}

#[test]
fn a_logit_that_reads_one_quadrant_puts_the_maps_mass_there() {
    let size = 64;
    tch::manual_seed(7);
    // Texture everywhere: the evidence is where the logit looks, not where the picture is.
    let x = Tensor::rand([1, 3, size, size], (Kind::Float, Device::Cpu)) + 0.1;
    for q in 0..4 {
        let model = Quadrant { q, size };
        let cam = grad_cam(&model, &x).expect("cam");
        assert_eq!(cam.layer, "features");
        let map = cam.maps.get(0);
        let half = size / 2;
        let inside = map
            .narrow(0, (q / 2) * half, half)
            .narrow(1, (q % 2) * half, half)
            .sum(Kind::Float)
            .double_value(&[]);
        let total = map.sum(Kind::Float).double_value(&[]);
        eprintln!("quadrant {q}: {:.4} of the mass", inside / total);
        assert!(
            inside >= 0.9 * total && total > 0.0,
            "quadrant {q}: {inside} of {total}"
        );
    }
}

fn meso_checkpoint(path: &Path, size: i64) {
    let vs = VarStore::new(Device::Cpu);
    let options = BuildOptions::default().with_input_size(size, size);
    let model = df_models::build("meso4", &vs.root(), &options).expect("meso4");
    df_models::checkpoint::save_checkpoint_with(&vs, model.as_ref(), None, path).expect("save");
}

#[test]
fn a_whole_pictures_map_is_in_its_pixels_with_the_score_it_explains() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = tmp.path().join("m.safetensors");
    tch::manual_seed(3);
    meso_checkpoint(&weights, 32);
    let detector = Detector::open(&weights, &DetectorOptions::default()).expect("open");
    // The model's size: the picture is the input (nearest resize of 32 px to 32 px).
    let photo = tmp.path().join("a.png");
    let image = image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 8) as u8, ((x + y) * 4) as u8])
    });
    image.save(&photo).expect("png");
    let explained = detector.explain_path(&photo).expect("explain");
    let Verdict::Image(scored) = detector.score_path(&photo).expect("score") else {
        panic!("a photo");
    };
    assert_eq!(explained.verdict, scored);
    assert_eq!(explained.maps.len(), 1);
    let map = &explained.maps[0];
    assert_eq!(
        (map.width, map.height, map.layer.as_str()),
        (32, 32, "batch_normalization_3")
    );
    let x = df_data::rgb_to_tensor(&image, detector.transform()).expect("input");
    let cam = grad_cam(detector.model().model.as_ref(), &x).expect("cam");
    let reference = flat(&cam.maps);
    let diff = map
        .values
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-6, "{diff}");
    let at = map.values[(map.peak[1] * 32 + map.peak[0]) as usize];
    let max = map.values.iter().copied().fold(0.0f32, f32::max);
    assert_eq!(at, max, "the peak {:?} is the map's maximum", map.peak);

    // A picture twice the size: the map spans it, the peak scales with it.
    let big = image::imageops::resize(&image, 64, 64, image::imageops::FilterType::Nearest);
    let explained = detector.explain_image(&big).expect("explain");
    let m = &explained.maps[0];
    assert_eq!((m.width, m.height), (64, 64));
    // The centre of input pixel p lies at 2p + 1 of the doubled picture.
    assert_eq!(m.peak, [map.peak[0] * 2 + 1, map.peak[1] * 2 + 1]);

    // A video is not explained; a file that is not an image is an error naming it.
    let video = tmp.path().join("clip.mp4");
    std::fs::write(&video, b"not read").expect("write");
    let e = detector
        .explain_path(&video)
        .expect_err("a video")
        .to_string();
    assert!(e.contains("clip.mp4") && e.contains("video"), "{e}");
    let broken = tmp.path().join("broken.png");
    std::fs::write(&broken, b"not a png").expect("write");
    let e = detector
        .explain_path(&broken)
        .expect_err("broken")
        .to_string();
    assert!(e.contains("broken.png"), "{e}");
}

#[test]
fn the_overlay_is_the_base_picture_under_the_maps_colours() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let weights = tmp.path().join("m.safetensors");
    meso_checkpoint(&weights, 32);
    let detector = Detector::open(&weights, &DetectorOptions::default()).expect("open");
    let image = image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 7) as u8, 90])
    });
    let explained = detector.explain_image(&image).expect("explain");
    let map = &explained.maps[0];
    let png = map.overlay_png(&image).expect("png");
    let back = image::load_from_memory(&png).expect("decode").to_rgb8();
    assert_eq!(back.dimensions(), (40, 30));
    for ((o, b), v) in back.pixels().zip(image.pixels()).zip(&map.values) {
        if *v == 0.0 {
            assert_eq!(o, b);
        }
    }
    let bad = df_detect::CamMap {
        values: vec![0.0; 3],
        ..map.clone()
    };
    assert!(bad.overlay_png(&image).is_err());
}

/// The families whose Grad-CAM layer lies before their feature map's end (a pooling
/// follows it) split there: the first half ends at the catalogue's `gradcam_layer` (the
/// last layer it runs, by the layer trace) and the halves compose to the forward pass.
/// (The others' layer is their feature map's last: ResNet, EfficientNet,
/// Inception-ResNet-v2 and Xception take 5–20 s each to build here, so they are left out.)
#[test]
fn families_split_at_their_catalogue_gradcam_layer() {
    let names = ["meso4", "meso_inception4", "vgg16"];
    for name in names {
        let info = df_models::registry::info(name).expect("registered");
        let size = info.min_input_size.max(32);
        let vs = VarStore::new(Device::Cpu);
        let options = BuildOptions::default()
            .with_input_size(size, size)
            .with_top(Top::binary_pooled());
        let model = df_models::build(name, &vs.root(), &options).expect("build");
        tch::manual_seed(5);
        let x = Tensor::rand([1, 3, size, size], (Kind::Float, Device::Cpu));
        let (a, records) =
            df_layers::trace::capture(|| tch::no_grad(|| model.forward_cam_features(&x, false)));
        let last = records.last().expect("a layer ran");
        assert_eq!(
            (last.name.as_str(), &last.output_shape),
            (info.gradcam_layer, &a.size()),
            "{name}"
        );
        assert_eq!(model.cam_layer(), info.gradcam_layer, "{name}");
        let (split, whole) = tch::no_grad(|| {
            (
                model.forward_cam_head(&a, false),
                model.forward_t(&x, false),
            )
        });
        let diff = (&split - &whole).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: {diff}");
    }
}

/// The cost of a Grad-CAM against one forward pass (a measurement, not a test: run with
/// `cargo test -p df-detect --test gradcam -- --ignored --nocapture gradcam_cost`; the
/// figures are in docs/trust.md). Batch of one at each model's study size, on one
/// libtorch thread, in CPU time of that thread (`/proc/thread-self/stat`, so that other
/// work on a shared machine does not count), interleaved rounds after a warm-up.
#[cfg(target_os = "linux")]
#[test]
#[ignore]
fn gradcam_cost_against_one_forward_pass() {
    /// CPU seconds this thread has run.
    fn cpu() -> f64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime (fields 14 and 15 of the line), in ticks of 1/100 s.
        let ticks: f64 =
            fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
        ticks / 100.0
    }
    /// CPU seconds per call of `f`, over at least 2 CPU seconds.
    fn per_call(mut f: impl FnMut()) -> f64 {
        let (start, mut n) = (cpu(), 0);
        while cpu() - start < 2.0 {
            f();
            n += 1;
        }
        (cpu() - start) / f64::from(n)
    }
    tch::set_num_threads(1);
    for name in [
        "meso4",
        "meso_inception4",
        "resnet50",
        "efficientnet_b0",
        "xception",
    ] {
        let info = df_models::registry::info(name).expect("registered");
        let [h, w] = info.input_size;
        let vs = VarStore::new(Device::Cpu);
        let options = BuildOptions::default().with_top(Top::binary_pooled());
        let model = df_models::build(name, &vs.root(), &options).expect("build");
        let x = Tensor::rand([1, 3, h, w], (Kind::Float, Device::Cpu));
        let forward = || {
            let _ = tch::no_grad(|| model.forward_t(&x, false));
        };
        let cam = || {
            let _ = grad_cam(model.as_ref(), &x).expect("cam");
        };
        forward();
        cam();
        let (mut forwards, mut cams) = (0.0, 0.0);
        for _ in 0..2 {
            forwards += per_call(forward);
            cams += per_call(cam);
        }
        println!(
            "{name} {h}x{w}: forward {:.1} ms, Grad-CAM {:.1} ms (CPU, one thread), ratio {:.2}",
            forwards / 2.0 * 1e3,
            cams / 2.0 * 1e3,
            cams / forwards
        );
    }
}
