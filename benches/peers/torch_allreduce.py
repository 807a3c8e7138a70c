"""The peer of benches/allreduce.rs: the same buckets all-reduced with torch.distributed
(Gloo, loopback, one process per rank), as DDP reduces gradient buckets: for each bucket a
flat float32 tensor, `all_reduce` (sum) then divided by the world size. It reads the Rust
bench's JSON lines (the models' bucket sizes) and prints its own, with `torch_ms_*`.

The Rust side also flattens the gradients into each bucket and copies the means back,
the work DDP does too when it copies gradients into its buckets (without
`gradient_as_bucket_view`). This peer times both: the reduction and division alone
(`torch_ms_*`, a lower bound), and with a copy into the bucket before and out of it after
(`torch_copy_ms_*`, DDP's default).

Usage: python benches/peers/torch_allreduce.py RUST_JSONL [--ranks 2] [--reps 10]
"""
import argparse
import json
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_main(rank, world, port, rows, reps, queue):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    out = []
    for row in rows:
        buckets = [torch.ones(n, dtype=torch.float32) for n in row["buckets"]]
        grads = [torch.ones(n, dtype=torch.float32) for n in row["buckets"]]
        result = {"model": row["model"]}
        for key, copies in (("torch", False), ("torch_copy", True)):
            times = []
            for i in range(reps + 2):
                dist.barrier()
                t0 = time.perf_counter()
                for b, g in zip(buckets, grads):
                    if copies:
                        b.copy_(g)
                    dist.all_reduce(b)
                    b.div_(world)
                    if copies:
                        g.copy_(b)
                if i >= 2:
                    times.append((time.perf_counter() - t0) * 1e3)
            times.sort()
            result[f"{key}_ms_median"] = statistics.median(times)
            result[f"{key}_ms_min"] = times[0]
            result[f"{key}_ms_max"] = times[-1]
        out.append(result)
    dist.destroy_process_group()
    if rank == 0:
        queue.put(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("rust_jsonl")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--reps", type=int, default=10)
    a = p.parse_args()
    with open(a.rust_jsonl) as f:
        rows = [json.loads(l) for l in f if l.strip().startswith("{")]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=rank_main, args=(r, a.ranks, port, rows, a.reps, queue))
             for r in range(a.ranks)]
    for pr in procs:
        pr.start()
    out = queue.get()
    for pr in procs:
        pr.join()
    for row in out:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
