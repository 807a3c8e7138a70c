"""Seeds for the fuzz targets that read Keras weights and images (issue 12, point 6).

Usage: KERAS_BACKEND=torch make_seeds.py FUZZ_DIR

Writes small, valid inputs (a few KB each) that the seeds of `fuzz/seeds/<target>/` are:
- keras_hdf5: a tiny Conv2D + BatchNormalization + Dense model saved by Keras 3 as a
  `.weights.h5` and as a legacy full-model `.h5` (layer_names under `model_weights`), and
  h5py files in the Keras 2 weights layout with float16/float64 and big-endian data.
- image_decode: 9x7 images in every decoded format and mode: JPEG (RGB, grayscale,
  CMYK, progressive), PNG (RGB, RGBA, palette, 16-bit grayscale, LA), BMP, WebP (lossy,
  lossless with alpha).
The shared weight files and photos are not copied: the fuzz runs read them in place as an
extra seed directory (docs/reliability.md).
"""

import io
import os
import sys

import h5py
import numpy as np


def keras_seeds(out):
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(2, 3, name="conv2d"),
            keras.layers.BatchNormalization(name="batch_normalization"),
            keras.layers.Flatten(),
            keras.layers.Dense(1, activation="sigmoid", name="dense"),
        ]
    )
    model.save_weights(os.path.join(out, "tiny.weights.h5"))
    model.save(os.path.join(out, "tiny_legacy.h5"))
    for dtype, name in ((np.float16, "f16"), (">f4", "be32"), (np.float64, "f64")):
        with h5py.File(os.path.join(out, f"dense_{name}.h5"), "w") as f:
            f.attrs["layer_names"] = np.array([b"dense"])
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = b"2.15.0"
            g = f.create_group("dense")
            g.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
            inner = g.create_group("dense")
            inner.create_dataset("kernel:0", data=np.arange(6).reshape(3, 2).astype(dtype))
            inner.create_dataset("bias:0", data=np.zeros(2).astype(dtype))


def image_seeds(out):
    from PIL import Image

    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 256, (7, 9, 3), dtype=np.uint8), "RGB")
    seeds = {
        "rgb.jpg": (rgb, "JPEG", {"quality": 80}),
        "progressive.jpg": (rgb, "JPEG", {"progressive": True}),
        "gray.jpg": (rgb.convert("L"), "JPEG", {}),
        "cmyk.jpg": (rgb.convert("CMYK"), "JPEG", {}),
        "rgb.png": (rgb, "PNG", {}),
        "rgba.png": (rgb.convert("RGBA"), "PNG", {}),
        "palette.png": (rgb.convert("P"), "PNG", {}),
        "la.png": (rgb.convert("LA"), "PNG", {}),
        "gray16.png": (
            Image.fromarray(rng.integers(0, 65536, (7, 9), dtype=np.uint16)),
            "PNG",
            {},
        ),
        "rgb.bmp": (rgb, "BMP", {}),
        "lossy.webp": (rgb, "WEBP", {"quality": 50}),
        "lossless.webp": (rgb.convert("RGBA"), "WEBP", {"lossless": True}),
    }
    for name, (img, fmt, kw) in seeds.items():
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        with open(os.path.join(out, name), "wb") as f:
            f.write(buf.getvalue())


def main(fuzz):
    for target, make in (("keras_hdf5", keras_seeds), ("image_decode", image_seeds)):
        out = os.path.join(fuzz, "seeds", target)
        os.makedirs(out, exist_ok=True)
        make(out)
        sizes = {n: os.path.getsize(os.path.join(out, n)) for n in sorted(os.listdir(out))}
        print(f"[make_seeds] {target}: {sizes}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
