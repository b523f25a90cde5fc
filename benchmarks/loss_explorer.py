"""How long a LossExplorer slider move takes to reach updated figure data, at the default resolution.

Run:  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 .venv/bin/python benchmarks/loss_explorer.py
Times, in one process, the whole Python side of a slider move: the ipywidgets callback (model → curves and simplex map →
figure → in-place `batch_update` of the FigureWidget), and the Panel callback (same model and figure → Plotly pane), with
the moved loss being the one shown on the simplex (the worst case: its curve and its simplex map are recomputed).
Each move sets a value never used before, so no cache helps. Target: < 100 ms. Also prints the breakdown.
"""
import argparse, statistics, time
import numpy as np
import torch
from lossviz.widgets.losses import LossExplorer, LossExplorerPanel, LossExplorerModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moves", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (2 = the machine's cores)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gammas = np.linspace(0.05, 9.95, a.moves * 4)  # distinct values: no cache hit
    ex = LossExplorer(["focal", "cross_entropy", "gce", "mae"])  # defaults: 201 points, C=10, 60x60 simplex; focal on the simplex
    m = ex.model
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"LossExplorer defaults: {len(m.selected)} losses, {m.points} points, C={m.num_classes}, simplex {m.resolution}x{m.resolution}")
    slider = ex.controls["focal"]["gamma"]
    ipy, i = [], 0
    for _ in range(3): slider.value = float(gammas[i]); i += 1  # warm-up
    for _ in range(a.moves):
        t0 = time.perf_counter(); slider.value = float(gammas[i]); ipy.append(time.perf_counter() - t0); i += 1
    assert ex.fig.data[0].name == f"focal (gamma={gammas[i - 1]:.3g})"
    # breakdown on the same model
    parts = {"curves": [], "simplex": [], "figure": []}
    for _ in range(a.moves):
        m.set_hparam("focal", "gamma", float(gammas[i])); i += 1
        t0 = time.perf_counter(); m.curves(); t1 = time.perf_counter(); m.simplex(); t2 = time.perf_counter(); m.figure(); t3 = time.perf_counter()
        parts["curves"].append(t1 - t0); parts["simplex"].append(t2 - t1); parts["figure"].append(t3 - t2)
    pp = LossExplorerPanel(LossExplorerModel(["focal", "cross_entropy", "gce", "mae"]))
    pslider, pan = pp.controls["focal"]["gamma"], []
    for _ in range(3): pslider.value = float(gammas[i]); i += 1
    for _ in range(a.moves):
        t0 = time.perf_counter(); pslider.value = float(gammas[i]); pan.append(time.perf_counter() - t0); i += 1
    med = lambda xs: 1e3 * statistics.median(xs)
    print(f"slider move -> FigureWidget updated in place (ipywidgets): median {med(ipy):.1f} ms, max {1e3 * max(ipy):.1f} ms over {a.moves} moves")
    print(f"slider move -> Plotly pane updated (Panel):               median {med(pan):.1f} ms, max {1e3 * max(pan):.1f} ms")
    print("breakdown (model only): " + ", ".join(f"{k} {med(v):.1f} ms" for k, v in parts.items()) + " (cached curves are reused)")
    print(f"target < 100 ms: {'met' if med(ipy) < 100 and med(pan) < 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
