"""How long a LossExplorer slider move takes to reach updated figure data, at the default resolution (Python side).

Run:  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 .venv/bin/python benchmarks/loss_explorer.py
Times, in one process, the whole Python side of a slider move through each front end: the Jupyter view (explorer.set →
curves and simplex map → figure → figure JSON into the widget's state) and the Panel view (the same explorer and figure →
Plotly pane), with the moved loss being the one shown on the simplex (the worst case: its curve and its simplex map are
recomputed). Each move sets a value never used before, so no cache helps. Target: < 100 ms. Also prints the breakdown.
The browser side (message, Plotly.react) is measured by benchmarks/jupyter_latency.py in a real JupyterLab.
"""
import argparse, statistics, time
import numpy as np
import torch
from lossviz.explorers import LossExplorer
from lossviz.widgets.jupyter import JupyterView
from lossviz.app.adapter import PanelView
from lossviz.plots.style import figure_json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moves", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (2 = the machine's cores)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gammas = np.linspace(0.05, 9.95, a.moves * 4)  # distinct values: no cache hit
    LOSSES = ["focal", "cross_entropy", "gce", "mae"]
    ex = LossExplorer(LOSSES)  # defaults: 201 points, C=10, 60x60 simplex; focal on the simplex
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"LossExplorer defaults: {len(ex.losses)} losses, {ex.points} points, C={ex.num_classes}, simplex {ex.resolution}x{ex.resolution}")
    jv = JupyterView(ex)
    slider = jv.controls["focal.gamma"]
    ipy, i = [], 0
    for _ in range(3): slider.value = float(gammas[i]); i += 1  # warm-up
    for _ in range(a.moves):
        t0 = time.perf_counter(); slider.value = float(gammas[i]); ipy.append(time.perf_counter() - t0); i += 1
    assert jv.plot.figure["data"][0]["name"] == f"focal (gamma={gammas[i - 1]:.3g})"
    parts = {"curves": [], "simplex": [], "figure": [], "figure JSON": []}
    for _ in range(a.moves):
        ex.values["focal"]["gamma"] = float(gammas[i]); i += 1
        t0 = time.perf_counter(); ex.curves(); t1 = time.perf_counter(); ex.simplex(); t2 = time.perf_counter(); f = ex.figure(); t3 = time.perf_counter()
        figure_json(f); t4 = time.perf_counter()
        parts["curves"].append(t1 - t0); parts["simplex"].append(t2 - t1); parts["figure"].append(t3 - t2); parts["figure JSON"].append(t4 - t3)
    ex2 = LossExplorer(LOSSES); pv = PanelView(ex2)
    pslider, pan = pv.controls["focal.gamma"], []
    for _ in range(3): pslider.value = float(gammas[i]); i += 1
    for _ in range(a.moves):
        t0 = time.perf_counter(); pslider.value = float(gammas[i]); pan.append(time.perf_counter() - t0); i += 1
    med = lambda xs: 1e3 * statistics.median(xs)
    print(f"slider move -> Jupyter view's state updated:  median {med(ipy):.1f} ms, max {1e3 * max(ipy):.1f} ms over {a.moves} moves")
    print(f"slider move -> Panel Plotly pane updated:     median {med(pan):.1f} ms, max {1e3 * max(pan):.1f} ms")
    print("breakdown: " + ", ".join(f"{k} {med(v):.1f} ms" for k, v in parts.items()) + " (cached curves are reused)")
    print(f"target < 100 ms: {'met' if med(ipy) < 100 and med(pan) < 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
