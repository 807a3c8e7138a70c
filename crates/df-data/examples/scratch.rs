//! scratch
fn main() -> df_data::Result<()> {
    let dir = std::path::Path::new("/tmp/synth");
    let t = std::time::Instant::now();
    let ds = df_data::synthetic::generate_with(dir, &df_data::synthetic::SyntheticConfig { format: df_data::synthetic::SyntheticFormat::Png, ..df_data::synthetic::SyntheticConfig::new(8, 256, 1) })?;
    println!("{} in {:?}", ds.len(), t.elapsed());
    Ok(())
}
