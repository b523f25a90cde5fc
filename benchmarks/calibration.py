"""Top-label ECE (15 bins) of 1,000,000 x 10 predictions: lossviz.calibration.ece beside torchmetrics and netcal.

Run:  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 .venv/bin/python benchmarks/calibration.py [--n 1000000 --c 10 --reps 11 --device cpu]
One process; lossviz and torchmetrics' `multiclass_calibration_error` (with its default argument validation, as lossviz
validates too) are timed alternately on the same probabilities and the median of the per-rep ratios is printed
(target: lossviz / torchmetrics <= 0.7). netcal (NumPy, CPU) and scikit-learn's `calibration_curve` (needs the
confidences first) are timed a few times beside them when installed. Also: the values' agreement, ECE from logits,
equal-mass ECE, the streaming CalibrationStats, fit_temperature.
"""
import argparse, os, statistics, time
import torch
from lossviz.calibration import ece, top_label, CalibrationStats, fit_temperature


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000); ap.add_argument("--c", type=int, default=10)
    ap.add_argument("--bins", type=int, default=15); ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--device", default="cpu"); ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, a.c, (a.n,), generator=g)
    z = 2.5 * (torch.randn(a.n, a.c, generator=g) + 1.5 * torch.nn.functional.one_hot(y, a.c))
    z, y = z.to(dev), y.to(dev)
    p = z.softmax(1)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)

    def timed(f):
        sync(); t0 = time.perf_counter(); v = f(); sync()
        return time.perf_counter() - t0, v

    print(f"ECE, {a.n:,} x {a.c} float32 probabilities, {a.bins} bins, on {dev}, {torch.get_num_threads()} threads, "
          f"{a.reps} alternating reps; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    try:
        from torchmetrics.functional.classification import multiclass_calibration_error as tm
    except ImportError:
        tm = None
        print("torchmetrics not installed: no ratio")
    ours = lambda: ece(p, y, n_bins=a.bins)
    if tm is not None:
        theirs = lambda: float(tm(p, y, num_classes=a.c, n_bins=a.bins))
        for _ in range(2): ours(); theirs()
        to, tt, ratios = [], [], []
        for i in range(a.reps):
            if i % 2 == 0: t1, v1 = timed(ours); t2, v2 = timed(theirs)
            else: t2, v2 = timed(theirs); t1, v1 = timed(ours)
            to.append(t1); tt.append(t2); ratios.append(t1 / t2)
        r = statistics.median(ratios)
        rows.append(("lossviz ece", statistics.median(to))); rows.append(("torchmetrics", statistics.median(tt)))
        print(f"  values: lossviz {v1:.9f}  torchmetrics {v2:.9f}  |diff| {abs(v1 - v2):.2e}")
        try:   # where the difference comes from: torchmetrics casts the confidences to float32 and sums each bin in float32
            from torchmetrics.functional.classification.calibration_error import _ce_compute
            conf, correct = top_label(p, y, check=False)
            v64 = float(_ce_compute(conf.double(), correct.double(), a.bins))
            print(f"  torchmetrics' own binning and formula in float64: {v64:.9f}, |lossviz - that| {abs(v1 - v64):.1e} "
                  "(so the |diff| above is torchmetrics' float32 accumulation: `confidences.float()`, scatter_add in float32)")
        except ImportError:
            pass
    else:
        rows.append(("lossviz ece", statistics.median(timed(ours)[0] for _ in range(a.reps))))
    try:
        from netcal.metrics import ECE as NECE
        pn, yn = p.cpu().numpy(), y.cpu().numpy()
        m = NECE(a.bins)
        tn = [timed(lambda: float(m.measure(pn, yn))) for _ in range(3)]
        rows.append(("netcal ECE (numpy)", statistics.median(t for t, _ in tn)))
        print(f"  netcal value {tn[0][1]:.9f}")
    except ImportError:
        print("netcal not installed")
    try:
        from sklearn.calibration import calibration_curve
        def sk():
            conf, correct = top_label(p, y, check=False)
            return calibration_curve(correct.cpu().numpy(), conf.cpu().numpy(), n_bins=a.bins)
        rows.append(("sklearn calibration_curve", statistics.median(timed(sk)[0] for _ in range(3))))
    except ImportError:
        pass
    rows.append(("lossviz ece from logits", statistics.median(timed(lambda: ece(z, y, from_logits=True))[0] for _ in range(5))))
    rows.append(("lossviz ece equal-mass", statistics.median(timed(lambda: ece(p, y, strategy="quantile"))[0] for _ in range(5))))
    def stream():
        st = CalibrationStats(a.bins)
        for i in range(0, a.n, 100_000): st.update(z[i:i + 100_000], y[i:i + 100_000], from_logits=True)
        return st.ece()
    rows.append(("CalibrationStats (10 batches, logits)", statistics.median(timed(stream)[0] for _ in range(3))))
    rows.append(("fit_temperature (logits)", statistics.median(timed(lambda: fit_temperature(z, y))[0] for _ in range(3))))
    print(f"{'':<40}{'median ms':>10}")
    for name, t in rows: print(f"{name:<40}{1e3 * t:>10.1f}")
    if tm is not None:
        print(f"ratio lossviz / torchmetrics (median of per-rep ratios): {r:.2f} (target <= 0.7); "
              f"ratio of medians {statistics.median(to) / statistics.median(tt):.2f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
