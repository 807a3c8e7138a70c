"""PyTorch-eager peer of benches/blocks.rs: the same blocks, shapes and modes.

Each block is written the way a PyTorch user would (torch.nn modules, eager mode), with
the same layer configuration as the Rust block (Keras "same" padding done with F.pad where
it is asymmetric, as the Rust code does). Prints one JSON line per case:
{"id": "cpu/mbconv_40_80/b32x28/eval", "seconds_per_iter": ..., "images_per_second": ...}

Usage: python benches/peers/blocks_torch.py [--threads N] [--device cpu|cuda] [--filter S]
                                             [--min-time SECONDS] [--clock wall|cpu]
                                             [--inplace] [--steps N]
                                             [--layout contiguous|channels_last]

--inplace writes ReLU and residual additions into the tensors that made them, in training
too, as df-layers does and as torchvision's ResNet does by hand (`nn.ReLU(inplace=True)`,
`out += identity`). The default is the plain functional code (`F.relu(x)`, `x + y`).
Either way, eval runs under `torch.no_grad()`.

--layout channels_last gives each block its input in `torch.channels_last`, as it gets it in a
network that converted its batch once (`x.contiguous(memory_format=...)`), as the Rust bench
does with DF_BENCH_LAYOUT=channels_last; PyTorch's operators keep that format through the
block. The default, `contiguous`, is what plain eager code runs (NCHW).

--steps N runs two warm-up steps and then N steps of each selected case, untimed but for
one line saying how long they took (`benches/instructions.sh` counts their instructions).

Each line has the mean time per step ("seconds_per_iter") and the best of 10 samples
("best_seconds_per_iter", the one least disturbed by anything else on the machine; see
`bench`).

--threads defaults to $DF_BENCH_THREADS, else the cores this process may run on: the same
rule as benches/blocks.rs, so that both sides use the same intra-op thread count.
"""

import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Set by --inplace (see the module doc).
INPLACE = False


def same_pad(x, k, s, d=1):
    """TensorFlow's "same" split (extra pixel after), as Keras does."""
    h, w = x.shape[-2:]

    def amounts(n, kk):
        out = (n + s - 1) // s
        total = max((out - 1) * s + (kk - 1) * d + 1 - n, 0)
        return total // 2, total - total // 2

    t, b = amounts(h, k[0])
    l, r = amounts(w, k[1])
    if t == b and l == r:
        return x, (t, l)
    return F.pad(x, (l, r, t, b)), (0, 0)


class ConvBnAct(nn.Module):
    def __init__(self, cin, cout, k, s=1, d=1, groups=1, bn=True, act="relu", bias=None, eps=1e-3, scale=True):
        super().__init__()
        k = (k, k) if isinstance(k, int) else k
        self.k, self.s, self.d = k, s, d
        self.conv = nn.Conv2d(cin, cout, k, s, 0, d, groups, bias=(not bn) if bias is None else bias)
        self.bn = nn.BatchNorm2d(cout, eps=eps, momentum=0.01) if bn else None
        if self.bn is not None and not scale:
            # Keras BatchNormalization(scale=False): a learned offset, no learned gamma. A
            # constant gamma = 1 buffer, as df-layers does: PyTorch's CUDA batch-norm
            # backward fails on weight=None ("tensor does not have a device").
            del self.bn.weight
            self.bn.register_buffer("weight", torch.ones(cout))
        self.act = act

    def forward(self, x):
        x, pad = same_pad(x, self.k, self.s, self.d)
        x = F.conv2d(x, self.conv.weight, self.conv.bias, self.s, pad, self.d, self.conv.groups)
        if self.bn is not None:
            x = self.bn(x)
        if self.act == "relu":
            x = F.relu(x, inplace=INPLACE)
        elif self.act == "swish":
            x = F.silu(x)
        return x


class MesoInception(nn.Module):
    def __init__(self, cin, a, b, c, d):
        super().__init__()
        self.b1 = ConvBnAct(cin, a, 1, bn=False)
        self.b2 = nn.Sequential(ConvBnAct(cin, b, 1, bn=False), ConvBnAct(b, b, 3, bn=False))
        self.b3 = nn.Sequential(ConvBnAct(cin, c, 1, bn=False), ConvBnAct(c, c, 3, d=2, bn=False))
        self.b4 = nn.Sequential(ConvBnAct(cin, d, 1, bn=False), ConvBnAct(d, d, 3, d=3, bn=False))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class Bottleneck(nn.Module):
    """ResNet50 v1 (Keras): stride on the first 1x1; projection shortcut when asked."""

    def __init__(self, cin, filters, s=1, project=False):
        super().__init__()
        f1, f2, f3 = filters
        eps = 1.001e-5
        self.c1 = ConvBnAct(cin, f1, 1, s, bias=True, eps=eps)
        self.c2 = ConvBnAct(f1, f2, 3, bias=True, eps=eps)
        self.c3 = ConvBnAct(f2, f3, 1, act=None, bias=True, eps=eps)
        self.short = ConvBnAct(cin, f3, 1, s, act=None, bias=True, eps=eps) if project else None

    def forward(self, x):
        sc = self.short(x) if self.short is not None else x
        y = self.c3(self.c2(self.c1(x)))
        if INPLACE:
            y += sc
            return F.relu_(y)
        return F.relu(y + sc)


class MbConv(nn.Module):
    def __init__(self, cin, cout, k, s, expand, se=0.25):
        super().__init__()
        mid = cin * expand
        self.expand = ConvBnAct(cin, mid, 1, act="swish") if expand != 1 else None
        self.k, self.s = k, s
        self.dw = nn.Conv2d(mid, mid, k, s, 0, groups=mid, bias=False)
        self.dw_bn = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        sq = max(1, int(cin * se))
        self.se_reduce = nn.Conv2d(mid, sq, 1)
        self.se_expand = nn.Conv2d(sq, mid, 1)
        self.project = ConvBnAct(mid, cout, 1, act=None)
        self.skip = s == 1 and cin == cout

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        if self.s == 2:
            # Keras: ZeroPadding2D(correct_pad) then a "valid" depthwise conv.
            h = y.shape[-1]
            adjust = 1 - h % 2
            p = self.k // 2
            y = F.pad(y, (p - adjust, p, p - adjust, p))
            y = self.dw(y)
        else:
            y = F.conv2d(y, self.dw.weight, None, 1, self.k // 2, 1, self.dw.groups)
        y = F.silu(self.dw_bn(y))
        s = y.mean((2, 3), keepdim=True)
        s = torch.sigmoid(self.se_expand(F.silu(self.se_reduce(s))))
        y = self.project(y * s)
        if not self.skip:
            return y
        if INPLACE:
            y += x
            return y
        return y + x


class Block35(nn.Module):
    """Inception-ResNet-A (Keras block35), 320 channels, residual scale 0.17."""

    def __init__(self, c=320, scale=0.17):
        super().__init__()
        # Keras conv2d_bn: no conv bias, batch norm without a learned scale.
        kw = dict(bias=False, scale=False)
        self.b0 = ConvBnAct(c, 32, 1, **kw)
        self.b1 = nn.Sequential(ConvBnAct(c, 32, 1, **kw), ConvBnAct(32, 32, 3, **kw))
        self.b2 = nn.Sequential(ConvBnAct(c, 32, 1, **kw), ConvBnAct(32, 48, 3, **kw), ConvBnAct(48, 64, 3, **kw))
        self.up = nn.Conv2d(128, c, 1, bias=True)
        self.scale = scale

    def forward(self, x):
        mixed = torch.cat([self.b0(x), self.b1(x), self.b2(x)], 1)
        if INPLACE:
            up = self.up(mixed)
            up.mul_(self.scale)
            up += x
            return F.relu_(up)
        return F.relu(x + self.scale * self.up(mixed))


class VggStage(nn.Module):
    """VGG16 configuration C stage 3: three 3x3 convs (the last 1x1), max-pool."""

    def __init__(self, cin=128, c=256):
        super().__init__()
        self.convs = nn.Sequential(
            ConvBnAct(cin, c, 3, bn=False), ConvBnAct(c, c, 3, bn=False), ConvBnAct(c, c, 1, bn=False)
        )

    def forward(self, x):
        return F.max_pool2d(self.convs(x), 2, 2)


# id, constructor, (channels, size) of the input: must match benches/blocks.rs.
CASES = [
    ("conv_bn_act_3_32_s2", lambda: ConvBnAct(3, 32, 3, 2, act="swish"), (3, 224)),
    ("meso_inception_3", lambda: MesoInception(3, 1, 4, 4, 2), (3, 256)),
    ("bn_pool_11", lambda: nn.Sequential(nn.BatchNorm2d(11, eps=1e-3, momentum=0.01), nn.MaxPool2d(2)), (11, 128)),
    ("identity_block_256", lambda: Bottleneck(256, (64, 64, 256)), (256, 56)),
    ("conv_block_256_512", lambda: Bottleneck(256, (128, 128, 512), 2, True), (256, 56)),
    ("mbconv_40_80", lambda: MbConv(40, 80, 3, 2, 6), (40, 28)),
    ("inception_resnet_a_320", lambda: Block35(), (320, 35)),
    ("vgg_stage_c3", lambda: VggStage(), (128, 56)),
]
BATCHES = [1, 32]


def bench(fn, sync, min_time, clock=time.perf_counter, max_iters=200):
    """Mean seconds per step over at least `min_time` (and 3 steps), and the best sample.

    The best sample is the fastest mean of 10 consecutive runs of steps (or of one step,
    when there are fewer than 10), which is what criterion's fastest sample is on the Rust
    side: it measures 10 samples, each the mean of the same number of steps.
    """
    fn()
    fn()
    sync()
    steps = []
    start = last = clock()
    while True:
        fn()
        sync()
        now = clock()
        steps.append(now - last)
        last = now
        if (now - start >= min_time and len(steps) >= 3) or len(steps) >= max_iters:
            chunks = min(10, len(steps))
            size = len(steps) // chunks
            best = min(sum(steps[i * size:(i + 1) * size]) / size for i in range(chunks))
            return (now - start) / len(steps), best


def settle_allocator():
    """Frees one 31 MiB block first, as benches/blocks.rs does (see `settle_allocator` there).

    It raises glibc's dynamic mmap/trim thresholds to 31/62 MiB, so that neither process
    spends its time trimming and re-faulting its heap after every step.
    """
    block = torch.empty(31 << 18)  # f32; `empty` touches no page
    del block


def main():
    settle_allocator()
    ap = argparse.ArgumentParser()
    default_threads = int(os.environ.get("DF_BENCH_THREADS") or len(os.sched_getaffinity(0)))
    ap.add_argument("--threads", type=int, default=default_threads)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--filter", default="")
    ap.add_argument("--min-time", type=float, default=2.0)
    # `cpu`: process CPU time (as benches/blocks.rs with DF_BENCH_CLOCK=cpu), for a busy
    # machine with --threads 1.
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--inplace", action="store_true")
    # N: two warm-up steps, then N steps, no timing (as DF_BENCH_STEPS=N for the Rust
    # bench): for benches/instructions.sh, which counts the work of the whole process.
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--layout", choices=["contiguous", "channels_last"], default="contiguous")
    args = ap.parse_args()
    fmt = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}[args.layout]
    global INPLACE
    INPLACE = args.inplace
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    for name, make, (c, size) in CASES:
        for n in BATCHES:
            for mode in ("eval", "train"):
                bid = f"{dev.type}/{name}/b{n}x{size}/{mode}"
                if args.filter not in bid:
                    continue
                m = make().to(dev)
                x = torch.randn(n, c, size, size, device=dev).contiguous(memory_format=fmt)
                if mode == "eval":
                    m.eval()

                    def step():
                        with torch.no_grad():
                            m(x)
                else:
                    m.train()
                    params = list(m.parameters())

                    def step():
                        for p in params:
                            p.grad = None
                        m(x).sum().backward()

                if args.steps is not None:
                    step()
                    step()
                    sync()
                    start = time.perf_counter()
                    for _ in range(args.steps):
                        step()
                    sync()
                    print(f"{bid}: {args.steps} steps in {time.perf_counter() - start:.3f} s", flush=True)
                    continue
                clock = time.process_time if args.clock == "cpu" else time.perf_counter
                secs, best = bench(step, sync, args.min_time, clock)
                print(json.dumps({
                    "id": bid, "seconds_per_iter": secs, "images_per_second": n / secs,
                    "best_seconds_per_iter": best, "inplace": INPLACE,
                    "layout": args.layout,
                }), flush=True)


if __name__ == "__main__":
    main()
