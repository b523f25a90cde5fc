"""Hessian curvature, lossviz vs PyHessian 0.1, side by side on the same model and batch.

Run:  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 .venv/bin/python benchmarks/curvature.py [--device cpu]

Model: the digits MLP (26k parameters) and the small CNN (width 4), briefly trained; data: 512 digits training samples,
one batch (PyHessian's `data=` mode, which keeps the gradient graph between products, as lossviz does for one batch).
Timed, alternating, medians of --repeats (wall clock and process CPU time):
  - top-2 eigenvalues: PyHessian `eigenvalues(top_n=2, tol=1e-3)` (power iteration with deflation) vs lossviz
    `top_eigenvalues(k=2, tol=1e-3)` (Lanczos), with the number of Hessian-vector products and the values;
  - trace: 100 Hutchinson probes each (PyHessian `trace(maxIter=100, tol=0)` vs lossviz `hessian_trace(samples=100)`).
Prints the ratio lossviz / PyHessian (< 1: lossviz faster).
"""
import argparse, copy, statistics, time
import numpy as np
import torch
import torch.nn.functional as F

from lossviz import data, models
from lossviz.curvature import HVP, top_eigenvalues, hessian_trace


def trained(name, ds, device, **kw):
    m = models.get(name, data=ds, seed=0, **kw).to(device)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    x, y = ds.x_train.to(device), ds.y_train.to(device)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        perm = torch.randperm(len(x), generator=g).to(device)
        for i in range(0, len(x), 64):
            b = perm[i:i + 64]; opt.zero_grad(); F.cross_entropy(m(x[b]), y[b]).backward(); opt.step()
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=512)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import pyhessian
    dev = torch.device(a.device)
    ds = data.load("digits")
    x, y = ds.x_train[:a.samples].to(dev), ds.y_train[:a.samples].to(dev)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {dev}; one batch of {len(x)} digits")
    for name, kw in (("mlp", {}), ("cnn", dict(width=4, feature_dim=32))):
        m = trained(name, ds, dev, **kw)
        P = sum(p.numel() for p in m.parameters())
        t = {k: ([], []) for k in ("ph_eig", "lv_eig", "ph_trace", "lv_trace")}
        vals = {}
        def clock():
            if dev.type == "cuda": torch.cuda.synchronize()
            return time.perf_counter(), time.process_time()
        def rec(k, t0):
            t1 = clock(); t[k][0].append(t1[0] - t0[0]); t[k][1].append(t1[1] - t0[1])
        for r in range(a.repeats):
            mm = copy.deepcopy(m)
            state = torch.get_rng_state(); torch.manual_seed(r)
            t0 = clock()
            h = pyhessian.hessian(mm, F.cross_entropy, data=(x, y), cuda=dev.type == "cuda")
            ev, _ = h.eigenvalues(top_n=2, tol=1e-3, maxIter=100)
            rec("ph_eig", t0); vals["ph_eig"] = ev
            t0 = clock()
            tr = h.trace(maxIter=100, tol=0.0)
            rec("ph_trace", t0); vals["ph_trace"] = (float(np.mean(tr)), float(np.std(tr, ddof=1) / np.sqrt(len(tr))))
            torch.set_rng_state(state)
            t0 = clock()
            op = HVP(m, F.cross_entropy, (x, y))
            e = top_eigenvalues(m, F.cross_entropy, (x, y), k=2, tol=1e-3, hvp_op=op, seed=r)
            rec("lv_eig", t0); vals["lv_eig"] = (e.values.tolist(), e.products)
            t0 = clock()
            trv = hessian_trace(m, F.cross_entropy, (x, y), samples=100, hvp_op=HVP(m, F.cross_entropy, (x, y)), seed=r)
            rec("lv_trace", t0); vals["lv_trace"] = (trv.value, trv.stderr)
        med = {k: (statistics.median(v[0]), statistics.median(v[1])) for k, v in t.items()}
        print(f"\n{name}: {P} parameters                         wall s    cpu s")
        for k, (w, c) in med.items(): print(f"  {k:10s}                              {w:8.3f} {c:8.3f}")
        print(f"  top-2 eigenvalues: PyHessian {np.round(vals['ph_eig'], 5).tolist()}, lossviz {np.round(vals['lv_eig'][0], 5).tolist()} "
              f"({vals['lv_eig'][1]} products)")
        print(f"  trace: PyHessian {vals['ph_trace'][0]:.4g} ± {vals['ph_trace'][1]:.2g}, lossviz {vals['lv_trace'][0]:.4g} ± {vals['lv_trace'][1]:.2g}")
        for what in ("eig", "trace"):
            w = med[f"lv_{what}"][0] / med[f"ph_{what}"][0]; c = med[f"lv_{what}"][1] / med[f"ph_{what}"][1]
            print(f"  ratio lossviz / PyHessian, {what:5s}      wall {w:.3f}  cpu {c:.3f}")


if __name__ == "__main__":
    main()
