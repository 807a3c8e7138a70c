#!/usr/bin/env python3
"""FLOPs per image of every registered model, counted on its Keras reference.

Usage (from the repository root; prints a Markdown table on stdout, progress on stderr):

    cargo run --example summary -- --list --json > fixtures/generated/models.json
    KERAS_BACKEND=torch .venv-tools/bin/python scripts/model_flops.py [NAME ...]

For each model of `df_models::registry()` (read from that file, or from `DF_MODELS_JSON`:
`scripts/registry_json.py`) this builds the Keras reference (Keras 3, torch
backend, `weights=None`, the model's default input size and default top) and runs one
forward pass of a single image (batch 1, inference mode) under
`torch.utils.flop_counter.FlopCounterMode`:

- `keras.applications` VGG16, ResNet50/101/152, EfficientNetB0..B7, InceptionResNetV2,
  Xception with the ImageNet top (1000 classes);
- Meso4 and MesoInception-4 rebuilt as the authors' code builds them (the same
  functions as `scripts/fixtures/keras_blocks_a.py`), 256×256, the authors' head;
- `vgg16_c`, the study's VGG16 configuration C with its binary head
  (Flatten → Dense(1024) → Dropout → Dense(2048) → Dense(1)), also as in
  `keras_blocks_a.py`.

What is counted: FlopCounterMode counts the matrix products only — convolutions
(`aten.convolution`, depthwise ones included) and dense layers (`aten.mm`/`addmm`) —
each multiply-add as 2 FLOPs (2·MAC), biases not included. Batch normalisation,
activations, pooling, squeeze-excitation's global pooling and elementwise products,
residual additions and the input preprocessing are not counted (they are a few percent
at most of these models' totals). Papers that give "FLOPs" as multiply-adds (the
EfficientNet paper's Table 2, for instance) report half of these figures.

Columns: "conv" is every convolution (EfficientNet's squeeze-excitation layers and its
`top_conv` are Keras Conv2D layers, so they are here), which is also the model without
its top (`include_top=False` keeps `top_conv`); "dense" is the top's dense layers.
"""

import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
import keras  # noqa: E402
from keras import applications as apps  # noqa: E402

# The MesoNet models and VGG16 configuration C, as the fixtures declare them.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras_blocks_a  # noqa: E402
import registry_json  # noqa: E402


def app(ctor):
    return lambda size: ctor(weights=None, input_shape=(size, size, 3))


# The registered models that Keras does not ship, as keras_blocks_a.py declares them.
DECLARED = {
    "meso4": ("MesoNet `Meso4` (authors' code)", keras_blocks_a.meso4),
    "meso_inception4": ("MesoNet `MesoInception4` (authors' code)",
                        keras_blocks_a.meso_inception4),
    "vgg16_c": ("VGG16 config. C + study head",
                lambda size: keras_blocks_a.vgg16_c(size, head=True)),
}


def models():
    """(registry name, Keras reference, constructor, default input size) of every
    registered model (`registry_json`), in registry order."""
    out = []
    for row in registry_json.load():
        name, size = row["name"], row["input_size"][0]
        if row["keras_application"]:
            ctor = getattr(apps, row["keras_application"])
            out.append((name, f"`{row['keras_application']}`", app(ctor), size))
        elif name in DECLARED:
            out.append((name, *DECLARED[name], size))
        else:
            sys.exit(f"model_flops.py: `{name}` is neither a keras.applications model nor "
                     "declared in keras_blocks_a.py (DECLARED): no Keras reference for it")
    return out


CONV_OPS = {"convolution", "_convolution", "conv2d", "cudnn_convolution"}
DENSE_OPS = {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear"}


def op_name(op):
    """`aten.convolution.default` / OpOverloadPacket -> `convolution`."""
    return str(op).split(".")[1] if str(op).startswith("aten.") else str(op)


def count(build, size):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build(size)
    x = torch.zeros((1, size, size, 3), dtype=torch.float32)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x, training=False)
    conv = dense = other = 0
    for op, n in counter.get_flop_counts()["Global"].items():
        name = op_name(op)
        if name in CONV_OPS:
            conv += n
        elif name in DENSE_OPS:
            dense += n
        else:
            other += n
    total = counter.get_total_flops()
    assert conv + dense + other == total, (conv, dense, other, total)
    return total, conv, dense, other, int(model.count_params())


def giga(n):
    return f"{n / 1e9:,.3f}"


def main(argv):
    wanted = set(argv)
    all_models = models()
    unknown = wanted - {m[0] for m in all_models}
    if unknown:
        sys.exit(f"unknown model(s) {sorted(unknown)}; known: {[m[0] for m in all_models]}")
    rows = []
    start = time.time()
    for name, reference, build, size in all_models:
        if wanted and name not in wanted:
            continue
        t0 = time.time()
        total, conv, dense, other, params = count(build, size)
        print(f"[model_flops] {name}: {total / 1e9:.3f} GFLOPs, {time.time() - t0:.1f}s",
              file=sys.stderr)
        rows.append((name, reference, size, total, conv, dense, other, params))
    print(
        f"FLOPs of one forward pass of one image (batch 1, inference), counted by "
        f"`torch.utils.flop_counter.FlopCounterMode` on the Keras {keras.__version__} model "
        f"(torch {torch.__version__.split('+')[0]} backend, `weights=None`); "
        "convolutions and dense layers only, 1 multiply-add = 2 FLOPs.\n"
    )
    print("| model | Keras reference | input | GFLOPs | conv GFLOPs | dense MFLOPs | Keras params |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for name, reference, size, total, conv, dense, other, params in rows:
        extra = f" (incl. {giga(other)} in other ops)" if other else ""
        print(
            f"| `{name}` | {reference} | {size}×{size} | {giga(total)}{extra} | {giga(conv)} "
            f"| {dense / 1e6:,.2f} | {params:,} |"
        )
    print(f"\n({time.time() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
