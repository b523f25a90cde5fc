"""RunMonitor (lossviz.explorers.runs) and its two front ends against real stores, real runs and a second process:
every point once, new points only per update (flat bytes for long runs), buttons that steer a real run, a diverged run marked."""
import asyncio, subprocess, sys, textwrap, time
import numpy as np
import pytest
from lossviz.store import RunStore
from lossviz.plots.runs import CURVES
from lossviz.train import Run
from lossviz.explorers.runs import RunFeed, RunMonitor, status_badge
from lossviz.widgets.jupyter import JupyterView
from lossviz.app.adapter import PanelView

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


def test_jupyter_view_streams_while_another_process_writes(tmp_path):
    "The poller runs on a thread (the figure moves even while a cell runs); the state only grows; everything arrives once."
    path = tmp_path / "runs.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    rid = int(proc.stdout.readline())
    mon = RunMonitor(rid, path, interval=0.02)
    view = JupyterView(mon)
    assert view.poller.running and view.poller.kind == "thread"
    proc.stdin.write("go\n"); proc.stdin.flush()
    seen, t0 = [], time.monotonic()
    while view.poller.running:
        seen.append(len(view.plot.figure["data"][0]["x"])); time.sleep(0.005)
        assert time.monotonic() - t0 < 60
    assert proc.wait(30) == 0
    assert len(set(seen)) > 2 and seen == sorted(seen)
    assert view.plot.figure["data"][0]["x"] == list(range(1, 301)) and view.plot.figure["data"][1]["x"] == [100, 200, 300]
    assert all(b.disabled for b in view.buttons.values()) and 'data-status="finished"' in view.plot.note


def _bytes_per_update(tmp_path, n, name):
    store = RunStore(tmp_path / f"{name}.sqlite"); rid = store.create_run(name); store.set_status(rid, "running")
    store.log_scalars(rid, [(s, None, "train/loss", 1 + np.sin(s / 50)) for s in range(1, n + 1)])
    view = JupyterView(RunMonitor(rid, store), autostart=False)
    while view.explorer.poll(): view.explorer.changed() # caught up (a long run is read over a few polls): what follows is live
    sizes, epochs = [], []
    for k in range(20): # 20 updates of 10 new points each, as a run logs between two polls
        s0 = n + 10 * k
        store.log_scalars(rid, [(s, None, "train/loss", 1.0 + s / 1e5) for s in range(s0 + 1, s0 + 11)])
        before = view.plot.bytes_sent; view._tick(); sizes.append(view.plot.bytes_sent - before)
        epochs.append(view.explorer.streams()[0][2])
    return sizes, view, epochs


def test_update_bytes_do_not_grow_with_the_run(tmp_path):
    from lossviz.plots.style import json_safe
    small, _, _ = _bytes_per_update(tmp_path, 200, "short")
    big, view, _ = _bytes_per_update(tmp_path, 20_000, "long")
    # 15,950 points: the 20 updates cross 16,000, where the decimation bucket doubles (a new display epoch)
    level, lview, epochs = _bytes_per_update(tmp_path, 15_950, "level")
    assert len(set(epochs)) == 2, epochs
    assert len(view.plot.figure["data"][0]["x"]) <= 2000 # decimated for display; the store keeps all 20,000
    # a 200-point run sends every new point; a long one its (fewer) new min-max points, and a level change only how many
    # levels coarser (the page thins what it holds) plus the points after: never more, in the median, mean and maximum
    for name, f in (("median", np.median), ("mean", np.mean), ("max", np.max)):
        assert f(big) <= 1.5 * f(small) and f(level) <= 1.5 * f(small), (name, f(small), f(big), f(level))
    assert max(small) < 1000
    for v in (view, lview): # the widget's state (what a reload or a second view shows) is the decimated display, point for point
        x, y, _ = v.explorer.streams()[0]
        assert v.plot.figure["data"][0]["x"] == json_safe(np.asarray(x)) and v.plot.figure["data"][0]["y"] == json_safe(np.asarray(y))


def test_buttons_pause_resume_and_stop_a_real_run(tmp_path):
    run = Run("mlp", "digits", epochs=500, store=tmp_path / "runs.sqlite", name="steered")
    mon = RunMonitor(run) # a Run carries its store
    view = JupyterView(mon, autostart=False)
    run.start()
    def until(cond, what, timeout=60):
        t0 = time.monotonic()
        while not cond():
            view._tick(); time.sleep(0.05)
            assert time.monotonic() - t0 < timeout, what
    until(lambda: mon.feed.status == "running" and len(view.plot.figure["data"][0]["x"]) > 0, "the run to start logging")
    assert not view.buttons["pause"].disabled and view.buttons["resume"].disabled
    view.buttons["pause"].click()
    until(lambda: mon.feed.status == "paused", "pause through the store")
    assert view.buttons["pause"].disabled and not view.buttons["resume"].disabled
    step = run.step; time.sleep(0.5); assert run.step == step
    view.buttons["resume"].click()
    until(lambda: mon.feed.status == "running" and run.step > step, "resume through the store")
    view.buttons["stop"].click()
    until(lambda: mon.done, "stop through the store")
    assert run.wait(30) == "stopped" and mon.feed.status == "stopped"
    n = len(RunStore(tmp_path / "runs.sqlite").scalars(run.id, "train/loss")["train/loss"][0])
    x = view.plot.figure["data"][0]["x"]
    assert x[-1] == RunStore(tmp_path / "runs.sqlite").scalars(run.id, "train/loss")["train/loss"][0][-1] # the last point is shown
    assert len(x) == n or len(x) <= 2000


def test_panel_view_follows_and_switches_runs(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    a, b = store.create_run("a"), store.create_run("b")
    store.log_scalars(a, [(s, None, "train/loss", 1 / s) for s in range(1, 6)])
    store.log_scalars(b, [(s, None, "test/acc", 0.5) for s in (10, 20)])
    mon = RunMonitor(None, store=store)
    pv = PanelView(mon, autostart=False)
    assert "no run" in pv.pane.object.layout.title.text
    mon.show_run(a)
    fig = pv.pane.object
    assert len(fig.data) == len(CURVES) + 2 and len(fig.data[0].x) == 5 # + the train curves' moving averages (default smoothing)
    store.log_scalars(a, [(6, None, "train/loss", 0.1)])
    pv._tick(); assert pv.pane.object is fig and len(fig.data[0].x) == 6 and len(fig.data[len(CURVES)].x) == 6
    mon.show_run(b)
    assert len(pv.pane.object.data[0].x) == 0 and list(pv.pane.object.data[3].x) == [10, 20]
    pv.buttons["stop"].clicks += 1; assert store.pending_commands(b) == ["stop"]


def test_diverged_run_shows_its_curve_and_marks_the_step(tmp_path):
    run = Run("mlp", "digits", epochs=3, lr=1e6, store=tmp_path / "runs.sqlite", name="lr=1e6").start(background=False)
    assert run.status == "diverged"
    mon = RunMonitor(run)
    f = mon.figure()
    steps = RunStore(tmp_path / "runs.sqlite").scalars(run.id, "train/loss")
    y = np.asarray(f.data[0].y, dtype=float)
    assert len(f.layout.shapes) >= 1 and "diverged" in mon.note()
    if len(steps.get("train/loss", ((), ()))[0]): assert len(y) == len(steps["train/loss"][0])
    import json
    from lossviz.plots.style import figure_json
    json.dumps(figure_json(f), allow_nan=False)


def test_badge_and_repr_are_cheap_and_safe(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite"); rid = store.create_run("x")
    mon = RunMonitor(rid, store)
    t0 = time.perf_counter()
    for _ in range(200): repr(mon)
    assert "RunMonitor(run 1, created, 0 points)" == repr(mon)
    html = status_badge({"id": 3, "status": "diverged", "error": "loss is nan at step 7 <b>", "summary": {"test/acc": 0.5}})
    assert "test/acc 50.0%" in html and "&lt;b&gt;" in html and 'data-status="diverged"' in html




def test_bad_arguments(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite"); rid = store.create_run("x")
    with pytest.raises(TypeError, match="run_or_id: expected a Run or an int run id"): RunFeed(object(), store)
    with pytest.raises(ValueError, match="no run 42"): RunMonitor(42, store)
    with pytest.raises(ValueError, match="interval"): RunMonitor(rid, store, interval=0)
    with pytest.raises(ValueError, match="action"): RunMonitor(rid, store).act("explode")


def test_example_run_reads_running_while_its_monitor_exists():
    "The synthetic example run has no process behind it: its heartbeat file is kept fresh while the monitor lives (it read `interrupted` after 15 s), and removed after."
    import gc
    mon = RunMonitor.example(steps=10)
    st, rid = RunStore(mon.store.path, heartbeat_timeout=3.0), mon.run_id
    beat = st.heartbeat_dir / str(rid)
    time.sleep(3.5)                                   # the database heartbeat (written once) is stale now
    assert st.run(rid)["status"] == "running" and beat.exists()
    del mon; gc.collect()
    t0 = time.time()
    while beat.exists() and time.time() - t0 < 10: time.sleep(0.1)
    assert not beat.exists(), "the heartbeat file outlived the monitor"
    assert st.run(rid)["status"] == "interrupted"
