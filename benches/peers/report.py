"""Tables of benches/run-peers.sh: Rust (criterion) beside the PyTorch-eager peer.

    python benches/peers/report.py collect CRITERION_HOME SINCE_FILE [ID] >> rust.jsonl
    python benches/peers/report.py report RUST_JSONL PEER_JSONL OUT_DIR META_JSON

`collect` prints one JSON line per block bench that criterion wrote after SINCE_FILE's
mtime (only ID, if given): its mean and its fastest sample, in seconds per step.

`report` pairs the k-th Rust line of an id with the k-th peer line of that id (round k),
and writes OUT_DIR/blocks.md and OUT_DIR/blocks.json. Per case:
- Rust / PyTorch: the median over rounds of the per-round ratio of means, and its range;
- Rust and PyTorch images/s: those of that median round (the lower middle one for an
  even number of rounds);
- best-sample ratio: the fastest sample of either side over all rounds (criterion's
  fastest of 10 samples; the peer's fastest of 10 runs of steps), the figure least
  disturbed by other work on a shared machine.
"""

import datetime
import json
import os
import re
import statistics
import sys

BLOCK_ID = re.compile(r"^(cpu|cuda)/[a-z0-9_]+/b\d+x\d+/(eval|train)$")


def collect(crit_home, since_file, only=None):
    since = os.path.getmtime(since_file)
    for root, _dirs, files in os.walk(crit_home):
        if os.path.basename(root) != "new" or "estimates.json" not in files:
            continue
        est_path = os.path.join(root, "estimates.json")
        if os.path.getmtime(est_path) < since:
            continue
        with open(os.path.join(root, "benchmark.json")) as f:
            bench = json.load(f)
        bid = bench["full_id"]
        # Other benches (models, loader) share the criterion directory.
        if not BLOCK_ID.match(bid) or (only and bid != only):
            continue
        with open(est_path) as f:
            est = json.load(f)
        with open(os.path.join(root, "sample.json")) as f:
            sample = json.load(f)
        best_ns = min(t / n for t, n in zip(sample["times"], sample["iters"]))
        print(json.dumps({
            "id": bid,
            "seconds_per_iter": est["mean"]["point_estimate"] * 1e-9,
            "best_seconds_per_iter": best_ns * 1e-9,
        }))


def rounds_of(path):
    """{id: [line of round 1, line of round 2, ...]} in file order."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                out.setdefault(r["id"], []).append(r)
    return out


def fmt(v):
    return "—" if v is None else (f"{v:,.1f}" if v < 100 else f"{v:,.0f}")


def report(rust_path, peer_path, out_dir, meta_path):
    with open(meta_path) as f:
        meta = json.load(f)
    rust, peer = rounds_of(rust_path), rounds_of(peer_path)
    rows = []
    for bid in sorted(set(rust) | set(peer)):
        device, block, shape, mode = bid.split("/")
        batch = int(shape[1:].split("x")[0])
        rs, ps = rust.get(bid, []), peer.get(bid, [])
        pairs = list(zip(rs, ps))
        ratios = [p["seconds_per_iter"] / r["seconds_per_iter"] for r, p in pairs]
        # The images/s shown are those of the median round (the lower middle one for an
        # even count), so that the row's numbers and its ratio agree.
        if pairs:
            mid = sorted(range(len(pairs)), key=lambda i: ratios[i])[(len(pairs) - 1) // 2]
            shown_r, shown_p, ratio = [pairs[mid][0]], [pairs[mid][1]], ratios[mid]
        else:
            shown_r, shown_p, ratio = rs[:1], ps[:1], None

        def ips(side):
            return batch / side[0]["seconds_per_iter"] if side else None

        def fastest(side):
            return min(x["best_seconds_per_iter"] for x in side) if side else None

        rb, pb = fastest(rs), fastest(ps)
        rows.append({
            "id": bid, "device": device, "block": block, "batch": batch, "input": shape,
            "mode": mode, "rounds": len(pairs),
            "rust_images_per_second": ips(shown_r),
            "pytorch_images_per_second": ips(shown_p),
            "ratio_rust_over_pytorch": ratio,
            "ratio_min": min(ratios) if ratios else None,
            "ratio_max": max(ratios) if ratios else None,
            "best_sample_ratio": (pb / rb) if rb and pb else None,
            "rust_rounds": rs, "pytorch_rounds": ps,
        })
    order = {"eval": 0, "train": 1}
    rows.sort(key=lambda x: (x["device"] != "cpu", x["block"], x["batch"], order.get(x["mode"], 2)))
    meta["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(os.path.join(out_dir, "blocks.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)

    ratios = [x["ratio_rust_over_pytorch"] for x in rows if x["ratio_rust_over_pytorch"]]
    lines = [
        "# Block throughput: Rust (tch) vs PyTorch eager",
        "",
        f"- date: {meta['date']}",
        f"- commit: {meta['commit']}",
        f"- CPU: {meta['cpu']}, {meta['cores']} cores; {meta['threads']} intra-op threads on both sides",
    ]
    if meta.get("gpu"):
        lines.append(f"- GPU: {meta['gpu']}")
    for k, v in meta["env"].items():
        lines.append(f"- {k}={v} (both sides)")
    peer_code = ("in-place ReLU and residual additions (`--inplace`)" if meta["peer_inplace"]
                 else "plain functional ops (`F.relu(x)`, `x + y`)")
    lines += [
        f"- libtorch / PyTorch: {meta['torch']} (the same wheel on both sides); the peer uses {peer_code}",
        f"- input memory format: Rust `{meta.get('layout', 'contiguous')}` (DF_BENCH_LAYOUT), "
        f"PyTorch `{meta.get('peer_layout', 'contiguous')}` (`--layout`)",
        f"- {meta['rounds']} round(s), {'case by case, alternating which side goes first' if meta['interleave'] else 'all Rust cases, then all peer cases'}",
        f"- Rust: criterion mean; PyTorch: mean over ≥ {meta['peer_min_time_s']} s"
        + (" of process CPU time (DF_BENCH_CLOCK=cpu)" if meta["clock"] == "cpu" else " (wall clock)")
        + "; images/s of the median round, higher is better",
        "- Rust / PyTorch: median over rounds of the ratio of means (range over rounds in brackets); "
        "best sample: ratio of the fastest samples over all rounds",
    ]
    if ratios:
        lines.append(f"- geometric mean of Rust / PyTorch over {len(ratios)} cases: "
                     f"{statistics.geometric_mean(ratios):.2f}; lowest {min(ratios):.2f}")
    lines += [
        "",
        "| device | block | batch | mode | Rust img/s | PyTorch img/s | Rust / PyTorch | best sample |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for x in rows:
        ratio = x["ratio_rust_over_pytorch"]
        cell = "—" if ratio is None else f"{ratio:.2f}"
        if ratio is not None and x["rounds"] > 1:
            cell += f" [{x['ratio_min']:.2f}–{x['ratio_max']:.2f}]"
        best_ratio = x["best_sample_ratio"]
        lines.append(
            f"| {x['device']} | {x['block']} | {x['batch']} | {x['mode']} | "
            f"{fmt(x['rust_images_per_second'])} | {fmt(x['pytorch_images_per_second'])} | "
            f"{cell} | {'—' if best_ratio is None else f'{best_ratio:.2f}'} |"
        )
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "blocks.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "collect":
        collect(*args)
    elif cmd == "report":
        report(*args)
    else:
        sys.exit(f"unknown command {cmd!r}: collect or report")
