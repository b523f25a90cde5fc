"""A 2-D loss landscape, lossviz vs loss-landscapes 3.0.6, side by side on the same model, data, grid and directions.

Run:  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 .venv/bin/python benchmarks/landscape.py [--device cpu] [--steps 41]

Models: the digits MLP (26k parameters) and a small CNN (width 4, 1.7k parameters), each trained for a few epochs
(loss-landscapes divides by zero on freshly initialised BatchNorm biases). Data: the 1,438 digits training samples as
one batch. Per model and grid, in one process, alternating:
  - loss-landscapes `random_plane(steps=S)` (its own directions: what its users call), and
  - loss-landscapes `planar_interpolation` on lossviz's filter-normalised directions (the same S×S points, same plane),
  - lossviz `surface(..., steps=S)` on the same directions (loss AND accuracy, coarse to fine), and the time until its
    first coarse picture (the first level, ~6% of the points) is available,
  - lossviz with the first-layer reuse switched off (the plain in-place walk), to show what the reuse buys.
Prints medians of wall-clock and of process CPU time (the steadier measure on a busy shared machine) and the ratios
lossviz / loss-landscapes (< 1 = lossviz faster). On --device cuda, lossviz uses its vmap
strategy (many grid points per forward) and loss-landscapes runs on the GPU too (its models and data moved there).
Also checks that both computed the same numbers on the rows where loss-landscapes' snake order lands on the grid.
"""
import argparse, copy, statistics, sys, time
import numpy as np
import torch
import torch.nn.functional as F

from lossviz import data, models
from lossviz.landscape import random_directions, surface, iter_surface


def trained(name, ds, device, epochs=3, **kw):
    m = models.get(name, data=ds, seed=0, **kw).to(device)
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    x, y = ds.x_train.to(device), ds.y_train.to(device)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g).to(device)
        for i in range(0, len(x), 64):
            b = perm[i:i + 64]
            opt.zero_grad(); F.cross_entropy(m(x[b]), y[b]).backward(); opt.step()
    return m.eval()


def with_weights(model, flat):
    m = copy.deepcopy(model)
    k = 0
    with torch.no_grad():
        for p in m.parameters(): p.copy_(flat[k:k + p.numel()].view_as(p)); k += p.numel()
    return m


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=41)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (2 = this machine's cores)")
    ap.add_argument("--models", default="mlp,cnn")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import loss_landscapes, loss_landscapes.metrics
    dev = torch.device(a.device)
    ds = data.load("digits")
    x, y = ds.x_train.to(dev), ds.y_train.to(dev)
    S, span = a.steps, 1.0
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {dev}, loss-landscapes {getattr(loss_landscapes, '__version__', '3.0.6')}")
    print(f"data: digits train {tuple(x.shape)} as one batch; grid {S}x{S}, span {span}; medians of {a.repeats} alternating repeats")
    rows = []
    for name in a.models.split(","):
        kw = dict(width=4, feature_dim=32) if name == "cnn" else {}
        m = trained(name, ds, dev, **kw)
        P = sum(p.numel() for p in m.parameters())
        d = random_directions(m, seed=0)
        h = 2 * span / (S - 1)
        w = d.origin
        start = w - span * d.vectors[0] - (span + h) * d.vectors[1]
        e1, e2 = start + S * h * d.vectors[0], start + S * h * d.vectors[1]
        metric = loss_landscapes.metrics.Loss(F.cross_entropy, x, y)
        keys = ["ll_random_plane", "ll_planar_same_dirs", "lossviz", "lossviz_coarse", "lossviz_no_reuse"]
        wall, cpu = {k: [] for k in keys}, {k: [] for k in keys}
        def clock(): sync(dev); return time.perf_counter(), time.process_time()
        def record(k, t0):
            t1 = clock(); wall[k].append(t1[0] - t0[0]); cpu[k].append(t1[1] - t0[1])
        ll_vals = lv_vals = None
        for r in range(a.repeats):
            mc = copy.deepcopy(m)
            t0 = clock()
            loss_landscapes.random_plane(mc, metric, distance=1, steps=S, normalization="filter", deepcopy_model=False)
            record("ll_random_plane", t0)

            ms, m1, m2 = with_weights(m, start), with_weights(m, e1), with_weights(m, e2)
            t0 = clock()
            ll_vals = loss_landscapes.planar_interpolation(ms, m1, m2, metric, steps=S, deepcopy_model=False)
            record("ll_planar_same_dirs", t0)

            first = None
            t0 = clock()
            for s in iter_surface(m, F.cross_entropy, (x, y), d, span=span, steps=S, progress=False):
                if first is None: first = clock()
            record("lossviz", t0)
            wall["lossviz_coarse"].append(first[0] - t0[0]); cpu["lossviz_coarse"].append(first[1] - t0[1])
            lv_vals = s

            if dev.type == "cpu":
                t0 = clock()
                surface(m, F.cross_entropy, (x, y), d, span=span, steps=S, progress=False, reuse=False)
                record("lossviz_no_reuse", t0)
        # loss-landscapes' rows: even rows land on lossviz's grid, odd rows one step off (its snake order)
        even = np.abs(ll_vals[0::2] - lv_vals.loss.T[0::2]).max()
        odd_on_grid = np.abs(ll_vals[1::2, 1:] - lv_vals.loss.T[1::2, :-1]).max()
        print(f"\n{name}: {P} parameters, {S * S} points           wall s    cpu s")
        for k in keys:
            if wall[k]: print(f"  {k:22s}        {statistics.median(wall[k]):8.3f} {statistics.median(cpu[k]):8.3f}")
        rat = lambda num, den: (statistics.median(wall[num]) / statistics.median(wall[den]), statistics.median(cpu[num]) / statistics.median(cpu[den]))
        r1, r2, rc, rf = rat("lossviz", "ll_random_plane"), rat("lossviz", "ll_planar_same_dirs"), rat("lossviz_coarse", "ll_random_plane"), rat("lossviz_coarse", "lossviz")
        print(f"  ratio lossviz / ll.random_plane            wall {r1[0]:.3f}  cpu {r1[1]:.3f}")
        print(f"  ratio lossviz / ll.planar (same dirs)      wall {r2[0]:.3f}  cpu {r2[1]:.3f}")
        print(f"  first coarse picture / lossviz full grid   wall {rf[0]:.3f}  cpu {rf[1]:.3f}")
        print(f"  first coarse picture / ll.random_plane     wall {rc[0]:.3f}  cpu {rc[1]:.3f}")
        if wall["lossviz_no_reuse"]:
            rr = rat("lossviz", "lossviz_no_reuse")
            print(f"  lossviz / lossviz without first-layer reuse wall {rr[0]:.3f}  cpu {rr[1]:.3f}")
        print(f"  same numbers: even rows max |diff| {even:.2e}; odd rows agree only shifted by one step: {odd_on_grid:.2e}")
        rows.append((name, P, r1, r2, rc))
    print("\nsummary (ratio < 1: lossviz faster)")
    for name, P, r1, r2, rc in rows:
        print(f"  {name:4s} {P:6d} params  lossviz/random_plane wall {r1[0]:.3f} cpu {r1[1]:.3f}   lossviz/planar(same dirs) wall {r2[0]:.3f} cpu {r2[1]:.3f}   coarse/ll wall {rc[0]:.3f} cpu {rc[1]:.3f}")


if __name__ == "__main__":
    main()
