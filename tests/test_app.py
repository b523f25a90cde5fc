"""lossviz.app: the Runs page's form, table and commands against a real store and real runs; serving helpers."""
import os, subprocess, sys, time, urllib.request
import pytest
from lossviz.store import RunStore
from lossviz import app
import lossviz.app.core
from lossviz.app import RunsPage, dashboard, runs_rows, start_default_run, _origins


def wait(cond, what, timeout=60):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_form_starts_a_real_run_and_the_page_follows_it(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    page = RunsPage(store, autostart=False)
    assert page._rows == [] and page.runview.feed is None
    page.loss.value = "focal" # the loss's HParams become controls
    assert list(page.controls) == ["gamma"] and page.controls["gamma"].value == 2.0
    page.controls["gamma"].value = 1.0
    page.optimizer.value = "adam"; assert page.lr.value == 1e-3 # the optimizer's default learning rate
    page.epochs.value = 3
    run = page.start()
    assert run is not None and page.message.alert_type == "success"
    assert page.runview.feed.run_id == run.id and page.table.selection == [0]
    run.wait(60); page.refresh_table(); page.runview.refresh()
    row = store.run(run.id)
    assert row["status"] == "finished" and row["config"]["loss"] == {"name": "focal", "kind": "classification", "hparams": {"gamma": 1.0}}
    assert row["config"]["optimizer"]["name"] == "adam" and row["config"]["epochs"] == 3
    assert page._rows[0]["status"] == "finished" and page._rows[0]["loss"] == "focal"
    assert len(page.runview.pane.object.data[1].x) == 3 # test loss once per epoch
    app.STARTED.pop(run.id, None)


def test_bad_form_values_show_an_error_instead_of_raising(tmp_path):
    page = RunsPage(tmp_path / "runs.sqlite", autostart=False)
    page.lr.value = 0.0
    assert page.start() is None
    assert page.message.alert_type == "danger" and "lr" in page.message.object and page.message.visible
    assert RunStore(tmp_path / "runs.sqlite").runs() == []


def test_table_picks_up_runs_from_other_processes_and_rows_steer_the_view(tmp_path):
    path = tmp_path / "runs.sqlite"
    page = RunsPage(path, autostart=False)
    code = ("import sys; from lossviz.store import RunStore; s = RunStore(sys.argv[1]); "
            "r = s.create_run('elsewhere', config={'data': {'name': 'moons'}}); s.set_status(r, 'running'); "
            "s.log_scalars(r, [(1, 0.1, 'train/loss', 0.7)])")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    other = RunStore(path).create_run("second")
    page.refresh_table()
    assert [r["name"] for r in page._rows] == ["second", "elsewhere"] and page._rows[1]["data"] == "moons"
    page.table.selection = [1]
    assert page.runview.feed.run_id == 1 and len(page.runview.pane.object.data[0].x) == 1
    page.runview.buttons["pause"].clicks += 1 # the Panel button writes a command for that run
    assert RunStore(path).pending_commands(1) == ["pause"]
    RunStore(path).create_run("third"); page.refresh_table()
    assert page.table.selection == [2] and page.runview.feed.run_id == 1 # the shown run stays selected as rows shift


def test_runs_rows_tolerates_sparse_and_nan_rows():
    rows = runs_rows([{"id": 1, "status": "interrupted", "config": {}, "summary": {"train/loss": float("nan")}},
                      {"id": 2, "status": "created", "name": "n", "config": {"model": "cnn"}, "summary": {}, "started": 0}])
    assert [r["id"] for r in rows] == [2, 1] and rows[0]["model"] == "cnn" and rows[1]["train loss"] is None
    assert runs_rows([{"id": i, "status": "created"} for i in range(300)], limit=5)[0]["id"] == 299


def test_default_run_only_when_nothing_is_live(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    r = store.create_run("live"); store.set_status(r, "running")
    assert start_default_run(store) is None and len(store.runs()) == 1


def test_dashboard_pages_and_origins(tmp_path):
    import panel as pn
    d = dashboard(tmp_path / "runs.sqlite", pages=[("A", lambda s: pn.pane.Markdown(str(s.path))), ("B", lambda s: pn.Spacer())])
    assert d[1]._names == ["A", "B"] and str(tmp_path) in d[1][0].object
    assert [t for t, _ in app.PAGES] == ["Runs", "Losses", "Pairs"]
    assert _origins("127.0.0.1", 5006) == ["127.0.0.1:5006", "localhost:5006"] and _origins("0.0.0.0", 1) == ["*"]
    with pytest.raises(ValueError, match="port"): app.serve(port=70000, store=tmp_path / "x.sqlite", default_run=False)


def test_panel_serve_of_the_module_builds_the_dashboard(tmp_path):
    "`panel serve lossviz/app/core.py` runs the module as a Bokeh app and serves the same dashboard."
    import socket
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    env = {**os.environ, "LOSSVIZ_STORE": str(tmp_path / "runs.sqlite")}
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "panel"), "serve", app.core.__file__, "--address", "127.0.0.1",
                             "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        body, t0 = None, time.monotonic()
        while body is None:
            assert proc.poll() is None and time.monotonic() - t0 < 90, proc.stdout.read().decode() if proc.poll() is not None else "timeout"
            try: body = urllib.request.urlopen(f"http://127.0.0.1:{port}/core", timeout=30).read().decode()
            except OSError: time.sleep(0.3)
        assert "<title>lossviz</title>" in body # the module ran to its `.servable(title="lossviz")`
        assert (tmp_path / "runs.sqlite").exists()
    finally:
        os.killpg(proc.pid, 15); proc.wait(20)


def test_serve_starts_the_default_run_and_stops_it_on_sigterm(tmp_path):
    "`lossviz serve` prints its URL, starts the default live run, and on SIGTERM ends it as `stopped`, not `interrupted`."
    import socket
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    store = RunStore(tmp_path / "runs.sqlite")
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "lossviz"), "serve", "--port", str(port),
                             "--store", str(store.path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        line = ""
        while "lossviz dashboard:" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "serve exited before printing its URL"
        assert f"http://127.0.0.1:{port}/" in line
        wait(lambda: store.runs() and store.runs()[0]["status"] == "running" and store.runs()[0]["step"] > 0, "the default run")
        run = store.runs()[0]
        assert run["name"] == "default-digits-mlp" and run["config"]["data"]["name"] == "digits"
        os.killpg(proc.pid, 15)
        assert proc.wait(30) == 0
        assert store.run(run["id"])["status"] == "stopped"
    finally:
        if proc.poll() is None: os.killpg(proc.pid, 9); proc.wait(10)
