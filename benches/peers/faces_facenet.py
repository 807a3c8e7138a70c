"""Peer of benches/faces.rs: facenet-pytorch 2.6.0's MTCNN (keep_all=True, its defaults)
on the same image files, same threads, images decoded before timing (as PIL images, what
its README passes). One pass to warm up, then whole passes until --min-time seconds.

Usage: python benches/peers/faces_facenet.py [--name NAME] [--threads N] [--min-time S]
                                             [--limit N] DIR...
"""

import argparse
import json
import os
import time

import torch
from PIL import Image
from facenet_pytorch import MTCNN

EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dirs", nargs="+")
    p.add_argument("--name", default="images")
    p.add_argument("--threads", type=int)
    p.add_argument("--min-time", type=float, default=3.0)
    p.add_argument("--limit", type=int)
    a = p.parse_args()
    threads = a.threads or int(os.environ.get("DF_BENCH_THREADS", 0)) or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    paths = sorted(os.path.join(d, n) for d in a.dirs for n in os.listdir(d) if n.lower().endswith(EXTS))
    paths = paths[: a.limit] if a.limit else paths
    images = [Image.open(q).convert("RGB") for q in paths]
    mtcnn = MTCNN(keep_all=True, device="cpu")
    for im in images:
        mtcnn.detect(im)
    n = faces = 0
    t0 = time.perf_counter()
    while n == 0 or time.perf_counter() - t0 < a.min_time:
        for im in images:
            boxes, _ = mtcnn.detect(im)
            faces += 0 if boxes is None else len(boxes)
            n += 1
    secs = time.perf_counter() - t0
    print(json.dumps({"name": a.name, "impl": "facenet-pytorch", "threads": threads, "images": len(images),
                      "first_size": list(images[0].size), "images_per_second": n / secs,
                      "faces_per_second": faces / secs}))


if __name__ == "__main__":
    main()
