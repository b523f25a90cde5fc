"""The generic front ends' building blocks: a control for every registered HParam in both front ends (ipywidgets and
Panel), slider ranges, the Poller, and the plot widget's state following its streamed points."""
import asyncio, math, threading, time
import numpy as np
import pytest
import plotly.graph_objects as go
from lossviz import losses
from lossviz.core import HParam
from lossviz.explorers.base import Control
from lossviz.widgets.jupyter import Poller, ExplorerWidget
from lossviz.app import adapter as P


class _Spec:
    "The Jupyter front end draws a control from its spec (in the browser): the spec is what to check here."
    def __init__(self, c): self.c = c
    @property
    def value(self): return self.c.value
    @property
    def min(self): return self.c.low
    @property
    def max(self): return self.c.high
    @property
    def step(self): return self.c.step


def hparam_widget(name, hp, backend="ipywidgets"):
    if not isinstance(hp, HParam): raise TypeError("hp: expected a lossviz.core.HParam")
    c = Control.from_hparam(name, hp)
    return _Spec(c) if backend == "ipywidgets" else P.control_widget(c)


def hparam_controls(hps, backend="ipywidgets"):
    return {k: hparam_widget(k, hp, backend) for k, hp in hps.items()}


def control_values(ctl):
    return {k: (w.value if isinstance(w, _Spec) else P.widget_value(w)) for k, w in ctl.items()}

ALL = [(n, k) for n in losses.names() for k in losses.spec(n).hparams]


@pytest.mark.parametrize("backend", ["ipywidgets", "panel"])
def test_every_registered_hparam_gets_a_control_at_its_default(backend):
    "Contract over the registry: each loss's HParams become controls whose values are the defaults and validate."
    assert ALL, "the registry has no hyperparameters at all"
    for name in losses.names():
        hps = losses.spec(name).hparams
        ctl = hparam_controls(hps, backend=backend)
        assert list(ctl) == list(hps)
        vals = control_values(ctl)
        for k, hp in hps.items():
            if hp.log and hp.choices is None and backend == "panel" and not hp.integer:
                assert math.isclose(vals[k], hp.default, rel_tol=1e-9), (name, k)
            else: assert vals[k] == hp.default, (name, k, vals[k], hp.default)
            hp.validate(vals[k], k)


def test_slider_ranges_match_bounds():
    hp = HParam(0.5, 0.1, 0.9, step=0.05)
    s = hparam_widget("m", hp)
    assert (s.min, s.max, s.step, s.value) == (0.1, 0.9, 0.05, 0.5)
    p = hparam_widget("m", hp, backend="panel")
    assert (p.start, p.end, p.step, p.value) == (0.1, 0.9, 0.05, 0.5)
    lg = hparam_widget("t", HParam(0.07, 0.01, 1.0, log=True))
    assert lg.c.log and (lg.min, lg.max) == (0.01, 1.0) and math.isclose(lg.value, 0.07)
    plg = hparam_widget("t", HParam(0.07, 0.01, 1.0, log=True), backend="panel")
    opts = np.array(plg.options)
    assert opts.min() >= 0.01 and opts.max() <= 1.0 and 0.07 in plg.options
    ratios = opts[1:] / opts[:-1]
    assert ratios.max() < 1.3 # log-spaced: every step is a similar factor, no big jumps


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="kind: expected one of"): Control("x", "slider", 1)
    with pytest.raises(TypeError, match="hparams: expected a dict"): P.hparam_controls([HParam(1.0)])
    with pytest.raises(ValueError, match="unknown hyperparameter"): P.hparam_controls({"a": HParam(1.0)}, values={"b": 2})


def test_poller_thread_keeps_calling_until_false_and_stops_on_error():
    n = []
    p = Poller(lambda: n.append(1) or len(n) < 4, interval=0.005, mode="thread").start()
    p._thread.join(5)
    assert len(n) == 4 and not p.running and p.calls == 4
    boom = Poller(lambda: {}["missing"], interval=0.005, mode="thread").start(); boom._thread.join(5)
    assert isinstance(boom.error, KeyError) and not boom.running


def test_poller_on_a_running_loop_never_blocks_it():
    "In asyncio mode the loop keeps serving other tasks between polls (the kernel stays usable)."
    async def main():
        polls, ticks = [], []
        p = Poller(lambda: polls.append(time.monotonic()) or len(polls) < 20, interval=0.01).start()
        assert p.kind == "asyncio"
        while p.running:
            ticks.append(1); await asyncio.sleep(0.001)
        return len(polls), len(ticks)
    polls, ticks = asyncio.run(main())
    assert polls == 20 and ticks > polls # other work ran in between


def test_poller_stop_from_inside_fn():
    box = {}
    def fn(): box["p"].stop(); return True
    box["p"] = p = Poller(fn, interval=0.005, mode="thread"); p.start(); time.sleep(0.1)
    assert not p.running and p.calls == 1


def test_explorer_widget_state_follows_streamed_points():
    "Streamed points are appended to the widget's own state in place (a reload gets them), NaN sent as null."
    w = ExplorerWidget({"data": [{"type": "scatter", "x": [0, 1], "y": [1.0, 2.0]}], "layout": {}})
    n = w.extend({0: (np.array([2, 3]), np.array([np.nan, 4.0]), False)})
    assert w.figure["data"][0]["x"] == [0, 1, 2, 3] and w.figure["data"][0]["y"] == [1.0, 2.0, None, 4.0]
    assert 0 < n < 200 and w.bytes_sent == n
    w.extend({0: (np.array([5]), np.array([5.0]), True)})
    assert w.figure["data"][0]["x"] == [5]
    assert w.extend({}) == 0
    assert w.lib is ExplorerWidget().lib # one plotly.js widget per kernel
    assert len(w.lib.source) > 1_000_000 and "Plotly" in w.lib.source[:2000]


def test_plotly_source_leaves_the_widget_state_once_a_page_has_it():
    "After a page reports plotly.js loaded (and cached), the kernel's widget state no longer carries the 4.8 MB bundle: a reload restores fast."
    import lossviz.widgets.jupyter as J
    saved = dict(J._LIB)
    try:
        J._LIB.pop("ready", None); J._LIB.pop("w", None)
        w = ExplorerWidget()
        assert len(w.lib.source) > 1_000_000 and w.plotly_version.startswith(__import__("plotly").__version__)
        sent = []
        w.send = lambda msg, buffers=None: sent.append(msg)
        w._on_browser_msg(w, {"type": "plotly_ready"}, [])
        assert w.lib.source == "" and ExplorerWidget().lib.source == "" # later widgets too: the page has it
        w._on_browser_msg(w, {"type": "need_plotly"}, []) # a page without the source or a cache still gets it
        assert sent[-1]["type"] == "plotly_source" and len(sent[-1]["source"]) > 1_000_000
        state = w.get_state()
        import json
        assert len(json.dumps(state)) < 50_000 and len(json.dumps(w.lib.get_state())) < 10_000 # its loader script, no bundle
    finally:
        J._LIB.clear(); J._LIB.update(saved)


def test_plotly_widget_answers_the_page_itself_and_preload_is_a_no_op_outside_a_kernel():
    "The page starts loading plotly.js from the PlotlyJS widget alone (before any figure): that widget answers its messages."
    import lossviz.widgets.jupyter as J
    saved = dict(J._LIB)
    try:
        J._LIB.pop("ready", None); J._LIB.pop("w", None)
        assert J.preload() is None and "w" not in J._LIB # a script, pytest, nbdev-test: nothing is made
        w = J.plotly_js()
        assert w.version == J.plotly_js_version() and len(w.source) > 1_000_000
        sent = []
        w.send = lambda msg, buffers=None: sent.append(msg)
        w._handle_custom_msg({"type": "need_plotly"}, [])
        assert sent[-1]["type"] == "plotly_source" and sent[-1]["source"] == J.plotly_js_source()
        w._handle_custom_msg({"type": "plotly_ready"}, [])
        assert w.source == "" and J._LIB["ready"]
    finally:
        J._LIB.clear(); J._LIB.update(saved)


def test_regroup_is_the_decimators_next_level():
    "One level coarser in the page (regroup_points, the same rule as the browser's JS) = min-max of every 4 display points (explorers.base._minmax), NaN/inf as gaps, ties to the earlier point."
    from lossviz.explorers.base import _minmax
    from lossviz.plots.style import json_safe
    from lossviz.widgets.jupyter import regroup_points
    rng = np.random.default_rng(0)
    for n in list(range(0, 12)) + [37, 400]:
        y = rng.choice([0.0, -0.0, 1.0, 2.0, np.nan, np.inf, -np.inf, 0.5, -3.0], size=n)
        x = np.arange(n) * 2 + 1
        gx, gy = _minmax(x[: n // 4 * 4], y[: n // 4 * 4], 4)
        assert regroup_points(json_safe(x), json_safe(y)) == (json_safe(gx), json_safe(gy)), n
    w = ExplorerWidget({"data": [{"x": [1, 2, 3, 4, 5], "y": [3.0, None, 1.0, 2.0, 9.0]}], "layout": {}})
    n = w.extend({0: (np.array([6, 7]), np.array([0.5, np.nan]), False, 1)}) # one level coarser, then two new points
    assert w.figure["data"][0]["x"] == [1, 3, 6, 7] and w.figure["data"][0]["y"] == [3.0, 1.0, 0.5, None] and n < 120
