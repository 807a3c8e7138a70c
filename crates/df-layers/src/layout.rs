//! Memory formats of 4-D activations; see [`MemoryFormat`].

use std::fmt;
use std::str::FromStr;

use tch::Tensor;

use crate::error::{Error, Result};

/// How a 4-D `[N, C, H, W]` tensor lies in memory: NCHW-contiguous (libtorch's default)
/// or channels-last (NHWC in memory, `torch.channels_last`), the same shape either way.
///
/// Every df-layers block keeps the memory format of its input: libtorch's convolution,
/// batch norm, pooling, padding, concatenation and element-wise operators write their output
/// in the format their input suggests, and no block makes a contiguous copy. So converting
/// a batch once, before the first block, runs a whole network in that format. The values
/// are the same up to float rounding (the convolutions sum in another order).
///
/// On the CPU, channels-last made most of the benchmarked blocks faster, some several times
/// (MesoNet's inception layer, at 3 input channels);
/// `docs/runs/blocks-intel-xeon-b73109e.md` and `docs/runs/blocks-intel-xeon-9ca0dfe.md`
/// have the numbers (`DF_BENCH_LAYOUT=channels_last`). df-models'
/// configurations default to `ChannelsLast` on the CPU; this enum's own `Default` is
/// libtorch's, `Contiguous`.
///
/// ```
/// # mod deepfake { pub mod layers { pub use df_layers::*; } }
/// use deepfake::layers::MemoryFormat;
/// use tch::{Device, Kind, Tensor};
///
/// let images = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
/// let nhwc = MemoryFormat::ChannelsLast.apply(&images)?;
/// assert_eq!(nhwc.size(), images.size()); // same shape, other strides
/// assert!(MemoryFormat::ChannelsLast.is_format_of(&nhwc));
/// assert!(!MemoryFormat::Contiguous.is_format_of(&nhwc));
/// assert_eq!(nhwc, images); // same values
/// # Ok::<(), deepfake::layers::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryFormat {
    /// Row-major NCHW (`torch.contiguous_format`), libtorch's default.
    #[default]
    Contiguous,
    /// NHWC in memory (`torch.channels_last`): strides `[H*W*C, 1, W*C, C]`.
    ChannelsLast,
}

impl MemoryFormat {
    /// The strides a `[N, C, H, W]` tensor of this format has.
    fn strides(self, size: &[i64]) -> [i64; 4] {
        let [_, c, h, w] = [size[0], size[1], size[2], size[3]];
        match self {
            MemoryFormat::Contiguous => [c * h * w, h * w, w, 1],
            MemoryFormat::ChannelsLast => [h * w * c, 1, w * c, c],
        }
    }

    /// Whether `xs` is a 4-D tensor laid out in this format. Dimensions of size 1 may have
    /// any stride (as in libtorch), so a tensor can be in both formats, e.g. with one
    /// channel.
    pub fn is_format_of(self, xs: &Tensor) -> bool {
        let size = xs.size();
        if size.len() != 4 {
            return false;
        }
        let expected = self.strides(&size);
        size.iter()
            .zip(xs.stride())
            .zip(expected)
            .all(|((&n, stride), want)| n == 1 || stride == want)
    }

    /// `xs` in this format: `xs` itself (a shallow clone) when it already is, else a copy.
    /// Autograd records the copy, so gradients flow back to `xs` in its own format.
    ///
    /// # Errors
    /// [`Error::Shape`] when `xs` is not 4-D (`[N, C, H, W]`).
    pub fn apply(self, xs: &Tensor) -> Result<Tensor> {
        let size = xs.size();
        if size.len() != 4 {
            return Err(Error::Shape {
                tensor: format!("input to MemoryFormat::{self:?}.apply"),
                got: size,
                expected: "4 dimensions [N, C, H, W]".into(),
            });
        }
        if self.is_format_of(xs) {
            return Ok(xs.shallow_clone());
        }
        Ok(match self {
            MemoryFormat::Contiguous => xs.contiguous(),
            // NHWC-contiguous, viewed back as NCHW: the strides of `torch.channels_last`.
            MemoryFormat::ChannelsLast => {
                xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
            }
        })
    }
}

impl fmt::Display for MemoryFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemoryFormat::Contiguous => "contiguous",
            MemoryFormat::ChannelsLast => "channels_last",
        })
    }
}

impl FromStr for MemoryFormat {
    type Err = Error;

    /// `contiguous` (or `nchw`) and `channels_last` (or `nhwc`), as PyTorch names them.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "contiguous" | "nchw" => Ok(MemoryFormat::Contiguous),
            "channels_last" | "nhwc" => Ok(MemoryFormat::ChannelsLast),
            other => Err(crate::error::invalid(
                "MemoryFormat",
                "memory_format",
                format!("unknown memory format {other:?}: expected `contiguous` (`nchw`) or `channels_last` (`nhwc`)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn strides_match_libtorch_channels_last() {
        let xs = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        let nhwc = MemoryFormat::ChannelsLast.apply(&xs).expect("converts");
        // What `torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)`
        // reports as its stride().
        assert_eq!(nhwc.stride(), [60, 1, 15, 3]);
        assert_eq!(xs.stride(), [60, 20, 5, 1]);
        assert!(MemoryFormat::Contiguous.is_format_of(&xs));
        assert!(!MemoryFormat::ChannelsLast.is_format_of(&xs));
        assert_eq!(nhwc, xs);
        let back = MemoryFormat::Contiguous.apply(&nhwc).expect("converts");
        assert_eq!(back.stride(), [60, 20, 5, 1]);
        assert_eq!(back, xs);
        // A tensor already in the format is not copied.
        let again = MemoryFormat::ChannelsLast.apply(&nhwc).expect("converts");
        assert_eq!(again.data_ptr(), nhwc.data_ptr());
        // One channel: both formats at once.
        let one = Tensor::zeros([2, 1, 4, 5], (Kind::Float, Device::Cpu));
        assert!(MemoryFormat::ChannelsLast.is_format_of(&one));
        assert!(MemoryFormat::Contiguous.is_format_of(&one));
    }

    #[test]
    fn rejects_tensors_that_are_not_4d_and_unknown_names() {
        let xs = Tensor::zeros([2, 3, 4], (Kind::Float, Device::Cpu));
        let err = MemoryFormat::ChannelsLast
            .apply(&xs)
            .expect_err("an error")
            .to_string();
        assert!(
            err.contains("[2, 3, 4]") && err.contains("4 dimensions"),
            "{err}"
        );
        assert!(!MemoryFormat::ChannelsLast.is_format_of(&xs));
        assert_eq!(
            "nhwc".parse::<MemoryFormat>().expect("converts"),
            MemoryFormat::ChannelsLast
        );
        assert_eq!(
            "contiguous".parse::<MemoryFormat>().expect("converts"),
            MemoryFormat::Contiguous
        );
        let err = "NHWC!"
            .parse::<MemoryFormat>()
            .expect_err("an error")
            .to_string();
        assert!(
            err.contains("NHWC!") && err.contains("channels_last"),
            "{err}"
        );
        for f in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
            assert_eq!(f.to_string().parse::<MemoryFormat>().expect("converts"), f);
        }
    }
}
