//! The video options `predict`, `evaluate` and `prepare_faces` share (included by
//! `#[path]`; `#[command(flatten)]` in each one's arguments).

/// How frames are taken from a video.
#[derive(Debug, Clone, clap::Args)]
pub struct VideoArgs {
    /// Videos: frames read per second, from the start.
    #[arg(long, default_value_t = 1.0)]
    pub fps: f64,
    /// Videos: at most this many frames of each.
    #[arg(long, default_value_t = 32)]
    pub max_frames: usize,
    /// Videos: spread --max-frames frames evenly over the whole video instead of --fps
    /// frames a second from its start.
    #[arg(long)]
    pub evenly: bool,
}

impl VideoArgs {
    /// The sampling, checked before any work.
    ///
    /// # Errors
    /// A rate or a maximum that is not positive, naming the options.
    pub fn sampling(&self) -> anyhow::Result<deepfake::data::FrameSampling> {
        anyhow::ensure!(
            self.fps.is_finite() && self.fps > 0.0 && self.max_frames > 0,
            "options --fps and --max-frames: both must be positive (got {} and {})",
            self.fps,
            self.max_frames
        );
        Ok(deepfake::data::FrameSampling {
            per_second: self.fps,
            max_frames: self.max_frames,
            evenly: self.evenly,
            // Larger frames are scaled down by ffmpeg (df_data::MAX_FRAME_SIDE).
            ..deepfake::data::FrameSampling::default()
        })
    }
}
