"""All neural-collapse metrics (NC1, NC2 equinorm/equiangular, NC3, NC4, CDNV) of N x D features with C classes:
lossviz.collapse.metrics beside a straightforward torch float32 implementation, a straightforward numpy float64 one,
and rhubarbwu/neural-collapse (Wu & Papyan) when it is importable (it is not on PyPI: `pip install
git+<its repository>`, or put a checkout on PYTHONPATH).

Run:  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 .venv/bin/python benchmarks/collapse.py [--n 50000 --d 512 --c 100 10 --reps 7 --device cpu]

One process; the implementations are timed alternately on the same float32 features (Gaussian classes offset from the
origin, a classifier near the class centres); each line prints the median time, the median CPU time of the process per
call (all its threads: what the call costs a shared machine), the median of the per-repetition ratios peer/lossviz, and
the NC1 each one reports (the float32 pinv of the plain implementations may be far off: see nbs/15_collapse).
The lossviz rows: the default; "no certified NC4" sends every sample through the classifier and nearest-centre products
(the cost on features without class structure, e.g. at initialisation); "MKL sgemm" uses torch.mm instead of oneDNN.
Goal: lossviz <= 0.2 s at N=50,000, D=512, C=100 on two CPU cores.
"""
import argparse, os, statistics, time
import numpy as np
import torch
import torch.nn.functional as F
import lossviz.collapse
from lossviz.collapse import metrics


def torch_plain(h, y, W, b, C):
    "The textbook computation in the features' dtype: D x D covariances and torch.linalg.pinv."
    N, D = h.shape
    n = torch.bincount(y, minlength=C).to(h.dtype)
    mu = torch.zeros(C, D, dtype=h.dtype, device=h.device).index_add_(0, y, h) / n[:, None]
    mG = mu.mean(0); M = mu - mG
    R = h - mu[y]
    Sw, Sb = R.T @ R / N, M.T @ M / C
    nc1 = torch.trace(Sw @ torch.linalg.pinv(Sb)) / C
    norms = M.norm(dim=1)
    equinorm = norms.std(correction=0) / norms.mean()
    Mn = F.normalize(M, dim=1); off = ~torch.eye(C, dtype=torch.bool, device=h.device)
    dev = ((Mn @ Mn.T) + 1 / (C - 1)).abs()[off]
    nc3 = ((W / W.norm() - M / M.norm()) ** 2).sum()
    nc4 = ((h @ W.T + b).argmax(1) != torch.cdist(h, mu).argmin(1)).float().mean()
    var = torch.zeros(C, dtype=h.dtype, device=h.device).index_add_(0, y, (R * R).sum(1)) / n
    i, j = torch.triu_indices(C, C, 1, device=h.device)
    cdnv = ((var[i] + var[j]) / (2 * ((mu[i] - mu[j]) ** 2).sum(1))).mean()
    return dict(nc1=float(nc1), equinorm=float(equinorm), equiangular=float(dev.mean()), nc3=float(nc3), nc4=float(nc4), cdnv=float(cdnv))


def numpy_plain(h, y, W, b, C):
    "The textbook computation in numpy float64 (one-hot means, D x D covariances, hermitian pinv)."
    h, W, b = h.astype(np.float64), W.astype(np.float64), b.astype(np.float64)
    N, D = h.shape
    onehot = np.zeros((N, C)); onehot[np.arange(N), y] = 1
    n = onehot.sum(0)
    mu = onehot.T @ h / n[:, None]
    mG = mu.mean(0); M = mu - mG
    R = h - mu[y]
    Sw, Sb = R.T @ R / N, M.T @ M / C
    nc1 = np.trace(Sw @ np.linalg.pinv(Sb, hermitian=True)) / C
    norms = np.linalg.norm(M, axis=1)
    Mn = M / norms[:, None]
    dev = np.abs(Mn @ Mn.T + 1 / (C - 1))[~np.eye(C, dtype=bool)]
    nc3 = ((W / np.linalg.norm(W) - M / np.linalg.norm(M)) ** 2).sum()
    d2 = (h * h).sum(1)[:, None] - 2 * h @ mu.T + (mu * mu).sum(1)[None]
    nc4 = np.mean((h @ W.T + b).argmax(1) != d2.argmin(1))
    var = onehot.T @ (R * R).sum(1) / n
    i, j = np.triu_indices(C, 1)
    cdnv = np.mean((var[i] + var[j]) / (2 * ((mu[i] - mu[j]) ** 2).sum(1)))
    return dict(nc1=nc1, equinorm=norms.std() / norms.mean(), equiangular=dev.mean(), nc3=nc3, nc4=nc4, cdnv=cdnv)


def rhubarbwu(h, y, W, b, C):
    "rhubarbwu/neural-collapse: its accumulators over the whole set as one batch, then its measures (float32, its defaults)."
    from neural_collapse.accumulate import MeanAccumulator, VarNormAccumulator, CovarAccumulator, DecAccumulator
    from neural_collapse.measure import covariance_ratio, variability_cdnv, simplex_etf_error, self_duality_error, clf_ncc_agreement, mean_norms
    N, D = h.shape; dev = h.device
    ma = MeanAccumulator(C, D, dev); ma.accumulate(h, y); means, mG = ma.compute()
    va = VarNormAccumulator(C, D, dev, M=means); va.accumulate(h, y, means); var_norms, _ = va.compute()
    ca = CovarAccumulator(C, D, dev, M=means); ca.accumulate(h, y, means); covar = ca.compute()
    da = DecAccumulator(C, D, dev, M=means, W=W); da.accumulate(h, y, W, means)   # (no bias: the library takes none)
    norms = mean_norms(means, mG)
    return dict(nc1=covariance_ratio(covar, means, mG), equinorm=float(norms.std() / norms.mean()),
                etf_error=simplex_etf_error(means, mG), dual_error=self_duality_error(W, means, mG),
                nc4=1 - clf_ncc_agreement(da), cdnv=variability_cdnv(var_norms, means))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000); ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--c", type=int, nargs="+", default=[100, 10]); ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--device", default="cpu"); ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    try:
        import neural_collapse  # noqa: F401
        have_nc = True
    except ImportError:
        have_nc = False
    print(f"all collapse metrics, N={a.n} D={a.d} float32 features on {dev}, {torch.get_num_threads()} threads, {a.reps} alternating reps; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not have_nc: print("rhubarbwu/neural-collapse: not importable here (not on PyPI), skipped")
    for C in a.c:
        g = torch.Generator().manual_seed(C)
        y = torch.randint(0, C, (a.n,), generator=g)
        centres = 3 * torch.randn(C, a.d, generator=g)
        h = (centres[y] + torch.randn(a.n, a.d, generator=g) + 2.0).to(dev)
        W, b = (centres + torch.randn(C, a.d, generator=g)).to(dev), torch.randn(C, generator=g).to(dev)
        y = y.to(dev)
        hn, yn, Wn, bn = (t.cpu().numpy() for t in (h, y, W, b))
        def flagged(**flags):   # the same lossviz code with module switches set (restored after)
            def f():
                old = {k: getattr(lossviz.collapse, k) for k in flags}
                for k, v in flags.items(): setattr(lossviz.collapse, k, v)
                try: return metrics(h, y, W, b)
                finally:
                    for k, v in old.items(): setattr(lossviz.collapse, k, v)
            return f
        impls = {"lossviz": lambda: metrics(h, y, W, b),
                 "lossviz, no certified NC4": flagged(_CERTIFY=False),      # every sample through the NC4 products
                 "lossviz, MKL sgemm": flagged(_ONEDNN=False),
                 "torch float32 plain": lambda: torch_plain(h, y, W, b, C),
                 "numpy float64 plain": lambda: numpy_plain(hn, yn, Wn, bn, C)}
        if have_nc: impls["rhubarbwu/neural-collapse"] = lambda: rhubarbwu(h, y, W, b, C)
        times = {k: [] for k in impls}; cpu = {k: [] for k in impls}; vals = {}
        for k, f in impls.items(): vals[k] = f(); sync()                      # warm-up
        for rep in range(a.reps):
            for k, f in (list(impls.items()) if rep % 2 == 0 else list(impls.items())[::-1]):   # alternate the order
                sync(); t0 = time.perf_counter(); c0 = time.process_time(); f(); sync()
                times[k].append(time.perf_counter() - t0); cpu[k].append(time.process_time() - c0)
        base = times["lossviz"]
        print(f"\nC={C}")
        print(f"{'implementation':<28}{'median s':>10}{'CPU s':>8}{'ratio vs lossviz':>18}{'NC1':>14}{'NC4':>8}{'CDNV':>10}")
        for k in impls:
            r = statistics.median(t / l for t, l in zip(times[k], base))
            v = vals[k]; v = v.as_dict() if hasattr(v, "as_dict") else v
            nc1, nc4, cd = v["nc1"], v["nc4"], v["cdnv"]
            print(f"{k:<28}{statistics.median(times[k]):>10.3f}{statistics.median(cpu[k]):>8.3f}{r:>17.2f}x{nc1:>14.6g}{nc4:>8.4f}{cd:>10.4g}")
        print(f"lossviz median {statistics.median(base):.3f} s (goal <= 0.2 s on two CPU cores); "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
