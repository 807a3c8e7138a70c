#!/usr/bin/env python3
"""The reference of df-face's MTCNN: facenet-pytorch 2.6.0's `MTCNN(keep_all=True).detect`
(its defaults: min face 20, thresholds 0.6/0.7/0.7, factor 0.709) on real photos of
../shared/data and composites made from them, run on the project's torch 2.11.

    python scripts/shared_fixtures/mtcnn_reference.py SHARED_DATA OUT_DIR

Writes OUT_DIR/images/*.png (the exact pixels both sides read: PNG, decoded alike) and
OUT_DIR/reference.json: per image, the boxes [x1, y1, x2, y2], probabilities and five
landmarks facenet-pytorch finds, largest first. The images: 12 real and 12 fake photos of
lfw-faceswap's validation split (every 25th file), composites with several faces (a 2×2
grid of four photos; three photos side by side at 0.6, 1 and 1.4 times their size) and
images without a face (mid-grey; smooth random colour; a 60×60 corner of a photo).
Made by `make test-shared` (it needs ../shared, so `make fixtures` does not run it).
"""

import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from facenet_pytorch import MTCNN


def photos(root, split, cls, every=25, count=12):
    d = os.path.join(root, "lfw-faceswap", split, cls)
    names = sorted(os.listdir(d), key=lambda n: (len(n), n))
    return [os.path.join(d, n) for n in names[::every][:count]]


def main(shared, out):
    torch.set_num_threads(2)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    images = {}
    for cls in ("real", "fake"):
        for p in photos(shared, "val", cls):
            images[os.path.splitext(os.path.basename(p))[0]] = Image.open(p).convert("RGB")
    some = [Image.open(p).convert("RGB") for p in photos(shared, "train", "real", every=40, count=7)]
    w, h = some[0].size
    grid = Image.new("RGB", (2 * w, 2 * h))
    for i, im in enumerate(some[:4]):
        grid.paste(im.resize((w, h)), ((i % 2) * w, (i // 2) * h))
    images["grid_of_four"] = grid
    scaled = [im.resize((int(im.size[0] * s), int(im.size[1] * s)), Image.BILINEAR)
              for im, s in zip(some[4:7], (0.6, 1.0, 1.4))]
    strip = Image.new("RGB", (sum(im.size[0] for im in scaled), max(im.size[1] for im in scaled)), (90, 90, 90))
    x = 0
    for im in scaled:
        strip.paste(im, (x, 0))
        x += im.size[0]
    images["three_sizes"] = strip
    images["grey"] = Image.new("RGB", (200, 160), (128, 128, 128))
    rng = np.random.default_rng(0)
    smooth = rng.uniform(0, 255, (8, 8, 3)).astype(np.uint8)
    images["smooth_noise"] = Image.fromarray(smooth).resize((240, 240), Image.BICUBIC)
    images["corner"] = some[0].crop((0, 0, 60, 60))

    mtcnn = MTCNN(keep_all=True, device="cpu")
    reference = {}
    for name, im in images.items():
        path = os.path.join(out, "images", name + ".png")
        im.save(path)
        again = Image.open(path).convert("RGB")  # what the Rust side decodes
        boxes, probs, points = mtcnn.detect(again, landmarks=True)
        faces = []
        if boxes is not None:
            for b, p, lm in zip(boxes, probs, points):
                faces.append({"box": [float(v) for v in b], "probability": float(p),
                              "landmarks": [[float(v) for v in pt] for pt in lm]})
        reference[name + ".png"] = faces
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"facenet_pytorch": "2.6.0", "torch": torch.__version__, "images": reference}, f, indent=1)
    print(f"{len(reference)} images, {sum(len(v) for v in reference.values())} faces", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
