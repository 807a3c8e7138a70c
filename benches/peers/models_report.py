"""The table of benches/models.rs beside its peers (benches/peers/models_torch.py).

    python benches/peers/models_report.py OUT.md RESULTS.jsonl [MORE.jsonl ...]

Reads every JSON line (Rust lines have "impl": "rust"; the peers' "keras", "user",
"user+compile" ...), keyed by id; a variant is impl plus " cl" where the input was
channels-last. Per id, a row: images/s of every variant found, the GFLOPs per image of
the exact definition (Keras, also Rust's) and of the user's pick, and the ratios
Rust / Keras and Rust / user pick, each side at its fastest variant (the layout each does
best), and Rust / port (the exact definition in plain PyTorch, `--impl port`, where
there is one). The user's pick is a different definition (timm, torchvision): compare it per
FLOP. Errors are listed under the table. Writes OUT.md and prints it.
"""

import json
import sys


def variant(line):
    return line["impl"] + (" cl" if line.get("layout") == "channels_last" else "")


def main(out_path, paths):
    rows, errors, names, flops = {}, [], {}, {}
    for path in paths:
        with open(path) as f:
            for text in f:
                text = text.strip()
                if not text.startswith("{"):
                    continue
                line = json.loads(text)
                if "error" in line:
                    errors.append(f"- `{line['id']}` ({line['impl']}): {line['error'][:300]}")
                    continue
                rows.setdefault(line["id"], {})[variant(line)] = line["images_per_second"]
                if line["impl"] == "user":
                    names[line["id"]] = line["model"]
                if "gflops_per_image" in line:
                    flops[(line["id"].split("/")[1], line["impl"])] = line["gflops_per_image"]
    variants = sorted({v for r in rows.values() for v in r}, key=lambda v: (not v.startswith("rust"), v))
    head = ["id", *[f"{v} img/s" for v in variants], "GFLOPs (exact)", "user pick", "GFLOPs (pick)",
            "Rust / Keras", "Rust / pick", "Rust / port"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def best(r, prefix):
        vals = [x for v, x in r.items() if v.split(" ")[0] == prefix]
        return max(vals) if vals else None

    for cid, r in rows.items():
        model = cid.split("/")[1]
        rust, keras, user, port = best(r, "rust"), best(r, "keras"), best(r, "user"), best(r, "port")
        exact = flops.get((model, "keras"))
        pick = flops.get((model, "user"))
        cells = [f"`{cid}`", *[f"{r[v]:.1f}" if v in r else "" for v in variants],
                 f"{exact:.2f}" if exact else "", names.get(cid, ""), f"{pick:.2f}" if pick else "",
                 f"{rust / keras:.2f}" if rust and keras else "", f"{rust / user:.2f}" if rust and user else "",
                 f"{rust / port:.2f}" if rust and port else ""]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if errors:
        text += "\nErrors:\n" + "\n".join(errors) + "\n"
    with open(out_path, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
