"""lossviz.app: the gallery without a browser — every registered page builds, URL state restores the Runs page, hostile
names and statuses are escaped, the start form goes through the launcher (runs in runner processes), serving helpers."""
import os, socket, sqlite3, subprocess, sys, time, urllib.request
import numpy as np
import pytest
import lossviz.app, lossviz.app.explorers # (a submodule is an attribute only once imported: run alone, -k, it was not)
from lossviz.store import RunStore
from lossviz.app.core import HOSTILE_NAME, PageContext, build_page, cards_html, get_page, pages, plot_text, esc
from lossviz.app.runs import RunTimeline, RunsPage, runs_rows, status_pill, timeline_figure
from lossviz.plots.runs import DEFAULT_SMOOTHING
from lossviz.runner import Launcher, Limits
from _util import wait


def hostile_store(path) -> tuple:
    "A store with a run whose name is hostile HTML and one whose *stored status* is hostile (written past the API)."
    s = RunStore(path)
    a = s.create_run(HOSTILE_NAME, config={"data": {"name": HOSTILE_NAME}, "loss": {"name": "<b>x</b>"}})
    s.set_status(a, "running"); s.log_scalars(a, [(i, i / 10, "train/loss", 1 / (1 + i)) for i in range(1, 30)])
    b = s.create_run("plain")
    c = sqlite3.connect(str(s.path)); c.execute("UPDATE runs SET status=?, error=? WHERE id=?",
                                               ('<img src=z onerror="window.__xss=1">', "<script>alert(1)</script>", b)); c.commit(); c.close()
    return s, a, b


def test_every_registered_page_builds_and_has_a_card(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    html = cards_html()
    for p in pages():
        assert f'data-page="{p.slug}"' in html and esc(p.description) in html
        page = build_page(p.slug, store, args={})
        assert page.name.startswith(p.title)
    assert [p.slug for p in pages()][:3] == ["runs", "losses", "pairs"]


def test_url_state_restores_the_runs_page_and_bad_values_are_ignored(tmp_path):
    s = RunStore(tmp_path / "runs.sqlite")
    ids = []
    for n in ("a", "b", "c"):
        r = s.create_run(n); s.log_scalars(r, [(i, 0, k, 1.0 / i) for i in range(1, 5) for k in ("train/loss", "lr", "gpw/pos_weight")]); ids.append(r)
    ctx = PageContext(get_page("runs"), s, args={"run": [str(ids[0]).encode()], "compare": [f"{ids[1]},{ids[2]}".encode()],
                                                  "tracks": [b"lr,gpw/pos_weight"], "log": [b"false"], "smoothing": [b"0.5"]})
    page = RunsPage(ctx, autostart=False)
    tl = page.timeline
    assert tl.run_id == ids[0] and list(tl.compare) == [str(ids[1]), str(ids[2])]
    assert list(tl.tracks) == ["lr", "gpw/pos_weight"] and tl.log is False and tl.smoothing == 0.5
    assert len(tl.figure().data) == 9 # 2 tracks x 3 runs, then the per-batch gpw/pos_weight's moving average x 3 runs
    for smoothing in (b"x", b"2"): # not a number; out of [0, 0.99]: ignored, with a note
        bad = PageContext(get_page("runs"), s, args={"run": [b"999"], "compare": [b"x,<b>"], "tracks": [b"lr"], "smoothing": [smoothing]})
        page = RunsPage(bad, autostart=False)
        assert page.timeline.run_id == ids[2] and list(page.timeline.compare) == [] # the newest run; unknown ids dropped
        assert page.timeline.smoothing == DEFAULT_SMOOTHING and any("smoothing" in n for n in bad.notes), bad.notes
    ctx = PageContext(get_page("losses"), s, args={"losses": [b"focal,gce"]})
    assert list(lossviz.app.explorers.losses_page(ctx).losses) == ["focal", "gce"]


def test_timeline_groups_every_scalar_and_streams_bounded(tmp_path):
    s = RunStore(tmp_path / "runs.sqlite"); r = s.create_run("long"); s.set_status(r, "running")
    keys = ["train/loss", "test/acc", "lr", "grad_norm", "gpw/neg_weight", "retrieval/map@r", "collapse/nc1", "calibration/ece", "landscape/sharpness"]
    tl = RunTimeline(s, run=r, max_points=400)
    sizes = []
    for chunk in range(6):
        s.log_scalars(r, [(i, i / 100, k, 1.0 / (1 + i)) for i in range(chunk * 3000, (chunk + 1) * 3000) for k in keys])
        assert tl.poll()
        sizes.append(sum(len(x) for x, _, _ in tl.streams().values()))
    groups = [k.split("/")[0] if "/" in k else "optimizer" for k in tl.param.tracks.objects]
    assert groups == ["train", "test", "optimizer", "optimizer", "gpw", "retrieval", "landscape", "collapse", "calibration"]
    assert max(sizes) <= 400 * len(tl.streams()) # display points per trace (the moving averages too) stay bounded however long the run
    tl.set(tracks=keys); assert len(tl.figure().data) == len(keys) + 3 # + the averages of train/loss, grad_norm, gpw/neg_weight
    while tl.poll(): pass # a poll reads at most 20,000 rows
    assert tl.poll() is False # nothing new: nothing to send


def test_a_track_of_one_point_gets_its_marker_and_loses_it_with_the_second(tmp_path):
    "The served timeline follows the notebook run view's rule (`curve_mode`): a line through one point draws nothing."
    s = RunStore(tmp_path / "runs.sqlite"); r = s.create_run("one"); s.set_status(r, "running")
    s.log_scalars(r, [(1, 0.1, "train/loss", 2.0), (1, 0.1, "lr", 0.1), (2, 0.2, "lr", 0.1)])
    tl = RunTimeline(s, run=r, tracks=["train/loss", "lr"])
    assert [t.mode for t in tl.figure().data] == ["lines+markers", "lines", "lines+markers"] # (the last: train/loss's moving average)
    v = tl.figure_version
    s.log_scalars(r, [(2, 0.2, "train/loss", 1.5)])
    assert tl.poll() and tl.figure_version > v # the figure is redrawn: a streamed point would not change the mode
    assert [t.mode for t in tl.figure().data] == ["lines", "lines", "lines"]
    assert [t.mode for t in timeline_figure({}, ["lr"], [(r, "one")]).data] == ["lines"] # an empty track: nothing to mark


def test_an_update_sends_the_new_points_only_whatever_the_run_length(tmp_path):
    "What a session would send per update, serialised as the Bokeh server does: new points only, the same size for 200 and 20,000 steps."
    from bokeh.document import Document
    from bokeh.protocol import Protocol
    sent = {}
    for n in (200, 20_000):
        s = RunStore(tmp_path / f"runs-{n}.sqlite"); r = s.create_run(f"run-{n}"); s.set_status(r, "running")
        s.log_scalars(r, [(i, None, "train/loss", 1.0 / i) for i in range(1, n + 1)])
        tl = RunTimeline(s, run=r, tracks=["train/loss"])
        pv = tl.panel(autostart=False)
        model = pv.pane.get_root(); doc = Document(); doc.add_root(model) # the pane as a served page holds it
        s.log_scalars(r, [(n + 1, None, "train/loss", 0.5)]); pv._tick() # a model's first update: whole columns
        assert tl.news() is False # nothing new: a served view is not woken (the ticker asks `news()`)
        events = []; doc.on_change(events.append)
        new = [(i, None, "train/loss", 1.0 / i) for i in range(n + 2, n + 7)]
        s.log_scalars(r, new)
        assert tl.news() is True
        pv._tick()
        msg = Protocol().create("PATCH-DOC", events)
        size = len(msg.header_json) + len(msg.metadata_json) + len(msg.content_json) + sum(len(b.to_bytes()) for b in msg.buffers)
        tail = pv._tails[model.id]
        assert [(e.model, e.attr) for e in events] == [(tail, "data")] # nothing else changed (no column, no re-render)
        assert msg.buffers == [] # a few rows go inline as JSON: 3 websocket frames per update (binary buffers add 2 frames each)
        assert set(tail.data["i"]) == {0, 1} # the train loss and its moving average (`smoothing`), nothing else
        xs = [x for x, i in zip(tail.data["x"], tail.data["i"]) if i == 0]
        assert xs == [x for x, i in zip(tail.data["x"], tail.data["i"]) if i == 1] # the average grows by the same steps
        assert xs and min(xs) > n and xs[-1] == n + 6 # only steps after the first update's, the newest shown at once
        # the browser's copy (spliced at k) equals the display arrays, checked against the decimator directly
        d = tl._follow[r].dec["train/loss"]; x, y, ep, final = tl.streams(provisional=True)[0]
        assert int(tail.data["k"][0]) <= final and np.array_equal(model.data_sources[0].data["x"][0], x)
        assert len(d.display()[0]) == final
        sent[n] = (size, len(xs))
    (s200, n200), (s20k, n20k) = sent[200], sent[20_000]
    assert n200 == 5 and n20k <= 5 # 5 new steps: 5 points, or fewer where min-max buckets thin them
    assert s20k <= s200 + 64 and s200 < 2500, sent # flat in run length, and small


def test_hostile_names_and_statuses_are_escaped(tmp_path):
    s, a, b = hostile_store(tmp_path / "runs.sqlite")
    pill = status_pill(s.run(b))
    assert "<img" not in pill and "<script" not in pill and "&lt;img" in pill
    assert "<img" not in status_pill(s.run(a)) and "<b>bold" not in status_pill(s.run(a))
    tl = RunTimeline(s, run=a, compare=[str(b)])
    fig = tl.figure()
    texts = [t.name for t in fig.data] + [t.hovertemplate for t in fig.data] + [x.text for x in fig.layout.annotations]
    assert all("<b>" not in t and "<a " not in t and "<span" not in t and "<img" not in t for t in texts)
    assert "<img" not in tl.note() and "<script" not in tl.note()
    assert plot_text("<b>") == "&lt;b&gt;"
    page = RunsPage(PageContext(get_page("runs"), s, args={}), autostart=False)
    assert str(s.path.parent) not in str(page.view) # no absolute store path
    assert not any("<" in str(v) and "onerror" in str(v) for row in runs_rows(s.runs()) for v in []) # table cells are plain text


def test_form_start_runs_in_a_runner_process_and_refusals_show(tmp_path):
    s = RunStore(tmp_path / "runs.sqlite")
    L = Launcher(s, Limits(max_runs=1, max_epochs=500))
    page = RunsPage(PageContext(get_page("runs"), s, args={}, launcher=L), autostart=False)
    assert "focal" in page.loss.groups["classification"] and page.loss.groups.get("pair") and page.loss.groups.get("proxy")
    page.loss.value = "focal"; assert list(page.controls) == ["gamma"]
    page.controls["gamma"].value = 1.0
    page.epochs.value = 400; page.run_name.value = "<b>mine</b>"
    req = page.start()
    try:
        assert req is not None and page.message.alert_type in ("info", "success")
        rid = wait(lambda: page.check_pending() or page.timeline.run_id, "the runner to create the run", 120)
        assert page.message.alert_type == "success" and page.timeline.run_id == rid
        assert L.procs[req].pid != os.getpid()
        row = s.run(rid)
        assert row["config"]["loss"]["hparams"] == {"gamma": 1.0} and row["name"] == "<b>mine</b>"
        page.epochs.value = 2
        assert page.start() is None and page.message.alert_type == "danger" and "limit" in page.message.object
        wait(lambda: page.timeline.poll() or sum(len(x) for x, _, _ in page.timeline.streams().values()) > 0, "points")
    finally: L.stop_all()
    assert s.run(rid)["status"] == "stopped"
    page2 = RunsPage(PageContext(get_page("runs"), s, args={}, launcher=Launcher(s)), autostart=False)
    page2.lr.value = 1e9
    assert page2.start() is None and "lr" in page2.message.object and page2.message.alert_type == "danger"
    nolaunch = RunsPage(PageContext(get_page("runs"), s, args={}), autostart=False)
    assert nolaunch.start_button.disabled and nolaunch.start() is None


def test_server_helpers_and_cli_entry(tmp_path):
    import argparse
    from lossviz.app.server import add_arguments, allowed_origins, main, resolve_token
    assert "*" not in allowed_origins("0.0.0.0", 5006)
    assert resolve_token("127.0.0.1") is None and resolve_token("10.1.2.3")
    a = add_arguments(argparse.ArgumentParser()).parse_args(["--port", "70000", "--store", str(tmp_path / "x.sqlite")])
    assert main(a) == 2
    a = add_arguments(argparse.ArgumentParser()).parse_args(["--token", "short"])
    assert main(a) == 2


def test_panel_serve_of_the_gallery_module(tmp_path):
    "`panel serve lossviz/app/gallery.py` runs the module as a Bokeh app and serves the gallery (pages by ?page=)."
    import lossviz.app.gallery as g
    with socket.socket() as sk: sk.bind(("127.0.0.1", 0)); port = sk.getsockname()[1]
    env = {**os.environ, "LOSSVIZ_STORE": str(tmp_path / "runs.sqlite")}
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "panel"), "serve", g.__file__, "--address", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        body, t0 = None, time.monotonic()
        while body is None:
            assert proc.poll() is None and time.monotonic() - t0 < 120, proc.stdout.read().decode() if proc.poll() is not None else "timeout"
            try: body = urllib.request.urlopen(f"http://127.0.0.1:{port}/gallery?page=losses", timeout=60).read().decode()
            except OSError: time.sleep(0.3)
        assert "<title>Losses · lossviz</title>" in body
    finally:
        os.killpg(proc.pid, 15); proc.wait(20)


def test_serve_starts_the_default_run_in_a_runner_and_stops_it_on_sigterm(tmp_path):
    "`lossviz serve` prints its URL, starts the default run in a runner process, and on SIGTERM ends it as `stopped`."
    with socket.socket() as sk: sk.bind(("127.0.0.1", 0)); port = sk.getsockname()[1]
    store = RunStore(tmp_path / "runs.sqlite")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from lossviz.cli import main; sys.exit(main())", "serve", "--port", str(port),
                             "--store", str(store.path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        line = ""
        while "lossviz dashboard:" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "serve exited before printing its URL"
        assert f"http://127.0.0.1:{port}/" in line and "token" not in line # loopback: no token
        wait(lambda: store.runs() and store.runs()[0]["status"] == "running" and store.runs()[0]["step"] > 0, "the default run", 120)
        run = store.runs()[0]
        assert run["name"] == "default-digits-mlp"
        from lossviz.runner import get_request
        assert get_request(store, 1)["pid"] not in (None, proc.pid) # trained by a runner process, not the server
        os.killpg(proc.pid, 15)
        assert proc.wait(60) == 0
        assert store.run(run["id"])["status"] == "stopped"
    finally:
        if proc.poll() is None: os.killpg(proc.pid, 9); proc.wait(10)


@pytest.mark.parametrize("monitor", ["collapse", "landscape"])
def test_a_link_with_a_run_id_opens_that_run_without_a_false_warning(tmp_path, monitor):
    from lossviz.train import Run
    db = tmp_path / "runs.sqlite"
    rid = Run("mlp", "blobs", epochs=2, store=db, monitors=[monitor], seed=0).run_sync().id
    s = RunStore(db)
    extra = {"resolution": [b"11"]} if monitor == "landscape" else {} # the smallest surface keeps this quick
    ctx = PageContext(get_page(monitor), s, args={"run": [str(rid).encode()], **extra})
    assert ctx.explorer_state(_explorer(monitor)).get("run") == rid and ctx.notes == []
    ex = get_page(monitor).factory()(ctx) # the page opens that run, with no warning note
    assert ctx.notes == [] and (ex.run == rid if monitor == "collapse" else list(ex.runs) == [f"{s.run(rid)['name']} (#{rid})"])
    for bad in ("999", "x"): # a genuinely bad value still gets the note
        ctx = PageContext(get_page(monitor), s, args={"run": [bad.encode()]})
        assert "run" not in ctx.explorer_state(_explorer(monitor))
        assert len(ctx.notes) == 1 and ctx.notes[0].startswith("ignored URL value run")
    if monitor == "collapse": # and the gallery shows it above the page (no alert for a good link)
        assert not any(type(p).__name__ == "Alert" for p in build_page(monitor, s, args={"run": [str(rid).encode()]}).objects)
        alerts = [p.object for p in build_page(monitor, s, args={"run": [b"999"]}).objects if type(p).__name__ == "Alert"]
        assert len(alerts) == 1 and "ignored URL value run" in alerts[0]


def _explorer(monitor):
    if monitor == "collapse":
        from lossviz.explorers.collapse import CollapseExplorer; return CollapseExplorer
    from lossviz.explorers.landscape import LandscapeExplorer; return LandscapeExplorer


def test_status_pill_shows_an_integral_epoch_without_decimals():
    assert ">epoch 300<" in status_pill({"id": 1, "name": "a", "status": "running", "epoch": 300.0, "step": 9})
    assert ">epoch 12.35<" in status_pill({"id": 1, "name": "a", "status": "running", "epoch": 12.3456, "step": 9})


def test_a_messages_websocket_frames_go_to_the_socket_in_one_write():
    "`_coalesced` (installed on Panel's dispatch_tornado in a served session): the same frames in the same order, one socket write, every caller's future done with it; a closed stream fails them as each write would have."
    import asyncio
    from tornado.iostream import StreamClosedError
    from lossviz.app.adapter import _coalesced
    class Stream:
        def __init__(self, closed=False): self.writes, self.closed = [], closed
        def write(self, data):
            if self.closed: raise StreamClosedError()
            self.writes.append(bytes(data)); f = asyncio.get_running_loop().create_future(); f.set_result(None); return f
    class Conn:
        def __init__(self, stream): self._socket = type("S", (), {"ws_connection": type("W", (), {"stream": stream})()})()
    def dispatch(conn, events=None, msg=None): # as Panel's: one write per frame, the futures returned
        s = conn._socket.ws_connection.stream
        return [s.write(b"header"), s.write(b"meta"), s.write(msg)]
    async def main():
        s = Stream(); futs = _coalesced(dispatch)(Conn(s), msg=b"content")
        await asyncio.gather(*futs)
        assert s.writes == [b"headermetacontent"] and "write" not in vars(s)
        c = Stream(closed=True); futs = _coalesced(dispatch)(Conn(c), msg=b"x")
        res = await asyncio.gather(*futs, return_exceptions=True)
        assert all(isinstance(r, StreamClosedError) for r in res) and "write" not in vars(c)
    asyncio.run(main())


def test_served_sessions_are_frozen_out_of_full_collections_and_freed_when_they_end():
    "`_Freezer`: once a session's page is built its objects are frozen (no full collection scans them: 0.55-0.93 s pauses at 20 sessions); when sessions end, a refreeze collects what they held, cycles included."
    import gc, weakref
    from lossviz.app.adapter import _Freezer
    class Doc:
        def __init__(self): self.ticks, self.ends = [], []
        def add_next_tick_callback(self, f): self.ticks.append(f)
        def on_session_destroyed(self, f): self.ends.append(f)
    class Held: pass
    fr, doc = _Freezer(), Doc()
    try:
        held = Held(); held.me = held; ref = weakref.ref(held) # what a session holds, in a cycle
        fr.track(doc); [f() for f in doc.ticks]
        assert gc.get_freeze_count() > 0
        del held; gc.collect()
        assert ref() is not None # frozen: a full collection does not scan it
        [f(None) for f in doc.ends] # the session ends (outside a running loop: refrozen at once)
        assert ref() is None and gc.get_freeze_count() > 0
    finally: gc.unfreeze()
