"""lossviz.widgets.base: controls generated for every registered loss, the Poller, sync_figure."""
import asyncio, math, threading, time
import numpy as np
import pytest
import plotly.graph_objects as go
from lossviz import losses
from lossviz.core import HParam
from lossviz.widgets.base import Poller, captured, control_values, hparam_controls, hparam_widget, sync_figure

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
    assert lg.base == 10 and math.isclose(lg.min, -2) and math.isclose(lg.max, 0) and math.isclose(lg.value, 0.07)
    plg = hparam_widget("t", HParam(0.07, 0.01, 1.0, log=True), backend="panel")
    opts = np.array(plg.options)
    assert opts.min() >= 0.01 and opts.max() <= 1.0 and 0.07 in plg.options
    ratios = opts[1:] / opts[:-1]
    assert ratios.max() < 1.3 # log-spaced: every step is a similar factor, no big jumps


def test_bad_arguments_name_themselves():
    with pytest.raises(TypeError, match="hp: expected a lossviz.core.HParam"): hparam_widget("x", 3)
    with pytest.raises(ValueError, match="backend"): hparam_widget("x", HParam(1.0, 0, 2), backend="qt")
    with pytest.raises(TypeError, match="hparams: expected a dict"): hparam_controls([HParam(1.0)])


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


def test_captured_propagates_without_kernel():
    class X:
        import ipywidgets as W
        out = W.Output()
        @captured
        def cb(self): raise RuntimeError("visible")
    with pytest.raises(RuntimeError, match="visible"): X().cb()


def test_sync_figure_in_place_keeps_object_and_uids():
    fw = go.FigureWidget(go.Figure([go.Scatter(x=[0], y=[0]), go.Scatter(x=[0], y=[1])]))
    uids = [t.uid for t in fw.data]
    src = go.Figure([go.Scatter(x=[0, 1, 2], y=[3, 4, 5], mode="markers"), go.Scatter(x=[1], y=[1], name="b")],
                    layout={"xaxis": {"title": {"text": "step"}}})
    assert sync_figure(fw, src) is fw
    assert [t.uid for t in fw.data] == uids # traces updated, not replaced
    assert fw.data[0].y == (3, 4, 5) and fw.data[0].mode == "markers" and fw.data[1].name == "b"
    assert fw.layout.xaxis.title.text == "step"
    sync_figure(fw, go.Figure([go.Scatter(x=[1], y=[1])]))
    assert len(fw.data) == 1 and fw.data[0].uid == uids[0]
