"""Updates per second of the Playground while it trains (CPU, the default MLP: moons, 16-16 tanh, cross-entropy, Adam).

Run:  .venv/bin/python benchmarks/playground.py [--seconds 10] [--speed 200]
Goal (issue 13): at least 10 updates of the decision regions and loss curve per second on the CPU.

An *update* is a poll that found a new training snapshot and redrew the figure in the front end's Python side. Measured
three ways, each for --seconds while the trainer's thread trains at --speed steps/s:
  model   — `poll()` + `figure()` + `figure_json` every 0.1 s (what any front end does per tick);
  jupyter — a real `JupyterView` with its own polling thread (the explorer's interval, 0.08 s): figure states sent to the widget;
  panel   — a `PanelView`, its `_tick` called every 0.1 s (the periodic callback's body; no server).
Also: the bytes of one figure update, and the training steps per second the thread achieved.
Peer: the same live loop written without lossviz — scikit-learn's MLPClassifier (same widths and activation, Adam,
`partial_fit` on one mini-batch per step) trained synchronously in the loop, `predict_proba` on the same grid and a
plotly figure built with `go.Heatmap` + `go.Scatter` per update — its updates/s at the same steps per update.
The browser side (Plotly.react of a 50x50 heatmap) is not included; tests/browser/test_playground.py watches it live.
"""
import argparse, json, time, threading
import numpy as np
import torch


def _model_rate(seconds, speed):
    from lossviz.explorers.playground import Playground
    from lossviz.plots.style import figure_json
    pg = Playground(speed=speed)
    pg.act("start")
    c0 = time.process_time()
    n, t0, nbytes, build = 0, time.perf_counter(), [], []
    next_t = t0
    while time.perf_counter() - t0 < seconds:
        next_t += Playground.interval
        if pg.poll():
            a = time.perf_counter(); js = json.dumps(figure_json(pg.figure())); build.append(time.perf_counter() - a)
            nbytes.append(len(js)); n += 1
        time.sleep(max(0.0, next_t - time.perf_counter()))
    el = time.perf_counter() - t0
    cpu = time.process_time() - c0 # this process's CPU time (trainer thread + figures), whatever the machine's load
    steps = pg.trainer.step
    pg.act("pause")
    return n / el, steps / el, float(np.median(nbytes)), 1e3 * float(np.median(build)), 1e3 * cpu / max(n, 1)


def _jupyter_rate(seconds, speed):
    from lossviz.explorers.playground import Playground
    from lossviz.widgets.jupyter import JupyterView
    pg = Playground(speed=speed)
    jv = JupyterView(pg, autostart=False)
    count = [0]
    jv.plot.observe(lambda ch: count.__setitem__(0, count[0] + 1), "figure")
    pg.act("start"); jv.poller.start()
    t0 = time.perf_counter(); time.sleep(seconds); el = time.perf_counter() - t0
    pg.act("pause"); jv.close()
    return count[0] / el


def _panel_rate(seconds, speed):
    from lossviz.explorers.playground import Playground
    from lossviz.app.adapter import PanelView
    pg = Playground(speed=speed)
    pv = PanelView(pg, autostart=False)
    draws = [0]
    pv.pane.param.watch(lambda ev: draws.__setitem__(0, draws[0] + 1), "object")
    pg.act("start")
    t0 = time.perf_counter(); next_t = t0
    while time.perf_counter() - t0 < seconds:
        next_t += Playground.interval
        pv._tick()
        time.sleep(max(0.0, next_t - time.perf_counter()))
    el = time.perf_counter() - t0
    pg.act("pause")
    return draws[0] / el


def _peer_rate(seconds, steps_per_update):
    "scikit-learn MLPClassifier + plotly, trained synchronously in the display loop."
    import warnings
    import plotly.graph_objects as go
    from sklearn.neural_network import MLPClassifier
    from lossviz.explorers.playground import make_points
    x, y, *_ = make_points("moons")
    clf = MLPClassifier(hidden_layer_sizes=(16, 16), activation="tanh", solver="adam", learning_rate_init=0.03, batch_size=32, random_state=0)
    g = np.linspace(-1, 1, 50); lo, hi = x.min(0), x.max(0); c, h = (lo + hi) / 2, (hi - lo).max() / 2 * 1.15
    gx, gy = c[0] + h * g, c[1] + h * g
    grid = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    rng = np.random.default_rng(0)
    n, steps, t0 = 0, 0, time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while time.perf_counter() - t0 < seconds:
            for _ in range(steps_per_update):
                idx = rng.integers(len(x), size=32)
                clf.partial_fit(x[idx], y[idx], classes=[0, 1]); steps += 1
            p = clf.predict_proba(grid)[:, 1].reshape(50, 50)
            fig = go.Figure([go.Heatmap(x=gx, y=gy, z=p, zmin=0, zmax=1, colorscale="RdBu"),
                             go.Scatter(x=x[:, 0], y=x[:, 1], mode="markers", marker=dict(color=y))])
            fig.to_json(); n += 1
    el = time.perf_counter() - t0
    return n / el, steps / el


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--speed", type=int, default=200, help="the Playground's steps/s cap (its default)")
    ap.add_argument("--device", default="cpu", help="cpu only: the Playground trains on the CPU")
    a = ap.parse_args()
    if a.device != "cpu": raise SystemExit("device: the Playground trains on the CPU (a GPU launch per step would be slower for a 16-16 MLP)")
    print(f"torch {torch.__version__}, main-thread torch threads {torch.get_num_threads()}; default Playground (moons, 16-16 tanh, "
          f"cross_entropy, adam, batch 32), speed cap {a.speed} steps/s, {a.seconds:g} s each")
    import os
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine: wall-clock rates fall with the load)")
    rate, sps, nbytes, build_ms, cpu_ms = _model_rate(a.seconds, a.speed)
    print(f"model   : {rate:5.1f} updates/s   (trainer {sps:6.1f} steps/s; figure + JSON {build_ms:.1f} ms wall, {nbytes / 1000:.1f} kB per update)")
    print(f"          CPU time per update, training steps included: {cpu_ms:.1f} ms -> {1000 / cpu_ms:.1f} updates/s on one free core")
    jr = _jupyter_rate(a.seconds, a.speed)
    print(f"jupyter : {jr:5.1f} updates/s   (figure states sent to the widget by its own polling thread)")
    pr = _panel_rate(a.seconds, a.speed)
    print(f"panel   : {pr:5.1f} updates/s   (Plotly pane redraws from the periodic callback's body)")
    spu = max(1, round(sps / max(rate, 1e-9)))
    peer, peer_sps = _peer_rate(a.seconds, spu)
    print(f"peer    : {peer:5.1f} updates/s   (sklearn MLPClassifier partial_fit x{spu} + predict_proba + plotly, synchronous; {peer_sps:.1f} steps/s)")
    print(f"ratio lossviz/peer updates/s: model {rate / peer:.2f}x, jupyter {jr / peer:.2f}x, panel {pr / peer:.2f}x "
          f"(the peer blocks its loop while it trains; lossviz trains in a thread)")
    goal = min(rate, jr, pr)
    print(f"goal >= 10 updates/s: {'met' if goal >= 10 else 'NOT met'} (lowest {goal:.1f}/s)")


if __name__ == "__main__":
    main()
