#!/usr/bin/env python3
"""Converts the MTCNN weights that facenet-pytorch ships (MIT licence, by Tim Esler) into
one safetensors file for df-face, once, at set-up (scripts/setup.sh); nothing downloads
at run time and nothing is committed.

    python scripts/face_weights.py facenet_pytorch-2.6.0-py3-none-any.whl OUT.safetensors

Reads `facenet_pytorch/data/{pnet,rnet,onet}.pt` (PyTorch state dicts) from the wheel and
writes their tensors as float32 under `pnet.`, `rnet.`, `onet.` + the state-dict names,
with the wheel's name and each file's SHA-256 in the metadata. The file is written beside
OUT and renamed into place.
"""

import hashlib
import io
import json
import os
import struct
import sys
import zipfile

import torch


def main(wheel, out):
    tensors, meta = {}, {"source": os.path.basename(wheel), "licence": "MIT (facenet-pytorch)"}
    with zipfile.ZipFile(wheel) as z:
        for net in ("pnet", "rnet", "onet"):
            data = z.read(f"facenet_pytorch/data/{net}.pt")
            meta[f"{net}.pt sha256"] = hashlib.sha256(data).hexdigest()
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            for name, t in state.items():
                tensors[f"{net}.{name}"] = t.detach().to(torch.float32).contiguous()
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for name in sorted(tensors):
        raw = tensors[name].numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    print(f"{len(tensors)} tensors -> {out}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
