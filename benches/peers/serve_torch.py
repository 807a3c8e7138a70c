"""The Python peer of the serve load bench (benches/serve.sh): FastAPI + uvicorn serving
the same detector exported to TorchScript (`examples/export.rs --format torchscript`),
loaded with `torch.jit.load`.

    serve_torch.py --model FILE.pt --port 8081 --threads 2 --size 256 [--batching 8 --wait-ms 5]

POST /v1/score takes a photo as the body and answers {"p_fake": ..., "label": ...}: the
photo decoded by Pillow (RGB), resized to --size (nearest, as the checkpoint records for
meso4), pixels / 255, NCHW, one forward pass, a sigmoid. Without --batching each request
runs its own batch-1 forward pass in the thread pool, as such services are usually
written; with --batching N an asyncio task gathers up to N requests (or what came within
--wait-ms of the first) into one forward pass. torch runs --threads intra-op threads.
"""

import argparse
import asyncio
import io
from contextlib import asynccontextmanager

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from PIL import Image


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batching", type=int, default=0)
    ap.add_argument("--wait-ms", type=float, default=5.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model = torch.jit.load(args.model, map_location="cpu").eval()
    size = args.size

    def prepare(body: bytes) -> torch.Tensor:
        img = Image.open(io.BytesIO(body)).convert("RGB").resize((size, size), Image.NEAREST)
        x = np.asarray(img, dtype=np.float32) / 255.0
        return torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0)

    def forward(x: torch.Tensor) -> list:
        with torch.inference_mode():
            return torch.sigmoid(model(x)).view(-1).tolist()

    queue: asyncio.Queue = asyncio.Queue()

    async def batcher():
        loop = asyncio.get_running_loop()
        while True:
            items = [await queue.get()]
            deadline = loop.time() + args.wait_ms / 1000.0
            while len(items) < args.batching:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(queue.get(), left))
                except asyncio.TimeoutError:
                    break
            x = torch.cat([x for x, _ in items])
            try:
                p = await loop.run_in_executor(None, forward, x)
                for (_, fut), v in zip(items, p):
                    fut.set_result(v)
            except Exception as e:  # noqa: BLE001 - every waiting request gets the error
                for _, fut in items:
                    fut.set_exception(e)

    @asynccontextmanager
    async def lifespan(_app):
        task = asyncio.get_running_loop().create_task(batcher()) if args.batching else None
        yield
        if task:
            task.cancel()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz():
        return "ok"

    @app.post("/v1/score")
    async def score(request: Request):
        body = await request.body()
        loop = asyncio.get_running_loop()
        try:
            x = await loop.run_in_executor(None, prepare, body)
        except Exception as e:  # noqa: BLE001
            return JSONResponse({"error": str(e)}, status_code=422)
        if args.batching:
            fut = loop.create_future()
            await queue.put((x, fut))
            p = await fut
        else:
            p = (await loop.run_in_executor(None, forward, x))[0]
        return {"p_fake": p, "label": "fake" if p >= 0.5 else "real"}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
