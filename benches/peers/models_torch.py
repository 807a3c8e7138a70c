"""Peers of benches/models.rs: the same cases (ids, batches, sizes, precisions, timing rule)
for the same models built two ways, in PyTorch eager on the same libtorch:

- `--impl keras`: the exact definitions, Keras 3 on the torch backend (the study's own
  stack; its layers are torch modules): `keras.applications` without their top plus the
  pooled binary head (GAP, Dropout(0.5), Dense(1)), and Meso4 / MesoInception4 / VGG16-C as
  `scripts/fixtures/keras_blocks_a.py` builds them. Keras' default image format
  (channels-last inputs). The training step is a plain PyTorch one over the Keras model's
  parameters.
- `--impl port`: the exact definitions written out in plain PyTorch, to tell a definition's
  cost from a framework's: Keras' ResNet v1 (the stride on the 1×1 convolutions), and Meso4
  and MesoInception4 as the MesoNet authors' Keras code builds them (the PyTorch-eager
  peer of the MesoNet family, which no package ships).
- `--impl user`: what a PyTorch user would pick instead: timm's `tf_efficientnet_b*` (the
  ported TensorFlow weights' definition, "same" padding) and `inception_resnet_v2`,
  torchvision's `resnet50/101/152` (v1.5: the stride on the 3×3) and `vgg16` (features,
  then the pooled head), timm's `legacy_xception`. No such package has MesoNet or VGG16-C:
  those ids are skipped.

The models, their study input sizes and Keras constructors come from the registry
(`summary --list --json`, through `DF_MODELS_JSON`: `scripts/registry_json.py`;
`scripts/device/models.sh --prepare` writes it).

Every line also carries the model's GFLOPs per image (forward, batch 1; matrix products
counted by `torch.utils.flop_counter`, 2 FLOPs per multiply-add), so that definitions that
differ can be compared per FLOP.

eval: `torch.no_grad()`, `torch.autocast(device, dtype)` for bf16/f16. train:
`zero_grad(set_to_none=True)`, forward under autocast, BCE on the logit in f32, backward,
`torch.optim.Adam(lr=1e-3)` (its default implementation for the device); f16 through
`torch.amp.GradScaler`. Timing as the Rust bench: `--warm-up` steps, then steps until
`--min-time` seconds and `--min-steps` steps, CUDA synchronised.

Usage: python benches/peers/models_torch.py --impl keras|user|port [--device cpu|cuda]
       [--filter S,S] [--modes eval1,eval,train] [--precision f32,bf16] [--size cpu|study|N] [--batch N] [--warm-up N]
       [--min-time S] [--min-steps N] [--layout contiguous|channels_last]
       [--cudnn-benchmark] [--threads N] [--out FILE] [--compile]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import registry_json  # noqa: E402

# Registry rows (`summary --list --json`, through `DF_MODELS_JSON`: scripts/registry_json.py),
# in registry order; the models' names, default (study) input sizes and Keras constructors.
REGISTRY = registry_json.load()
MODELS = [(r["name"], r["input_size"][0]) for r in REGISTRY]
KERAS_APPLICATION = {r["name"]: r["keras_application"] for r in REGISTRY}

DTYPES = {"f32": None, "bf16": torch.bfloat16, "f16": torch.float16}


def keras_model(name, size):
    import keras
    from keras import applications as apps
    from keras import layers

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "fixtures"))
    import keras_blocks_a as kb

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    if name == "meso4":
        return kb.meso4(size), "sigmoid"
    if name == "meso_inception4":
        return kb.meso_inception4(size), "sigmoid"
    if name == "vgg16_c":
        backbone = kb.vgg16_c(size, head=False)
    else:
        if not KERAS_APPLICATION.get(name):
            raise ValueError(f"{name}: no keras.applications constructor in the registry")
        ctor = getattr(apps, KERAS_APPLICATION[name])
        backbone = ctor(include_top=False, weights=None, input_shape=(size, size, 3))
    x = layers.GlobalAveragePooling2D()(backbone.output)
    x = layers.Dropout(0.5)(x)
    return keras.Model(backbone.input, layers.Dense(1)(x)), "logit"


class Pooled(nn.Module):
    """A torchvision backbone's features, then GAP, Dropout(0.5), Linear(1)."""

    def __init__(self, features, channels):
        super().__init__()
        self.features = features
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(channels, 1))

    def forward(self, x):
        return self.head(self.features(x))


def user_model(name):
    import torchvision

    if name.startswith("efficientnet_b"):
        import timm

        return timm.create_model("tf_" + name, num_classes=1, drop_rate=0.5), "timm tf_" + name
    if name == "inception_resnet_v2":
        import timm

        return timm.create_model(name, num_classes=1, drop_rate=0.5), "timm " + name
    if name.startswith("resnet"):
        m = getattr(torchvision.models, name)()
        m.fc = nn.Sequential(nn.Dropout(0.5), nn.Linear(m.fc.in_features, 1))
        return m, "torchvision " + name
    if name == "vgg16":
        return Pooled(torchvision.models.vgg16().features, 512), "torchvision vgg16 (features)"
    if name == "xception":
        import timm

        # timm's port of Keras' Xception (`legacy_xception`; `xception` before timm 0.9).
        timm_name = "legacy_xception" if "legacy_xception" in timm.list_models() else "xception"
        return timm.create_model(timm_name, num_classes=1, drop_rate=0.5), "timm " + timm_name
    return None, None


class BottleneckV1(nn.Module):
    """Keras' ResNet v1 bottleneck (`keras.applications.resnet.block1`): the stride on the
    first 1×1 convolution and on the projection shortcut, BN eps 1.001e-5, ReLU after the
    addition."""

    def __init__(self, cin, filters, stride, project):
        super().__init__()
        bn = lambda c: nn.BatchNorm2d(c, eps=1.001e-5)  # noqa: E731
        self.shortcut = nn.Sequential(nn.Conv2d(cin, 4 * filters, 1, stride), bn(4 * filters)) if project else None
        self.body = nn.Sequential(
            nn.Conv2d(cin, filters, 1, stride), bn(filters), nn.ReLU(),
            nn.Conv2d(filters, filters, 3, 1, 1), bn(filters), nn.ReLU(),
            nn.Conv2d(filters, 4 * filters, 1), bn(4 * filters),
        )

    def forward(self, x):
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.body(x) + s)


class ResNetV1(nn.Module):
    """Keras' ResNet50/101/152 (v1) written out in PyTorch, with the pooled binary head: the
    exact definition Rust runs, in plain eager PyTorch (`--impl port`)."""

    def __init__(self, blocks):
        super().__init__()
        self.stem = nn.Sequential(nn.ZeroPad2d(3), nn.Conv2d(3, 64, 7, 2), nn.BatchNorm2d(64, eps=1.001e-5),
                                  nn.ReLU(), nn.ZeroPad2d(1), nn.MaxPool2d(3, 2))
        layers, cin = [], 64
        for i, (filters, n) in enumerate(zip((64, 128, 256, 512), blocks)):
            for j in range(n):
                stride = 2 if (j == 0 and i > 0) else 1
                layers.append(BottleneckV1(cin, filters, stride, j == 0))
                cin = 4 * filters
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(cin, 1))

    def forward(self, x):
        return self.head(self.layers(self.stem(x)))


class SameConv(nn.Module):
    """Keras `Conv2D(padding="same", activation="relu")` at stride 1 (odd kernels: symmetric
    padding)."""

    def __init__(self, cin, cout, k, d=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, 1, d * (k - 1) // 2, d)

    def forward(self, x):
        return F.relu(self.conv(x))


class Inception(nn.Module):
    """MesoNet's InceptionLayer(a, b, c, d): 1×1; 1×1 → 3×3; 1×1 → 3×3 dilated 2; 1×1 → 3×3
    dilated 3; concatenated."""

    def __init__(self, cin, a, b, c, d):
        super().__init__()
        self.b1 = SameConv(cin, a, 1)
        self.b2 = nn.Sequential(SameConv(cin, b, 1), SameConv(b, b, 3))
        self.b3 = nn.Sequential(SameConv(cin, c, 1), SameConv(c, c, 3, 2))
        self.b4 = nn.Sequential(SameConv(cin, d, 1), SameConv(d, d, 3, 3))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class Meso(nn.Module):
    """Meso4 / MesoInception4 as the MesoNet authors' Keras code builds them: four stages of
    (convolution or inception, BN eps 1e-3, max-pooling 2, 2, 2, 4), Flatten, Dropout(0.5),
    Dense(16), LeakyReLU(0.1), Dropout(0.5), Dense(1) (the logit)."""

    def __init__(self, inception, size):
        super().__init__()
        bn = lambda c: nn.BatchNorm2d(c, eps=1e-3)  # noqa: E731
        first = [Inception(3, 1, 4, 4, 2), bn(11), nn.MaxPool2d(2), Inception(11, 2, 4, 4, 2), bn(12)] if inception \
            else [SameConv(3, 8, 3), bn(8), nn.MaxPool2d(2), SameConv(8, 8, 5), bn(8)]
        c = 12 if inception else 8
        self.features = nn.Sequential(*first, nn.MaxPool2d(2), SameConv(c, 16, 5), bn(16), nn.MaxPool2d(2),
                                      SameConv(16, 16, 5), bn(16), nn.MaxPool2d(4))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16 * (size // 32) ** 2, 16),
                                  nn.LeakyReLU(0.1), nn.Dropout(0.5), nn.Linear(16, 1))

    def forward(self, x):
        return self.head(self.features(x))


def port_model(name, size):
    if name in ("meso4", "meso_inception4"):
        return Meso(name == "meso_inception4", size), "port " + name
    blocks = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}.get(name)
    return (ResNetV1(blocks), "port " + name) if blocks else (None, None)


def gflops(model, x, call):
    from torch.utils.flop_counter import FlopCounterMode

    # In eval mode: batch norm in training mode refuses one value per channel (batch 1 at a
    # size that pools to 1×1); the count is the same.
    training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        call(model, x[:1])
    if isinstance(model, nn.Module):
        model.train(training)
    return counter.get_total_flops() / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--impl", choices=["keras", "user", "port"], required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--filter", default="", help="ids containing one of these, comma-separated")
    p.add_argument("--modes", default="eval1,eval,train")
    p.add_argument("--precision", default="f32,bf16")
    p.add_argument("--size")
    p.add_argument("--batch", type=int)
    p.add_argument("--warm-up", type=int, default=2)
    p.add_argument("--min-time", type=float, default=2.0)
    p.add_argument("--min-steps", type=int, default=3)
    p.add_argument("--layout", default="contiguous", choices=["contiguous", "channels_last"])
    p.add_argument("--cudnn-benchmark", action="store_true")
    p.add_argument("--threads", type=int)
    p.add_argument("--out")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (information)")
    a = p.parse_args()

    threads = a.threads or int(os.environ.get("DF_BENCH_THREADS", 0)) or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cuda = a.device == "cuda"
    dev = torch.device("cuda:0" if cuda else "cpu")
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    precisions = a.precision.split(",")
    size_rule = a.size or ("study" if cuda else "cpu")
    out = open(a.out, "a") if a.out else None
    tag = a.impl + ("+compile" if a.compile else "")

    def emit(line):
        text = json.dumps(line)
        print(text, flush=True)
        if out:
            out.write(text + "\n")
            out.flush()

    for name, study_size in MODELS:
        size = {"cpu": 128, "study": study_size}.get(size_rule) or int(size_rule)
        batch = a.batch or (8 if not cuda else (16 if size > 400 else 32))
        cases = []
        for prec in precisions:
            for key, mode, b in [("eval1", "eval", 1), ("eval", "eval", batch), ("train", "train", batch)]:
                cid = f"{'cuda' if cuda else 'cpu'}/{name}/b{b}x{size}/{mode}/{prec}"
                if key in a.modes.split(",") and any(f in cid for f in a.filter.split(",")):
                    cases.append((cid, mode, b, prec))
        if not cases:
            continue
        try:
            if a.impl == "keras":
                model, output = keras_model(name, size)
                what = "keras " + name
                nhwc = True
            else:
                model, what = port_model(name, size) if a.impl == "port" else user_model(name)
                output, nhwc = "logit", False
                if model is None:
                    continue
            model = model.to(dev)
            if a.layout == "channels_last":
                model = model.to(memory_format=torch.channels_last)

            def call(m, x, training=False):
                return m(x, training=training) if a.impl == "keras" else m(x)

            shape = lambda b: (b, size, size, 3) if nhwc else (b, 3, size, size)  # noqa: E731
            flops = gflops(model, torch.rand(shape(1), device=dev) * 255, call)
            fwd = torch.compile(model) if a.compile else model
        except Exception as e:  # a peer that cannot build a model reports it and goes on
            for cid, *_ in cases:
                emit({"id": cid, "impl": tag, "error": f"{type(e).__name__}: {e}"})
            continue
        for cid, mode, b, prec in cases:
            try:
                x = torch.rand(shape(b), device=dev) * 255
                if a.layout == "channels_last" and not nhwc:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = torch.randint(0, 2, (b,), device=dev).float()
                dtype = DTYPES[prec]
                opt = torch.optim.Adam(model.parameters(), lr=1e-3)
                scaler = torch.amp.GradScaler(dev.type, enabled=prec == "f16" and mode == "train")

                def step():
                    with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                        if mode == "eval":
                            if a.impl == "keras":
                                model.eval()
                            else:
                                fwd.eval()
                            with torch.no_grad():
                                call(fwd, x)
                            return
                        fwd.train()
                        opt.zero_grad(set_to_none=True)
                        z = call(fwd, x, training=True).float().view(-1)
                    if output == "logit":
                        loss = F.binary_cross_entropy_with_logits(z, y)
                    else:
                        loss = F.binary_cross_entropy(z.clamp(1e-7, 1 - 1e-7), y)
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()

                sync = torch.cuda.synchronize if cuda else (lambda: None)
                for _ in range(a.warm_up):
                    step()
                sync()
                t0 = time.perf_counter()
                steps = 0
                while steps < a.min_steps or time.perf_counter() - t0 < a.min_time:
                    step()
                    steps += 1
                    if steps >= a.min_steps:
                        sync()
                sync()
                secs = time.perf_counter() - t0
                emit({"id": cid, "impl": tag, "model": what, "layout": a.layout, "threads": threads,
                      "gflops_per_image": flops, "steps": steps, "seconds_per_step": secs / steps,
                      "images_per_second": b * steps / secs, "torch": torch.__version__})
            except Exception as e:
                emit({"id": cid, "impl": tag, "error": f"{type(e).__name__}: {e}"})
        del model, fwd
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
