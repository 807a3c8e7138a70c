"""The reference side of df-detect's export test (crates/df-detect/tests/export.rs).

    python check_export.py MANIFEST.json

MANIFEST: {"cases": [{"name", "torchscript", "onnx", "inputs": [{"shape", "input",
"expected"}]}]}, where `input` and `expected` are raw little-endian float32 files (the
model's input and the logits Rust computed on it). For each case, torch.jit.load runs the
TorchScript file and onnxruntime the ONNX file on every input; prints one JSON object:
{"cases": [{"name", "torchscript_diff": [max |Δ| per input], "onnx_diff": [...],
"torchscript_metadata": the extra file deepfake.json (text or null), "onnx_metadata":
{key: value} of metadata_props, "onnx_opset": int, "onnx_batch_dim": the input's first
dimension (a name when dynamic)}]}.
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch


def main():
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    out = []
    for case in manifest["cases"]:
        extra = {"deepfake.json": ""}
        module = torch.jit.load(case["torchscript"], map_location="cpu", _extra_files=extra)
        module.eval()
        model = onnx.load(case["onnx"])
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        ts_diff, onnx_diff = [], []
        for item in case["inputs"]:
            x = np.fromfile(item["input"], dtype="<f4").reshape(item["shape"])
            want = np.fromfile(item["expected"], dtype="<f4")
            with torch.no_grad():
                got = module(torch.from_numpy(x)).numpy().reshape(-1)
            ts_diff.append(float(np.abs(got - want).max()) if got.shape == want.shape else None)
            got = session.run(None, {"input": x})[0].reshape(-1)
            onnx_diff.append(float(np.abs(got - want).max()) if got.shape == want.shape else None)
        dim = model.graph.input[0].type.tensor_type.shape.dim[0]
        out.append(
            {
                "name": case["name"],
                "torchscript_diff": ts_diff,
                "onnx_diff": onnx_diff,
                "torchscript_metadata": (extra["deepfake.json"] or b"").decode() or None,
                "onnx_metadata": {p.key: p.value for p in model.metadata_props},
                "onnx_opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                "onnx_batch_dim": dim.dim_param or dim.dim_value,
            }
        )
    print(json.dumps({"cases": out}))


if __name__ == "__main__":
    main()
