#!/usr/bin/env python3
"""The LFW face-swap training check in Keras 3 (torch backend): the peer of
`tests/shared_data/lfw.rs`, same data, same recipe.

Usage:
    KERAS_BACKEND=torch .venv-tools/bin/python benches/peers/keras_train_lfw.py \
        [--data ../shared/data/lfw-faceswap] [--epochs 6] [--batch-size 16] [--size 128] \
        [--center-crop 128] [--dropout 0.2] [--lr 1e-3] [--seed 1] [--threads N] \
        [--model meso_inception4|efficientnet_b0]

Recipe (the same as the Rust check): MesoInception4 as in the MesoNet authors'
`classifiers.py` (as `scripts/fixtures/keras_blocks_a.py` declares it; head dropout `dropout` instead
of the authors' 0.5), input `size`x`size` RGB: the central `center_crop` pixels of
the 250x250 JPEGs (Pillow's `crop`), resized with Pillow's nearest filter (Keras `flow_from_directory`'s
default), pixels / 255, labels fake = 1, real = 0; Adam (lr 1e-3, epsilon 1e-7), binary
cross-entropy, `epochs` epochs of shuffled batches of `batch_size`, no augmentation;
evaluation of the final model on `val` at threshold 0.5.

`--model efficientnet_b0`: Keras' `EfficientNetB0(include_top=False, weights=None)` (its
own rescaling and normalisation inside, so it is fed pixels in [0, 255]) under the
study's head: Flatten, Dense 256 ReLU, Dropout (`dropout`), Dense 128 ReLU, Dense 1
sigmoid; the peer of `train --model efficientnet_b0` (the study head is its default).

Prints one JSON object: accuracy, AUC (scikit-learn), log loss, seconds per epoch (each
epoch's wall time, training and validation, from a callback), the per-epoch history.
Images are decoded once before training (the time is reported apart as
`load_seconds`), as Keras users feeding NumPy arrays do.
"""
import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def load_folder(root, size, crop):
    """Images of root/{real,fake} as float32 NHWC in [0, 1], labels fake = 1: the central
    `crop`x`crop` pixels (when `crop`), resized to `size`x`size`."""
    xs, ys = [], []
    for label, cls in [(0, "real"), (1, "fake")]:
        folder = os.path.join(root, cls)
        for name in sorted(os.listdir(folder)):
            with Image.open(os.path.join(folder, name)) as im:
                im = im.convert("RGB")
                if crop:
                    w, h = im.size
                    left, top = (w - crop) // 2, (h - crop) // 2
                    im = im.crop((left, top, left + crop, top + crop))
                if im.size != (size, size):
                    im = im.resize((size, size), Image.NEAREST)
                xs.append(np.asarray(im, dtype=np.float32) / 255.0)
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.float32)


def build_efficientnet_b0_study(size, dropout):
    """Keras' EfficientNetB0 backbone (weights=None) with the study's head."""
    import keras

    backbone = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(size, size, 3))
    x = keras.layers.Flatten()(backbone.output)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(backbone.input, out)


def build(size, dropout):
    """MesoInception4 as scripts/fixtures/keras_blocks_a.py declares it (imported here, after
    the thread settings, since it imports Keras)."""
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../scripts/fixtures"))
    import keras_blocks_a

    return keras_blocks_a.meso_inception4(size, dropout)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=os.path.join(here, "../../../shared/data/lfw-faceswap"))
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--center-crop", type=int, default=128, help="central square in pixels (0: none)")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--model", choices=["meso_inception4", "efficientnet_b0"], default="meso_inception4")
    args = p.parse_args()

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    import keras
    from sklearn.metrics import log_loss, roc_auc_score

    keras.utils.set_random_seed(args.seed)
    t0 = time.perf_counter()
    x_train, y_train = load_folder(os.path.join(args.data, "train"), args.size, args.center_crop)
    x_val, y_val = load_folder(os.path.join(args.data, "val"), args.size, args.center_crop)
    load_seconds = time.perf_counter() - t0

    if args.model == "efficientnet_b0":
        # The Keras model rescales and normalises itself: it takes pixels in [0, 255].
        x_train, x_val = x_train * 255.0, x_val * 255.0
        model = build_efficientnet_b0_study(args.size, args.dropout)
    else:
        model = build(args.size, args.dropout)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=args.lr, epsilon=1e-7),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = Timer()
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        shuffle=True,
        callbacks=[timer],
        verbose=0,
    )
    scores = model.predict(x_val, batch_size=args.batch_size, verbose=0).reshape(-1)
    result = {
        "framework": f"keras {keras.__version__} (torch {torch.__version__} backend)",
        "model": args.model,
        "size": args.size,
        "center_crop": args.center_crop,
        "resize": "nearest",
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "dropout": args.dropout,
        "lr": args.lr,
        "threads": torch.get_num_threads(),
        "n_train": int(len(y_train)),
        "n_val": int(len(y_val)),
        "accuracy": float(np.mean((scores > 0.5) == (y_val > 0.5))),
        "auc": float(roc_auc_score(y_val, scores)),
        "log_loss": float(log_loss(y_val, np.clip(scores, 1e-7, 1 - 1e-7))),
        "seconds_per_epoch": float(np.mean(timer.seconds)),
        "epoch_seconds": [float(s) for s in timer.seconds],
        "load_seconds": load_seconds,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
