"""TorchScript → ONNX for the `export` program (df-detect's export module embeds this file).

    python export_onnx.py IN.pt OUT.onnx OPSET

Loads the TorchScript archive `export --format torchscript` makes (its extra file
`deepfake.json` describes the input), converts it with `torch.onnx.export(..., dynamo=False)`
(the TorchScript exporter: the default dynamo exporter does not take a ScriptModule) at opset
OPSET with a dynamic batch axis (input `input` [batch, 3, H, W], output `logit` [batch, 1]),
copies the metadata into the model's `metadata_props` (key `deepfake`, the JSON; `model` and
`polarity` as plain values), checks the model (onnx.checker) and ONNX Runtime's logits
against the archive's at batches 1 and 5 (|Δ| <= 1e-4 · (1 + max |logit|)), and only then
writes OUT. Errors go to stderr with exit status 1.
"""

import json
import sys
import warnings


def fail(message):
    print(f"export_onnx: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 4:
        fail("usage: export_onnx.py IN.pt OUT.onnx OPSET")
    src, dst, opset = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
        import torch
    except ImportError as e:
        fail(f"{e}: run `scripts/setup.sh --python-tools` (torch, onnx, onnxruntime)")
    extra = {"deepfake.json": ""}
    module = torch.jit.load(src, map_location="cpu", _extra_files=extra)
    module.eval()
    if not extra["deepfake.json"]:
        fail(f"{src}: no extra file deepfake.json (not made by `export`)")
    meta = json.loads(extra["deepfake.json"].decode() if isinstance(extra["deepfake.json"], bytes) else extra["deepfake.json"])
    h, w = meta["input"]["height"], meta["input"]["width"]
    example = torch.linspace(-2, 2, 2 * 3 * h * w).reshape(2, 3, h, w)
    tmp = dst + ".unchecked"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            tmp,
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["logit"],
            dynamic_axes={"input": {0: "batch"}, "logit": {0: "batch"}},
        )
    model = onnx.load(tmp)
    props = {"deepfake": json.dumps(meta), "model": meta["model"], "polarity": meta["polarity"]}
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    for n in (1, 5):
        x = torch.rand(n, 3, h, w, generator=gen) * 4 - 2
        with torch.no_grad():
            want = module(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        if got.shape != want.shape:
            fail(f"ONNX Runtime gives shape {got.shape} at batch {n}, TorchScript {want.shape}")
        diff = float(np.abs(got - want).max())
        if not diff <= 1e-4 * (1 + float(np.abs(want).max())):
            fail(f"ONNX Runtime differs from TorchScript at batch {n}: max |Δ| {diff:.3e}")
    with open(dst, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
