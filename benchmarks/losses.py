"""Forward+backward of every registered classification loss on 4096x1000 logits, beside torch.nn.functional.cross_entropy.

Run:  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 .venv/bin/python benchmarks/losses.py [--n 4096 --c 1000 --reps 15]
One process; the loss and F.cross_entropy are timed alternately on the same logits; the median ratio is printed per loss.
Elementwise (per-sample) losses aim at <= 3x cross-entropy; set-level losses (dice, Tversky, AnyLoss) are reported too.
"""
import argparse, statistics, time
import torch
import torch.nn.functional as F
from lossviz import losses


def fwd_bwd(fn, z, y):
    "One forward+backward; returns seconds."
    z.grad = None
    t0 = time.perf_counter()
    fn(z, y).backward()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4096); ap.add_argument("--c", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=15); ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    a = ap.parse_args()
    torch.set_num_threads(2); torch.manual_seed(0)
    dev, dt = torch.device(a.device), getattr(torch, a.dtype)
    z = (3 * torch.randn(a.n, a.c, device=dev, dtype=dt)).requires_grad_()
    y = torch.randint(0, a.c, (a.n,), device=dev)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    ce = lambda z, y: F.cross_entropy(z, y)
    print(f"forward+backward, logits {a.n}x{a.c} {a.dtype} on {dev}, {torch.get_num_threads()} threads, {a.reps} alternating reps")
    print(f"{'loss':<16}{'kind':<12}{'median ms':>10}{'CE ms':>9}{'ratio':>8}")
    rows = []
    for name in losses.names("classification"):
        loss = losses.get(name)
        for _ in range(2): fwd_bwd(loss, z, y); fwd_bwd(ce, z, y)  # warm-up
        tl, tc, ratios = [], [], []
        for _ in range(a.reps):
            sync(); t1 = fwd_bwd(loss, z, y); sync()
            t2 = fwd_bwd(ce, z, y); sync()
            tl.append(t1); tc.append(t2); ratios.append(t1 / t2)
        r = statistics.median(ratios)
        kind = "per-sample" if losses.spec(name).per_sample else "set-level"
        rows.append((name, r))
        print(f"{name:<16}{kind:<12}{1e3 * statistics.median(tl):>10.1f}{1e3 * statistics.median(tc):>9.1f}{r:>8.2f}")
    worst = max((r, n) for n, r in rows if losses.spec(n).per_sample)
    print(f"worst per-sample ratio: {worst[1]} {worst[0]:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
