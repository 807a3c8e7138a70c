//! scratch
struct Instant(u64);
impl Instant {
    fn now() -> Self { Instant(cpu()) }
    fn elapsed(&self) -> std::time::Duration { std::time::Duration::from_nanos(cpu() - self.0) }
}
fn cpu() -> u64 { std::fs::read_to_string("/proc/thread-self/schedstat").unwrap().split_whitespace().next().unwrap().parse().unwrap() }
use df_data::*;
fn main() -> Result<()> {
    let ds = ImageFolder::open("/work/shared/data/lfw-faceswap/train")?;
    let paths: Vec<_> = ds.samples().iter().take(200).map(|s| s.path.clone()).collect();
    let bytes: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let t = Instant::now();
    let imgs: Vec<_> = bytes.iter().map(|b| decode_rgb(b).unwrap()).collect();
    println!("decode {:?}/img", t.elapsed() / 200);
    let t = Instant::now();
    let r: Vec<_> = imgs.iter().map(|i| resize_rgb(i, 256, 256, ResizeFilter::Bilinear)).collect();
    println!("resize {:?}/img", t.elapsed() / 200);
    let t = Instant::now();
    let f: Vec<_> = r.iter().map(to_rgb32f).collect();
    println!("to f32 {:?}/img", t.elapsed() / 200);
    let aug = Augment::study();
    let t = Instant::now();
    let params: Vec<_> = (0..200).map(|i| aug.sample(&mut sample_rng(1, 0, i), 256, 256)).collect();
    println!("sample {:?}/img", t.elapsed() / 200);
    let t = Instant::now();
    let w: Vec<_> = f.iter().zip(&params).map(|(im, p)| warp_affine(im, &Affine::from_params(&p.affine, 256, 256))).collect();
    println!("warp {:?}/img", t.elapsed() / 200);
    let t = Instant::now();
    let a: Vec<_> = f.iter().zip(&params).map(|(im, p)| p.apply(im.clone()).unwrap()).collect();
    println!("apply {:?}/img", t.elapsed() / 200);
    let tr = Transform::unit(256, 256);
    let mut out = vec![0f32; tr.numel()];
    let t = Instant::now();
    for im in &a { tr.write_chw_f32(im, &mut out)?; }
    println!("chw {:?}/img", t.elapsed() / 200);
    let t = Instant::now();
    for _ in 0..200 { let _ = tch::Tensor::from_slice(&out); }
    println!("tensor {:?}/img", t.elapsed() / 200);
    let _ = w;
    let tr2 = Transform::unit(256, 256).with_resize(ResizeFilter::Bilinear);
    let t = Instant::now();
    for (i, im) in imgs.iter().enumerate() { prepare_image(im, &tr2, &aug, &mut sample_rng(1, 0, i as u64), &mut out)?; }
    println!("prepare (fused) {:?}/img", t.elapsed() / 200);
    Ok(())
}
