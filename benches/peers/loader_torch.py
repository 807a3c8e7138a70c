"""PyTorch peer of benches/loader.rs: the same loading work with torchvision.

torchvision `ImageFolder` (Pillow decode, convert("RGB")) with the transforms
    Resize((256, 256), BILINEAR)          # Pillow's antialiased bilinear
    RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5, BILINEAR)
    RandomHorizontalFlip()
    ColorJitter(brightness=0.2)           # factor in [0.8, 1.2]
    ToTensor()                            # pixels / 255, CHW float32
and a `DataLoader` with the same number of workers and batch size, shuffled, persistent
workers. One warm-up epoch, then `--epochs` timed epochs. Prints one JSON line:
{"id": "cpu/loader/w2_b32", "seconds_per_iter": <seconds per epoch>, "images_per_second": ...}

Usage: python benches/peers/loader_torch.py [--data DIR] [--workers 2] [--batch-size 32]
                                            [--epochs 3] [--clock wall|cpu]

--clock cpu (default: $DF_BENCH_CLOCK, else wall) times the CPU time of this process and
its worker processes instead of wall time: images per CPU-second, as benches/loader.rs
does with DF_BENCH_CLOCK=cpu. Workers are then not persistent, so that each epoch's
workers are reaped and their CPU time counted.
"""

import argparse
import json
import os
import resource
import time

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms as T
from torchvision.datasets import ImageFolder


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_data = os.path.normpath(os.path.join(here, "../../../shared/data/lfw-faceswap/train"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=default_data)
    ap.add_argument("--workers", type=int, default=int(os.environ.get("DF_BENCH_LOADER_WORKERS", 2)))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--clock", choices=["wall", "cpu"], default=os.environ.get("DF_BENCH_CLOCK", "wall"))
    args = ap.parse_args()
    cpu = args.clock == "cpu"

    def now():
        if not cpu:
            return time.perf_counter()
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    bilinear = T.InterpolationMode.BILINEAR
    tf = T.Compose([
        T.Resize((256, 256), interpolation=bilinear),
        T.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5, interpolation=bilinear),
        T.RandomHorizontalFlip(),
        T.ColorJitter(brightness=0.2),
        T.ToTensor(),
    ])
    ds = ImageFolder(args.data, transform=tf)
    torch.manual_seed(1)
    dl = DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                    persistent_workers=args.workers > 0 and not cpu, drop_last=False)

    for _ in dl:  # warm-up: starts the workers
        pass
    n = 0
    start = now()
    for _ in range(args.epochs):
        for x, _y in dl:
            assert x.shape[1:] == (3, 256, 256) and x.dtype == torch.float32
            n += x.shape[0]
    secs = now() - start
    assert n == args.epochs * len(ds)
    print(json.dumps({
        "id": f"cpu/loader/w{args.workers}_b{args.batch_size}",
        "seconds_per_iter": secs / args.epochs,
        "images_per_second": n / secs,
        "images_per_epoch": len(ds),
        "clock": args.clock,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
