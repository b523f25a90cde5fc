"""Time to visible and slider-move-to-update of the explorers in a real JupyterLab (headless system Chromium), next to
the numbers issue 8 reported for the old FigureWidget explorers; plus the bytes one live update sends for a 200-point
and a 20,000-point run (in-process). The same page also times the other rendering paths that were considered: plotly's
`go.FigureWidget` and Panel's Plotly pane, both showing the LossExplorer's figure.

    .venv/bin/python benchmarks/jupyter_latency.py [--repeats 5] [--skip-candidates]

Time to visible: from the cell's execution request to the plot drawn in the page (its svg present, with data), warm
kernel (torch and lossviz imported). Slider: the "classes C" slider of LossExplorer moved in the page, to the redrawn
figure (median of `--repeats`)."""
import argparse, os, statistics, sys, tempfile, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

TODAY = {"RunMonitor": "9–17 s", "LossExplorer": "6–15 s", "GPWExplorer": "26 s", "slider": "(not reported)"}

SETUP = ("import torch, lossviz, numpy as np\nfrom lossviz.widgets import LossExplorer, GPWExplorer, RunMonitor\n"
         "run = lossviz.Run('mlp', 'digits', epochs=200, lr=0.05, store='runs.sqlite', name='bench').start()")
CELLS = {"LossExplorer": "LossExplorer()", "GPWExplorer": "GPWExplorer()", "RunMonitor": "RunMonitor(run)"}
CANDIDATES = {"FigureWidget (LossExplorer figure)": "import plotly.graph_objects as go\ngo.FigureWidget(LossExplorer().figure())",
              "Panel pane (LossExplorer view)": "import panel as pn\npn.extension('plotly')\nLossExplorer().panel().view"}

SLIDER_JS = """(args) => {
  const [i, v] = args;
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[i].node;
  const row = cell.querySelector('.lossviz-control[data-name="num_classes"] input');
  row.value = String(v); const t0 = performance.now(); window.__lossvizT0 = t0;
  row.dispatchEvent(new Event('change')); return t0; }"""
CONNECTED_JS = """() => { try { return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus === 'connected' }
                          catch (e) { return false } }"""
# every message of the notebook's kernel connection, with the page's clock and the kernel's own (header.date, wall clock):
# splits a cell's time to visible into waiting for the kernel, the kernel's work, the transport and the page's work
HOOK_JS = """() => { const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel; window.__lossvizMsgs = [];
  if (window.__lossvizHooked === k) return; window.__lossvizHooked = k;
  k.anyMessage.connect((_, a) => { const m = a.msg; let n = 0; if (m.header.msg_type === 'comm_open') try { n = JSON.stringify(m.content).length; } catch (e) {}
    const d = m.content && m.content.data; let size = 0;
    if (m.header.msg_type === 'comm_msg' && d && ((d.state && d.state.figure) || (d.method === 'custom' && d.content && d.content.type === 'patch'))) {
      n = -1; try { size = JSON.stringify(d).length; } catch (e) {} } // a figure update: the whole figure, or a patch of what changed
    (window.__lossvizMsgs = window.__lossvizMsgs || []).push([performance.now(), a.direction, m.header.msg_type, Date.parse(m.header.date) - performance.timeOrigin, n, size]); }); }"""
# the last drawing of the explorer in cell i, by that view itself (a global would also see another view's draw, e.g. a
# live RunMonitor's stream update, or a later draw): {kind, set, arrived, start, done} on the page clock
DRAW_JS = """(i) => { const cell = window.jupyterapp.shell.currentWidget.content.widgets[i].node;
  const div = cell.querySelector('.lossviz-plot-div'); return (div && div.__lossvizDraw) || null; }"""
ANY_PLOT_JS = """(i) => { const cell = window.jupyterapp.shell.currentWidget.content.widgets[i].node;
  const walk = (root) => { for (const el of root.querySelectorAll('*')) { if (el.classList && el.classList.contains('js-plotly-plot')
      && el.querySelector('.main-svg') && (el.data || []).length) return true; if (el.shadowRoot && walk(el.shadowRoot)) return true; } return false; };
  return walk(cell); }"""


def bytes_per_update() -> dict:
    """Median, mean and max bytes of one live update (10 new points per curve, 30 updates) for a 200- and a 20,000-point run,
    and for a 15,900-point run whose updates cross 16,000 points, where the decimation bucket doubles (a level change);
    each run first read to its end (catching up is not a live update)."""
    import numpy as np
    from lossviz.store import RunStore
    from lossviz.explorers.runs import RunMonitor
    from lossviz.widgets.jupyter import JupyterView
    out, tmp = {}, Path(tempfile.mkdtemp())
    for n in (200, 20_000, 15_900):
        store = RunStore(tmp / f"{n}.sqlite"); rid = store.create_run(f"{n}"); store.set_status(rid, "running")
        store.log_scalars(rid, [(s, None, k, 1 + np.sin(s / 50)) for s in range(1, n + 1) for k in ("train/loss", "train/acc")])
        view, sizes = JupyterView(RunMonitor(rid, store), autostart=False), []
        while view.explorer.poll(): view.explorer.changed()
        ep0 = view.explorer.streams()[0][2]
        for k in range(30):
            s0 = n + 10 * k
            store.log_scalars(rid, [(s, None, key, 1.0) for s in range(s0 + 1, s0 + 11) for key in ("train/loss", "train/acc")])
            b = view.plot.bytes_sent; view._tick(); sizes.append(view.plot.bytes_sent - b)
        out[n] = (statistics.median(sizes), statistics.mean(sizes), max(sizes), len(view.plot.figure["data"][0]["x"]),
                  view.explorer.streams()[0][2] - ep0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-candidates", action="store_true", help="time only lossviz's own view")
    a = ap.parse_args()
    from conftest import CHROMIUM_FLAGS, chromium_path, wait_until
    from jupyter_lab import Lab
    from playwright.sync_api import sync_playwright
    load0 = os.getloadavg()
    names = list(CELLS) + ([] if a.skip_candidates else list(CANDIDATES))
    cells = [SETUP] + [CELLS.get(n) or CANDIDATES[n] for n in names] + [CELLS["LossExplorer"]] * 2
    lab = Lab(Path(tempfile.mkdtemp()), cells, "bench.ipynb")
    res = {}
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)
            page = b.new_page(viewport={"width": 1440, "height": 1000}); page.set_default_timeout(120_000)
            lab.open(page)
            lab.run_and_wait(page, 0, 300) # warm kernel: torch and lossviz imported, a run training
            res["plotly_ahead"] = page.evaluate("() => globalThis.__lossvizPlotlyLoad || null") # loaded during the import cell?
            parts, kparts = {}, {}
            def visible(k, name):
                page.evaluate(HOOK_JS); page.evaluate("() => { window.__lossvizMsgs = []; }")
                t0 = time.perf_counter(); lab.run_cell(page, k)
                wait_until(lambda: page.evaluate(ANY_PLOT_JS, k), 120, 0.02, f"{name} to show")
                res[name] = time.perf_counter() - t0
                # where the time went (page clock): cell started -> the view began to render (kernel builds the figure,
                # widget state travels, the model is made) -> plotly.js ready -> first drawing done
                c0, f = page.evaluate("() => [window.__lossvizT0, globalThis.__lossvizFirstDraw || null]")
                if f: parts[name] = (f["render"] - c0, f["plotly"] - f["render"], f["done"] - f["plotly"])
                lab.wait_idle(page)
                # the part before the view renders: page clock of the request, kernel clock of its start (execute_input) and
                # of the widget's comm_open (the figure built), page clock of that comm_open's arrival
                msgs = page.evaluate("() => window.__lossvizMsgs || []")
                ki = next((m for m in msgs if m[2] == "execute_input"), None)
                op = max((m for m in msgs if m[2] == "comm_open"), key=lambda m: m[4], default=None)
                if f and ki and op: kparts[name] = (ki[3] - c0, op[3] - ki[3], op[0] - op[3], f["render"] - op[0], op[4])
            for k, name in enumerate(names, 1): visible(k, name)
            # warm again: a second LossExplorer (plotly.js already in the page)
            k = len(names) + 1
            visible(k, "LossExplorer (again)")
            lat, split = [], []
            kslider, kinds, sizes = [], [], []
            for r in range(a.repeats):
                page.evaluate("() => { window.__lossvizMsgs = []; }")
                t0 = page.evaluate(SLIDER_JS, [k, 11 + r])
                wait_until(lambda: ((page.evaluate(DRAW_JS, k) or {}).get("set") or 0) >= t0, 120, 0.005, "the redraw")
                d = page.evaluate(DRAW_JS, k) # this view's own drawing for this move
                lat.append(d["done"] - t0); kinds.append(d["kind"])
                split.append((d["arrived"] - d["set"], d["start"] - d["arrived"], d["done"] - d["start"]))
                msgs = page.evaluate("() => window.__lossvizMsgs || []")
                snd = next((m for m in msgs if m[1] == "send" and m[2] == "comm_msg"), None)
                upd = next((m for m in msgs if m[1] == "recv" and m[2] == "comm_msg" and m[4] == -1), None)
                if d and snd and upd: kslider.append((upd[3] - snd[0], upd[0] - upd[3], d["arrived"] - upd[0])); sizes.append(upd[5])
                time.sleep(0.2)
            res["slider"] = statistics.median(lat) / 1000
            res["slider_split"] = [statistics.median(s[j] for s in split) for j in range(3)] if split else None
            res["slider_kernel"] = [statistics.median(s[j] for s in kslider) for j in range(3)] if kslider else None
            res["slider_kinds"], res["slider_bytes"] = kinds, (statistics.median(sizes) if sizes else None)
            res["slider_each"] = lat
            # what the last move drew (classes C = 15), to look at: the curves replaced in place, legend and simplex unchanged
            page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node.scrollIntoView()", k)
            (ROOT / "screenshots").mkdir(exist_ok=True); page.screenshot(path=str(ROOT / "screenshots" / "bench-slider-after.png"))
            res["plotly"] = page.evaluate("() => globalThis.__lossvizPlotlyLoad || null")
            # a page reload with the kernel alive: from the kernel connected again to every figure drawn (the notebook saved first)
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            wait_until(lambda: page.evaluate("() => !window.jupyterapp.shell.currentWidget.context.model.dirty"), 60, 0.1, "saved")
            page.reload(); page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
            wait_until(lambda: page.evaluate(CONNECTED_JS), 120, 0.02, "the kernel connected again")
            t0 = time.perf_counter()
            try:
                for k in range(1, len(names) + 2): # the cells that were run (the last one never is)
                    page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node.scrollIntoView()", k)
                    wait_until(lambda: page.evaluate(ANY_PLOT_JS, k), 120, 0.02, f"cell {k} after the reload")
                res["reload"] = time.perf_counter() - t0
            except AssertionError as e: # report what the cell shows instead, and go on to the other numbers
                res["reload"] = float("nan")
                res["reload_problem"] = f"{e}: " + page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node.innerText.slice(0, 200)", k)
                page.screenshot(path=str(ROOT / "screenshots" / "bench-reload-problem.png"))
            res["plotly_reload"] = page.evaluate("() => globalThis.__lossvizPlotlyLoad || null")
            b.close()
    finally: lab.stop()
    by = bytes_per_update()
    print(f"\nJupyterLab 4 in headless Chromium, warm kernel (torch + lossviz imported, a run training), {a.repeats} slider moves\n")
    print(f"{'what':40s} {'lossviz now':>12s}   today (issue 8)")
    for n in ("LossExplorer", "GPWExplorer", "RunMonitor", "LossExplorer (again)"):
        sp = parts.get(n)
        sp = f"   [cell run -> view renders {sp[0] / 1000:.2f} s, plotly.js wait {sp[1] / 1000:.2f} s, first drawing {sp[2] / 1000:.2f} s]" if sp else ""
        print(f"{n + ' time to visible':40s} {res[n]:10.2f} s   {TODAY.get(n.split()[0], ''):16s}{sp}")
        if n in kparts:
            q, kw, tr, pg, nb = kparts[n]
            print(f"{'':40s}    before it renders: to the kernel {q:.0f} ms, kernel builds the view {kw:.0f} ms, its state "
                  f"({nb / 1e3:.0f} kB) to the page {tr:.0f} ms, page makes the model and view {pg:.0f} ms")
    ss = res["slider_split"]
    ss = f"   [to the kernel and back {ss[0]:.0f} ms, queued {ss[1]:.0f} ms, Plotly.react {ss[2]:.0f} ms]" if ss else ""
    print(f"{'slider move to updated figure':40s} {1000 * res['slider']:9.0f} ms   {TODAY['slider']:16s}{ss}")
    print(f"{'':40s}    each move: {', '.join(f'{x:.0f}' for x in res['slider_each'])} ms; drawn as {sorted(set(res['slider_kinds']))}; "
          f"the kernel's update message {res['slider_bytes'] or 0:.0f} B (median)")
    if res.get("slider_kernel"):
        a_, b_, c_ = res["slider_kernel"]
        print(f"{'':40s}    the round trip: the move to the kernel + its new figure sent {a_:.0f} ms, that figure to the page {b_:.0f} ms, "
              f"page parses it and hands it to the view {c_:.0f} ms")
    print(f"{'page reload: every figure back':40s} {res['reload']:10.2f} s   (blank: 'Failed to initialize model'; {len(names) + 1} figures, from the kernel connected)")
    if "reload_problem" in res: print("page reload problem:", res["reload_problem"])
    print(f"plotly.js in the page: loaded when the import cell was done: {res['plotly_ahead']}; first load {res['plotly']}; after the reload {res['plotly_reload']}")
    for n in CANDIDATES:
        if n in res: print(f"{'candidate: ' + n:40s} {res[n]:10.2f} s   (first display, same page)")
    for n, (med, mean, mx, shown, levels) in by.items():
        print(f"{'bytes per live update, %d-point run' % n:40s} {med:10.0f} B median, {mean:.0f} B mean, {mx} B max   "
              f"({shown} points displayed per curve; {levels} decimation-level change(s) in the 30 updates)")
    for n in (20_000, 15_900):
        print(f"ratio of bytes per update, {n:,} / 200 points: median {by[n][0] / by[200][0]:.2f}, mean {by[n][1] / by[200][1]:.2f}, max {by[n][2] / by[200][2]:.2f}")
    print(f"load average (1, 5, 15 min) at the start {tuple(round(x, 1) for x in load0)}, at the end {tuple(round(x, 1) for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__": main()
