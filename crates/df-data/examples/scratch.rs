//! scratch
use df_data::*;
fn main() -> Result<()> {
    let ds = ImageFolder::open("/work/shared/data/lfw-faceswap/train")?;
    let paths: Vec<_> = ds.samples().iter().take(300).map(|s| s.path.clone()).collect();
    let tr2 = Transform::unit(256, 256).with_resize(ResizeFilter::Bilinear);
    let aug = Augment::study();
    let mut out = vec![0f32; tr2.numel()];
    for rep in 0..3 {
        for (i, p) in paths.iter().enumerate() {
            let im = load_rgb(p).unwrap();
            prepare_image(&im, &tr2, &aug, &mut sample_rng(1, rep, i as u64), &mut out)?;
        }
    }
    Ok(())
}
