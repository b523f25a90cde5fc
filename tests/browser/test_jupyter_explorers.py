"""The explorers in a real JupyterLab (headless system Chromium): every registered explorer renders with no error in its
output or the console, at its defaults and edge settings; re-running the README's Run + RunMonitor cell 20 times while
runs train never leaves a blank or stale figure; after a page reload with the kernel alive every figure is back within
5 s; at 800, 1200 and 1600 px the figures follow the output width and no title, axis title, legend, colour bar or
annotation overlaps another or is clipped. Screenshots go to screenshots/."""
import time
import pytest
import lossviz.explorers as E
from lossviz.store import RunStore
from conftest import SHOTS, wait_until
from jupyter_lab import Lab, overlaps, clipped

pytestmark = pytest.mark.browser

NAMES = sorted(E._WHERE)
SETUP = ("import lossviz, json\nimport lossviz.explorers as E\nfrom lossviz.widgets import RunMonitor, LossExplorer, GPWExplorer\n"
         "import warnings; warnings.simplefilter('default')")
# one cell per registered explorer (its example), then one that walks its edge cases through the same view
EXPLORER_CELLS = [f"ex_{n} = E.registered()[{n!r}].example(); ex_{n}" for n in NAMES]
EDGE_CELLS = [f"defaults = {{c.name: c.value for c in E.registered()[{n!r}].example().controls()}}\n"
              f"for edge in type(ex_{n}).edge_cases(): ex_{n}.set(**defaults); ex_{n}.set(**edge)\nex_{n}.set(**defaults)"
              for n in NAMES]
README = ('i = globals().get("i", 0) + 1\n'
          'run = lossviz.Run("mlp", "digits", epochs=40, lr=0.05, store="runs.sqlite", name=f"rerun-{i}").start()\n'
          "RunMonitor(run)")
# one live monitor's widget shown twice (as when one displays the same monitor in two cells): two views of one model.
# 300 epochs (~3 s on a quiet machine): 20 had ended before the monitor was shown, with no point left to stream
TWO_VIEWS = ('run2 = lossviz.Run("mlp", "digits", epochs=300, lr=0.05, store="runs.sqlite", name="two-views").start()\n'
             "v2 = RunMonitor(run2).jupyter(); display(v2); v2")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("lab"), [SETUP, *EXPLORER_CELLS, *EDGE_CELLS, README, TWO_VIEWS])
    yield lab
    lab.stop()


CONNECTED_JS = """() => { try { return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus === 'connected' }
                          catch (e) { return false } }"""


def _stderr(page) -> list:
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()


def _errors(tab) -> list:
    noisy = ("favicon", "Failed to load resource", "404", "lab/api/workspaces", "the server responded with a status of", "to activate.") # JupyterLab's own
    return [m for m in tab.console if m[0] in ("error", "pageerror", "warning") and not any(s in m[1] for s in noisy)
            and any(w in m[1].lower() for w in ("plotly", "widget", "anywidget", "lossviz", "comm", "json", "nan", "model"))]


# installed before JupyterLab starts (page.add_init_script): every message of the notebook's kernel connection that says
# which widget models exist (comm_open, comm_close, the control comm's states, comm_info replies), with the page's clock
WATCH_JS = """(() => { const W = (window.__lossvizWatch = window.__lossvizWatch || { log: [], hooked: null });
  const ce = console.error; console.error = function (...a) { W.log.push([performance.now(), 'page', 'console.error', '', String(a[0]).slice(0, 60)]); return ce.apply(this, a); };
  try { new PerformanceObserver((l) => l.getEntries().forEach((e) => { if (e.duration > 1000) W.log.push([e.startTime, 'page', 'long task', '', Math.round(e.duration)]); })).observe({ type: 'longtask' }); } catch (e) {}
  const tick = setInterval(() => { try {
    const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel; if (!k || W.hooked === k.id) return; W.hooked = k.id;
    k.anyMessage.connect((_, a) => { const m = a.msg, t = m.header.msg_type, d = (m.content && m.content.data) || {};
      if (t === 'comm_open' || t === 'comm_close') W.log.push([performance.now(), a.direction, t, m.content.comm_id, m.content.target_name || '']);
      else if (t === 'comm_msg' && (d.method === 'update_states' || d.method === 'request_states' || d.method === 'request_state'))
        W.log.push([performance.now(), a.direction, d.method, m.content.comm_id, d.states ? Object.keys(d.states) : '']);
      else if (t === 'comm_info_reply') W.log.push([performance.now(), a.direction, t, '', Object.keys(m.content.comms || {})]); });
  } catch (e) {} }, 5); })()"""
OUT_IDS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map((c) => { const o = [];
  for (let k = 0; c.model.outputs && k < c.model.outputs.length; k++) { const w = c.model.outputs.get(k).data['application/vnd.jupyter.widget-view+json']; if (w) o.push(w.model_id); }
  return o; })"""
KERNEL_WIDGETS = ("import json, comm, ipywidgets.widgets.widget as _w\ncm = comm.get_comm_manager()\n"
                  "print(json.dumps({'instances': {k: type(v).__name__ for k, v in _w._instances.items()}, "
                  "'comms': sorted(k for k, c in cm.comms.items() if getattr(c, 'target_name', '') == 'jupyter.widget')}))")

MNF_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map((c, i) => [i, c.node.innerText.includes('model not found')]).filter((x) => x[1]).map((x) => x[0])"""

def _diagnose(lab, page) -> str:
    "Which widget models the outputs name, which the kernel holds (ipywidgets' instances, open comms), what this page was told about them."
    import json
    try:
        outs = page.evaluate(OUT_IDS_JS); k = json.loads(lab.kernel_eval(page, KERNEL_WIDGETS) or "{}")
        inst, comms = k.get("instances", {}), set(k.get("comms", []))
        log = page.evaluate("() => (window.__lossvizWatch || {log: []}).log")
        opened = {e[3] for e in log if e[2] == "comm_open"}
        states = [set(e[4]) for e in log if e[2] == "update_states"]; infos = [set(e[4]) for e in log if e[2] == "comm_info_reply"]
        per_cell = [[(m[:6], m in inst, m in comms, m in opened, [m in s for s in states], [m in s for s in infos]) for m in o] for o in outs]
        summary = [(round(e[0]), e[1], e[2], e[3][:6], len(e[4]) if isinstance(e[4], list) else e[4]) for e in log if e[2] != "comm_open"]
        return (f"cells showing 'model not found': {page.evaluate(MNF_JS)}; outputs (id, in kernel instances, comm open, comm_open seen, "
                f"in each update_states, in each comm_info_reply): {per_cell}; kernel: {len(inst)} instances, {len(comms)} comms, "
                f"instances without a comm {[(m[:6], t) for m, t in inst.items() if m not in comms]}; comm_open seen: {len(opened)}; "
                f"other messages: {summary}; plotly.js load: {page.evaluate('() => globalThis.__lossvizPlotlyLoad || null')}")
    except Exception as e: return f"(diagnosis failed: {e})"


DRAWN_JS = """(i) => { const div = window.jupyterapp.shell.currentWidget.content.widgets[i].node.querySelector('.lossviz-plot-div');
  return div && Array.isArray(div.data) ? div.data.map((t) => [t.type || 'scatter', t.x ?? null, t.y ?? null, t.z ?? null]) : null; }"""

def _drawn_is_kernels(lab, page):
    """Every (non-live) explorer's drawn data in the page (each trace's type, x, y, z) equals its view's `figure` state in
    the kernel, and that state equals the explorer's figure now: control changes send patches of what changed (the
    state follows without a message), so a patch lost or misapplied, or a state left behind, shows here."""
    import json
    code = "import json\nout = {}\n" + "".join(
        f"v = [r() for r in ex_{n}._views if r() is not None and hasattr(r(), 'plot')]\n"
        f"out[{n!r}] = None if ex_{n}.live or not v else [v[0].plot.figure == v[0]._figure(), "
        f"[[t.get('type', 'scatter'), t.get('x'), t.get('y'), t.get('z')] for t in v[0].plot.figure['data']]]\n" for n in NAMES) + "print(json.dumps(out))"
    def differ():
        kernel, bad = json.loads(lab.kernel_eval(page, code)), []
        for k, n in enumerate(NAMES, 1):
            if kernel[n] is None: continue
            same_state, want = kernel[n]
            if not same_state: bad.append(f"{n}: the widget's figure state is not the explorer's figure")
            elif page.evaluate(DRAWN_JS, k) != want: bad.append(f"{n}: the page draws other data than the kernel's state")
        return bad, sum(v is not None for v in kernel.values())
    try: wait_until(lambda: not differ()[0], 30, 0.2, "the drawn data to equal the kernel's") # (a last drawing may be under way)
    except AssertionError: pass
    bad, checked = differ()
    assert not bad and checked >= 1, bad
    return checked


# per cell: how many of its outputs are widget views; and how many lossviz views it shows, whether one says 'model not found'
WIDGET_OUTPUTS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map((c) => { let n = 0;
  for (let k = 0; c.model.outputs && k < c.model.outputs.length; k++) if (c.model.outputs.get(k).data['application/vnd.jupyter.widget-view+json']) n++;
  return n; })"""
VIEWS_JS = """(i) => { const c = window.jupyterapp.shell.currentWidget.content.widgets[i].node;
  return [c.querySelectorAll('.lossviz-explorer').length, c.innerText.includes('model not found')]; }"""

def _restored(lab, tab) -> bool:
    """Whether the kernel already shows the explorers (an earlier test ran the cells); if so, wait until the page has
    restored them (the first explorer cell's figure drawn). Running a widget cell in a freshly opened page before that
    restore is done is a race in JupyterLab's widget manager: outputs whose models were still being restored were seen
    to end as 'Error displaying widget: model not found' (_diagnose: the kernel's states, with those models, had arrived
    0.6 s before; plotly.js was not being evaluated)."""
    page = tab.page
    if "True" not in lab.kernel_eval(page, f"print('ex_{NAMES[0]}' in globals())"): return False
    for attempt in (1, 2):
        page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[1].node.scrollIntoView()")
        first = wait_until(lambda: ("drawn" if _drawn(lab.plots(page, 1), 1) else "lost" if page.evaluate(VIEWS_JS, 1)[1] else None),
                           120, 0.05, "the plot(s) of cell 1, restored")
        if first != "lost": break
        # every output 'model not found' before any cell ran: JupyterLab's widget manager lost its restore from the
        # kernel (seen once in ~20 CI runs, on a machine loaded by other work: ipywidgets' restore race). A user reloads
        # the page; so does this test, once: a second loss fails
        assert attempt == 1, f"restored outputs show 'model not found' after a reload too: {_diagnose(lab, page)}"
        lost = [m for m in tab.console if "model not found" in m[1]]
        print(f"the restored outputs showed 'model not found' before any cell ran (JupyterLab's restore race; {len(lost)} "
              f"console errors, first: {lost[:1]}): reloading once")
        tab.console[:] = [m for m in tab.console if m not in lost] # the lost restore's errors, reported here; any later one still fails
        lab.open(page)
    # and every restored widget output has resolved its model (its view rendered), not only the first cell's: re-running
    # the README cell while later outputs (the edge cells') were still being restored made them end as 'model not found'
    # in one of three module runs. An output that shows 'model not found' here (after the reload above, if any) is a real failure
    for i, want in enumerate(page.evaluate(WIDGET_OUTPUTS_JS)):
        if not want: continue
        page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node.scrollIntoView()", i)
        def rendered():
            n, lost = page.evaluate(VIEWS_JS, i)
            assert not lost, f"cell {i}: a restored output shows 'model not found' before any cell ran: {_diagnose(lab, page)}"
            return n >= want
        wait_until(rendered, 120, 0.05, f"the restored widget views of cell {i}")
    return True


def _drawn(plots, n:int=1) -> bool:
    "Whether at least `n` plots (`lab.plots`) are drawn with data."
    return bool(plots) and len(plots) >= n and all(q["renders"] >= 1 and q["svg"] and q["points"] > 0 for q in plots)

def _wait_plots(lab, page, i, n=1, timeout=60):
    "Wait for the plot(s) of cell i to be drawn with data (the first drawing already has it: the widget opens with its figure)."
    return wait_until(lambda: (p := lab.plots(page, i)) and _drawn(p, n) and p, timeout, 0.05, f"the plot(s) of cell {i}")


def test_every_explorer_renders_without_errors_then_survives_a_reload(lab, tab):
    page = tab.page
    page.add_init_script(WATCH_JS); lab.open(page)
    lab.run_and_wait(page, 0)
    for k, name in enumerate(NAMES, 1):
        t0 = time.monotonic(); lab.run_cell(page, k)
        plots = _wait_plots(lab, page, k)
        print(f"{name}: drawn with data {time.monotonic() - t0:.2f} s after its cell ran (first drawing: renders={plots[0]['renders']})")
        assert plots[0]["points"] > 0, (name, plots)
        lab.wait_idle(page)
    for k, name in enumerate(NAMES, 1 + len(NAMES)):
        lab.run_and_wait(page, k) # edge settings go through the displayed views
    time.sleep(1.0)
    for k in range(1, 1 + len(NAMES)): assert lab.plots(page, k)[0]["points"] > 0
    print("explorers whose drawn data equal the kernel's after their edge cases:", _drawn_is_kernels(lab, page))
    # a move that changes only curves' y arrays (LossExplorer's classes C) is drawn by replacing those arrays (Plotly.animate)
    k = 1 + NAMES.index("LossExplorer")
    lab.kernel_eval(page, "ex_LossExplorer.set(num_classes=13)")
    kind = "(i) => (window.jupyterapp.shell.currentWidget.content.widgets[i].node.querySelector('.lossviz-plot-div').__lossvizDraw || {}).kind"
    wait_until(lambda: page.evaluate(kind, k) == "arrays", 30, 0.05, "the arrays-only drawing")
    # and every other trace is still drawn (plotly's animate clears the traces it was not given from their subplots: the
    # view draws them again): one heatmap image per heatmap trace, one scatter group per scatter trace
    layers = ("(i) => { const d = window.jupyterapp.shell.currentWidget.content.widgets[i].node.querySelector('.lossviz-plot-div');"
              " return [d.querySelectorAll('.hm image').length, d.data.filter((t) => t.type === 'heatmap').length,"
              " d.querySelectorAll('.scatterlayer .trace').length, d.data.filter((t) => (t.type || 'scatter') === 'scatter').length]; }")
    hm, n_hm, sc, n_sc = page.evaluate(layers, k)
    assert (hm, sc) == (n_hm, n_sc) and n_hm == 1, (hm, n_hm, sc, n_sc)
    _drawn_is_kernels(lab, page)
    # models anywidget had given up on (2 s to initialise on a busy page) whose messages the view routed past that check
    print("views revived:", page.evaluate("() => globalThis.__lossvizRevived || 0"))
    assert _stderr(page) == [], _stderr(page)
    assert _errors(tab) == [], _errors(tab)
    tab.shot("jupyter-explorers")
    # reload with the kernel alive: every figure is back within 5 s of the notebook showing. The notebook is saved first
    # (as JupyterLab's autosave or the user does): a reload shows the saved outputs, which name the widgets to restore
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    wait_until(lambda: page.evaluate("() => !window.jupyterapp.shell.currentWidget.context.model.dirty"), 60, 0.1, "the notebook saved")
    t_reload = time.monotonic()
    page.reload()
    page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
    # widgets can only come back once the page has its kernel again: time from there (JupyterLab's own start-up before it
    # is not the explorers'; on this 2-core machine it alone took 6-13 s)
    wait_until(lambda: page.evaluate(CONNECTED_JS), 60, 0.02, "the kernel to be connected again")
    t0 = time.monotonic()
    for k, name in enumerate(NAMES, 1):
        page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node.scrollIntoView()", k)
        _wait_plots(lab, page, k, timeout=120)
    took = time.monotonic() - t0
    print(f"figures back {took:.2f} s after the kernel connected ({time.monotonic() - t_reload:.1f} s after the reload)")
    # (tests never assert times: the 5 s goal is measured by benchmarks/jupyter_latency.py; here the bound is the wait above)
    for k in range(1, 1 + len(NAMES)): assert lab.plots(page, k)[0]["points"] > 0
    _drawn_is_kernels(lab, page) # the restored state is the current figure, not the one the widget opened with
    assert not page.locator("text=model not found").count() # JupyterLab's renderer did not give up on any output
    if _errors(tab): print("after the reload:", _diagnose(lab, page))
    tab.shot("jupyter-explorers-after-reload")
    assert _errors(tab) == [], _errors(tab)


@pytest.mark.parametrize("width", [800, 1200, 1600])
def test_figures_follow_the_width_and_nothing_overlaps(lab, tab, width):
    page = tab.page
    page.set_viewport_size({"width": width, "height": 1000})
    page.add_init_script(WATCH_JS); lab.open(page)
    # the file browser closed, as one works at 800 px: the notebook gets the window's width
    page.evaluate("() => { if (!window.jupyterapp.shell.leftCollapsed) window.jupyterapp.commands.execute('application:toggle-left-area'); }")
    # a fresh kernel (the first test not run): show the explorers. Otherwise the page restores them from the kernel. (This
    # asked `lab.plots(page, 1)` right after the notebook opened, before JupyterLab had restored the widgets, so every
    # width re-ran the explorer cells while the restore was under way: 7 more explorers and a training run in the kernel
    # per width, and the restored edge cells' views then failed with 'model not found' -- see _diagnose, below)
    if not _restored(lab, tab):
        lab.run_and_wait(page, 0)
        for k in range(1, 1 + len(NAMES)): lab.run_and_wait(page, k)
    bad = {} # explorer -> what is wrong (all explorers are checked, then the test fails listing every problem)
    for k, name in enumerate(NAMES, 1):
        page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node.scrollIntoView()", k)
        plots = _wait_plots(lab, page, k, timeout=60)
        time.sleep(0.3) # let a resize settle
        p = lab.plots(page, k)[0]
        if not p["width"] > 0.45 * p["output"]: bad.setdefault(name, []).append(("narrow", p)) # the figure fills its side of the output
        for b in lab.boxes(page, k):
            if overlaps(b["parts"]): bad.setdefault(name, []).append(("overlap", overlaps(b["parts"])))
            if clipped(b["parts"], b["svg"]): bad.setdefault(name, []).append(("clipped", clipped(b["parts"], b["svg"])))
            if b["plot"][2] > page.viewport_size["width"] + 1: bad.setdefault(name, []).append(("cut at the window's edge", b["plot"]))
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(".jp-Cell").nth(k).screenshot(path=str(SHOTS / f"jupyter-{name}-{width}.png"))
    for name, what in bad.items(): print(f"{width}px {name}: {what}")
    # (restore_ms > 0: plotly.js was evaluated only after JupyterLab had restored the widget models, see _LOADER_JS)
    print(f"{width}px: plotly.js load in this page:", page.evaluate("() => globalThis.__lossvizPlotlyLoad || null"))
    if _errors(tab): print(f"{width}px:", _diagnose(lab, page))
    assert bad == {}, bad
    assert _errors(tab) == [], _errors(tab)


# (before the 20 re-runs below: their ~72 widget models left in the kernel made JupyterLab's restore of a freshly opened
# page end in 'model not found' for cells 7-14 in 3 of 3 fresh-clone CIs on a slow VM -- the states arrived, model
# creation failed: _diagnose; a reload or a kernel restart from the page did not help)
TWO_VIEWS_JS = """(i) => [...window.jupyterapp.shell.currentWidget.content.widgets[i].node.querySelectorAll('.lossviz-plot-div')].map((d) =>
  [Array.isArray(d.data) ? d.data.map((t) => [t.x ?? null, t.y ?? null]) : null,
   d.__lossvizState ? (d.__lossvizState().data || []).map((t) => [t.x ?? null, t.y ?? null]) : null])"""

def test_two_views_of_one_live_monitor_draw_and_hold_the_kernels_points(lab, tab):
    """Streamed points ("extend" messages) reach each view of a widget once and the page's copy of its figure once (a copy
    a later view or a reload draws from): with two views of one live monitor, each view's drawn x/y and the page's copy
    equal the kernel's figure state once the run has ended (per view, the copy got every point twice)."""
    import json
    page = tab.page
    page.add_init_script(WATCH_JS); lab.open(page)
    _restored(lab, tab)
    lab.run_and_wait(page, 0)
    cell = 2 + 2 * len(NAMES)
    lab.run_cell(page, cell)
    _wait_plots(lab, page, cell, n=2, timeout=120)
    code = ("import json\nprint(json.dumps([v2.explorer.done and not v2.poller.running, v2.plot.bytes_sent, "
            "[[t.get('x'), t.get('y')] for t in v2.plot.figure['data']]]))")
    wait_until(lambda: json.loads(lab.kernel_eval(page, code))[0], 300, 0.5, "the monitored run to end and its view to stop polling")
    ended, streamed, want = json.loads(lab.kernel_eval(page, code))
    assert streamed > 0 and sum(len(x or []) for x, _ in want) > 0 # points were streamed to the page, not only the first figure
    def differ():
        views = page.evaluate(TWO_VIEWS_JS, cell)
        return [f"view {k}: {what}" for k, (drawn, state) in enumerate(views)
                for what, got in (("drawn", drawn), ("page's copy", state)) if got != want] + ([] if len(views) == 2 else ["not two views"])
    try: wait_until(lambda: not differ(), 30, 0.2, "both views and the page's copy to hold the kernel's points") # (last messages)
    except AssertionError: pass
    if differ():
        for k, (drawn, state) in enumerate(page.evaluate(TWO_VIEWS_JS, cell)):
            print(f"view {k}: drawn {None if drawn is None else len(drawn)} traces, copy {None if state is None else len(state)}, kernel {len(want)}; drawn {str(drawn)[:300]}")
            for j, (a, b) in enumerate(zip(drawn or [], want)):
                if a != b: print(f"view {k} trace {j}: drawn {[len(v or []) for v in a]} {[(v or [])[:6] for v in a]} kernel {[len(v or []) for v in b]} {[(v or [])[:6] for v in b]}")
    assert differ() == [], differ()
    assert _errors(tab) == [], _errors(tab)


def test_rerunning_run_and_monitor_20_times_never_blank_or_stale(lab, tab):
    page = tab.page
    page.add_init_script(WATCH_JS); lab.open(page)
    _restored(lab, tab) # (the module's other tests ran the explorers: the page restores them first, see _restored)
    lab.run_and_wait(page, 0)
    cell = 1 + 2 * len(NAMES) # the README cell
    titles = []
    for i in range(1, 21):
        lab.run_cell(page, cell)
        # the new monitor shows the new run's curves (its name in the title), soon and without a blank figure
        def fresh():
            p = lab.plots(page, cell)
            return len(p) == 1 and p[0]["renders"] >= 1 and p[0]["svg"] and f"rerun-{i}" in p[0]["title"] and p
        try: p = wait_until(fresh, 120, 0.05, f"the monitor of re-run {i}")
        except AssertionError: print(_diagnose(lab, page)); raise
        titles.append(p[0]["title"])
        if i % 5 == 0: # and its points grow while the run trains
            n0 = p[0]["points"]
            wait_until(lambda: lab.plots(page, cell)[0]["points"] > n0, 180, 0.1, f"points to grow in re-run {i}")
    if _errors(tab): print(_diagnose(lab, page))
    tab.shot("jupyter-rerun-20")
    store = RunStore(lab.root / "runs.sqlite")
    assert len([r for r in store.runs() if r["name"].startswith("rerun-")]) == 20
    assert _stderr(page) == [], _stderr(page)
    assert _errors(tab) == [], _errors(tab)
