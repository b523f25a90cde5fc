"""lossviz.widgets.runs: RunFeed / RunMonitor / RunPanel against real stores, real runs and a second process."""
import asyncio, subprocess, sys, textwrap, time
import numpy as np
import pytest
from lossviz.store import RunStore
from lossviz.plots.runs import CURVES
from lossviz.train import Run
from lossviz.widgets.runs import RunFeed, RunMonitor, RunPanel, status_badge

WRITER = textwrap.dedent("""
    import sys, time
    from lossviz.store import RunStore, StoreWriter
    store = RunStore(sys.argv[1]); rid = store.create_run("other-process")
    print(rid, flush=True)
    sys.stdin.readline() # the reader says when to start
    w = StoreWriter(store, rid, flush_every=0.02); w.status("running")
    for s in range(1, 301):
        w.scalars(s, {"train/loss": 1.0 / s, "train/acc": s / 300}, epoch=s / 100)
        if s % 100 == 0: w.scalars(s, {"test/loss": 2.0 / s, "test/acc": s / 400}, epoch=s / 100)
        if s % 25 == 0: w.flush(); time.sleep(0.05)
    w.status("finished"); w.close()
""")


def test_feed_follows_another_process_and_sees_every_point_once(tmp_path):
    path = tmp_path / "runs.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    rid = int(proc.stdout.readline())
    feed, polls = RunFeed(rid, path), 0
    proc.stdin.write("go\n"); proc.stdin.flush()
    while not feed.done:
        feed.poll(limit=37); polls += 1 # small pages: the cursor must stitch them together exactly
        time.sleep(0.01)
        assert polls < 20000
    assert proc.wait(30) == 0
    s = feed.scalars
    np.testing.assert_array_equal(s["train/loss"][0], np.arange(1, 301))
    np.testing.assert_allclose(s["train/loss"][1], 1.0 / np.arange(1, 301))
    np.testing.assert_array_equal(s["test/acc"][0], [100, 200, 300])
    assert feed.points == 300 * 2 + 3 * 2 and feed.status == "finished" and polls > 3


def test_monitor_on_an_event_loop_updates_in_place_while_the_loop_stays_free(tmp_path):
    "As in a Jupyter kernel: the poller is an asyncio task; other coroutines run meanwhile; the FigureWidget is never replaced."
    path = tmp_path / "runs.sqlite"
    async def main():
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, str(path), stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE)
        rid = int((await proc.stdout.readline()).decode())
        mon = RunMonitor(rid, path, interval=0.02)
        proc.stdin.write(b"go\n"); await proc.stdin.drain()
        assert mon.poller.kind == "asyncio" and mon.poller.running
        fig, seen, ticks = mon.fig, [], 0
        while mon.poller.running:
            seen.append(len(mon.fig.data[0].x)); ticks += 1
            await asyncio.sleep(0.005)
        await proc.wait()
        return mon, fig, seen, ticks, rid
    mon, fig, seen, ticks, rid = asyncio.run(main())
    assert mon.fig is fig
    assert len(set(seen)) > 2, f"the curve should have grown in several steps, saw {sorted(set(seen))}"
    assert seen == sorted(seen) # appended, never reset
    assert len(mon.fig.data[0].x) == 300 and list(mon.fig.data[1].x) == [100, 200, 300]
    assert mon.feed.status == "finished" and all(b.disabled for b in mon.buttons.values())
    assert 'data-status="finished"' in mon.badge.value


def test_buttons_pause_resume_and_stop_a_real_run(tmp_path):
    run = Run("mlp", "digits", epochs=500, store=tmp_path / "runs.sqlite", name="steered")
    mon = RunMonitor(run, autostart=False) # a Run carries its store
    run.start()
    def until(cond, what, timeout=60):
        t0 = time.monotonic()
        while not cond():
            mon.refresh(); time.sleep(0.05)
            assert time.monotonic() - t0 < timeout, what
    until(lambda: mon.feed.status == "running" and len(mon.fig.data[0].x) > 0, "the run to start logging")
    assert not mon.buttons["pause"].disabled and mon.buttons["resume"].disabled
    mon.buttons["pause"].click()
    until(lambda: mon.feed.status == "paused", "pause through the store")
    assert mon.buttons["pause"].disabled and not mon.buttons["resume"].disabled
    step = run.step; time.sleep(0.5); assert run.step == step
    mon.buttons["resume"].click()
    until(lambda: mon.feed.status == "running" and run.step > step, "resume through the store")
    mon.buttons["stop"].click()
    until(lambda: mon.feed.done, "stop through the store")
    assert run.wait(30) == "stopped" and mon.feed.status == "stopped"
    n = len(RunStore(tmp_path / "runs.sqlite").scalars(run.id, "train/loss")["train/loss"][0])
    assert len(mon.fig.data[0].x) == n # everything written before the stop is shown


def test_panel_view_patches_the_same_figure(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    a, b = store.create_run("a"), store.create_run("b")
    store.log_scalars(a, [(s, None, "train/loss", 1 / s) for s in range(1, 6)])
    store.log_scalars(b, [(s, None, "test/acc", 0.5) for s in (10, 20)])
    rp = RunPanel(store, a, autostart=False)
    fig = rp.pane.object
    assert len(fig.data) == len(CURVES) and len(fig.data[0].x) == 5
    store.log_scalars(a, [(6, None, "train/loss", 0.1)])
    assert rp.refresh() and rp.pane.object is fig and len(fig.data[0].x) == 6
    assert not rp.refresh() # nothing new: nothing sent
    rp.set_run(b)
    assert len(rp.pane.object.data[0].x) == 0 and list(rp.pane.object.data[3].x) == [10, 20]
    rp.command("stop"); assert store.pending_commands(b) == ["stop"]


def test_badge_and_repr_are_cheap_and_safe(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite"); rid = store.create_run("x")
    mon = RunMonitor(rid, store, autostart=False)
    t0 = time.perf_counter()
    for _ in range(200): repr(mon)
    assert "RunMonitor(run 1, created, 0 points)" == repr(mon)
    html = status_badge({"id": 3, "status": "diverged", "error": "loss is nan at step 7 <b>", "summary": {"test/acc": 0.5}})
    assert "test/acc 50.0%" in html and "&lt;b&gt;" in html and 'data-status="diverged"' in html




def test_bad_arguments(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite"); rid = store.create_run("x")
    with pytest.raises(TypeError, match="run_or_id: expected a Run or an int run id"): RunFeed(object(), store)
    with pytest.raises(ValueError, match="no run 42"): RunMonitor(42, store, autostart=False)
    with pytest.raises(ValueError, match="interval"): RunMonitor(rid, store, interval=0, autostart=False)


def test_monitor_panel_is_the_same_view_for_panel(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite"); rid = store.create_run("x")
    store.log_scalars(rid, [(s, None, "train/loss", 1 / s) for s in range(1, 4)])
    mon = RunMonitor(rid, store, autostart=False)
    view = mon.panel()
    pane = view[1]
    assert type(pane).__name__ == "Plotly" and [t.meta for t in pane.object.data] == [t.meta for t in mon.fig.data]
    assert list(pane.object.data[0].x) == list(mon.fig.data[0].x) == [1, 2, 3]
