#!/usr/bin/env python3
"""The plain PyTorch eager training loop on the LFW face-swap recipe: the peer of one
`train` epoch (benches/epoch.sh runs both, one after the other, same machine).

Usage:
    .venv-tools/bin/python benches/peers/torch_train_lfw.py [--data ../shared/data/lfw-faceswap]
        [--epochs 1] [--batch-size 16] [--size 128] [--center-crop 128] [--workers 2]
        [--threads N] [--layout contiguous|channels_last] [--precision f32|bf16]
        [--seed 1]

Recipe (what `train --model meso_inception4 --center-crop 0.512 --input-size 128
--batch-size 16 --dropout 0.2` does): MesoInception4 as the MesoNet authors'
`classifiers.py` declares it (the blocks of benches/peers/blocks_torch.py, Keras "same"
padding, batch-norm momentum 0.01 / eps 1e-3), head Flatten, Dropout 0.2, Dense 16,
LeakyReLU 0.1, Dropout 0.2, Dense 1; torchvision `ImageFolder` + `DataLoader`
(`--workers` processes, shuffled, the central `center_crop` pixels of the 250x250 JPEGs,
nearest resize to `size`, `ToTensor`); Adam (lr 1e-3, eps 1e-7); BCE with logits.
`--layout channels_last` converts the model and each batch once; `--precision bf16` runs
the forward pass and the loss under `torch.autocast(device_type="cpu",
dtype=torch.bfloat16)`, as PyTorch's AMP recipe says.

Prints one JSON object with, per epoch: the seconds of the training pass and of the
validation pass, the time per phase of the training pass (waiting for data, forward and
loss, backward, optimizer step with the loss read), validation loss and accuracy.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blocks_torch import ConvBnAct, MesoInception, same_pad  # noqa: E402


class MesoInception4(nn.Module):
    def __init__(self, size, dropout):
        super().__init__()
        self.i1 = MesoInception(3, 1, 4, 4, 2)
        self.bn1 = nn.BatchNorm2d(11, eps=1e-3, momentum=0.01)
        self.i2 = MesoInception(11, 2, 4, 4, 2)
        self.bn2 = nn.BatchNorm2d(12, eps=1e-3, momentum=0.01)
        self.c3 = ConvBnAct(12, 16, 5, bn=False, bias=True)
        self.bn3 = nn.BatchNorm2d(16, eps=1e-3, momentum=0.01)
        self.c4 = ConvBnAct(16, 16, 5, bn=False, bias=True)
        self.bn4 = nn.BatchNorm2d(16, eps=1e-3, momentum=0.01)
        side = size // 2 // 2 // 2 // 4
        self.drop = nn.Dropout(dropout)
        self.fc1 = nn.Linear(16 * side * side, 16)
        self.fc2 = nn.Linear(16, 1)

    @staticmethod
    def pool(x, k):
        x, pad = same_pad(x, (k, k), k)
        return F.max_pool2d(x, k, k, pad)

    def forward(self, x):
        x = self.pool(self.bn1(self.i1(x)), 2)
        x = self.pool(self.bn2(self.i2(x)), 2)
        x = self.pool(self.bn3(self.c3(x)), 2)
        x = self.pool(self.bn4(self.c4(x)), 4)
        x = torch.flatten(x.permute(0, 2, 3, 1), 1)  # Keras' Flatten order (NHWC)
        x = F.leaky_relu(self.fc1(self.drop(x)), 0.1)
        return self.fc2(self.drop(x))


def loaders(root, size, crop, batch, workers, seed):
    import torchvision
    from torchvision import transforms as T

    steps = []
    if crop:
        steps.append(T.CenterCrop(crop))
    steps += [T.Resize((size, size), interpolation=T.InterpolationMode.NEAREST), T.ToTensor()]
    tf = T.Compose(steps)
    train = torchvision.datasets.ImageFolder(os.path.join(root, "train"), tf)
    val = torchvision.datasets.ImageFolder(os.path.join(root, "val"), tf)
    # ImageFolder orders classes alphabetically: fake = 0, real = 1; the detector scores
    # "fake", so its label is 1 - class.
    g = torch.Generator().manual_seed(seed)
    kw = dict(batch_size=batch, num_workers=workers, persistent_workers=workers > 0)
    return (
        torch.utils.data.DataLoader(train, shuffle=True, generator=g, **kw),
        torch.utils.data.DataLoader(val, shuffle=False, **kw),
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=os.path.join(here, "../../../shared/data/lfw-faceswap"))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--center-crop", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--layout", choices=["contiguous", "channels_last"], default="channels_last")
    p.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    fmt = torch.channels_last if a.layout == "channels_last" else torch.contiguous_format
    model = MesoInception4(a.size, a.dropout).to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    train, val = loaders(a.data, a.size, a.center_crop, a.batch_size, a.workers, a.seed)
    amp = a.precision == "bf16"
    epochs = []
    for _ in range(a.epochs):
        phases = {"data": 0.0, "forward": 0.0, "backward": 0.0, "step": 0.0}
        model.train()
        t0 = time.perf_counter()
        mark = t0
        for x, c in train:
            x = x.contiguous(memory_format=fmt)
            y = (1 - c).float()
            now = time.perf_counter()
            phases["data"] += now - mark
            mark = now
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = F.binary_cross_entropy_with_logits(model(x).squeeze(1).float(), y)
            now = time.perf_counter()
            phases["forward"] += now - mark
            mark = now
            opt.zero_grad(set_to_none=True)
            loss.backward()
            now = time.perf_counter()
            phases["backward"] += now - mark
            mark = now
            opt.step()
            loss.item()  # the per-step loss read the Rust loop makes (its NaN check)
            now = time.perf_counter()
            phases["step"] += now - mark
            mark = now
        t1 = time.perf_counter()
        model.eval()
        total, correct, n = 0.0, 0, 0
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            for x, c in val:
                x = x.contiguous(memory_format=fmt)
                y = (1 - c).float()
                z = model(x).squeeze(1).float()
                total += F.binary_cross_entropy_with_logits(z, y, reduction="sum").item()
                correct += int(((z > 0).float() == y).sum())
                n += len(y)
        t2 = time.perf_counter()
        epochs.append({"train_seconds": t1 - t0, "val_seconds": t2 - t1, "phases": phases,
                       "val_loss": total / n, "val_accuracy": correct / n})
    print(json.dumps({
        "peer": "pytorch-eager",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "layout": a.layout,
        "precision": a.precision,
        "workers": a.workers,
        "epochs": epochs,
    }))


if __name__ == "__main__":
    main()
