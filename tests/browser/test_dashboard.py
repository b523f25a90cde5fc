"""The Runs page in a real browser: a run started from the form trains in a child process (not the server) and its points
reach the page as they are written; pause/stop steer it through the store; the page recovers after the server restarts;
a run started by `lossviz train` in another process is watched and steered the same way."""
import os, subprocess, time
import pytest
from lossviz.store import RunStore
from lossviz.runner import get_request
from conftest import BIN, Server, free_port, plot_points, wait_until

pytestmark = pytest.mark.browser


def serve(tmp_path, store, port=None):
    port = port or free_port()
    # --max-epochs: the form's run must outlast the test on any machine (a 900-epoch run once finished before the click)
    srv = Server([BIN / "lossviz", "serve", "--port", port, "--store", store, "--no-default-run", "--max-epochs", "1000000"], port,
                 tmp_path / f"serve-{time.time():.0f}.log", env={"LOSSVIZ_HEARTBEAT_TIMEOUT": "30"}, cwd=tmp_path)
    srv.url, srv.port = f"http://127.0.0.1:{port}/", port
    return srv


def open_runs(tab, url):
    tab.page.goto(url + "runs", timeout=120_000)
    tab.page.locator(".lossviz-start").first.wait_for(timeout=120_000)
    return tab.page


def badge_status(page) -> str:
    loc = page.locator(".lossviz-status")
    return loc.first.get_attribute("data-status") if loc.count() else ""


class Clock:
    "Prints how long each phase took (the log says where a slow machine spends its time; nothing asserts times)."
    def __init__(self): self.t0 = self.t = time.monotonic()
    def __call__(self, what):
        now = time.monotonic(); print(f"[{now - self.t0:6.1f} s] +{now - self.t:5.1f} s  {what}", flush=True); self.t = now


def lost_connection(msg) -> bool:
    "A console error that only says the server was down (while it restarts), nothing the page did wrong."
    return any(s in msg[1] for s in ("ERR_CONNECTION_REFUSED", "ERR_CONNECTION_RESET", "Lost websocket", "WebSocket connection"))


# Per Plotly model of the page: [times the whole figure was re-rendered from the server, updates of new points only received,
# the largest step drawn (the plotly graph's own data), updates that found the browser lacking earlier points].
STREAM_JS = """() => {
  const out = [];
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (m.properties == null || !("data_sources" in m.properties) || !("_render_count" in m.properties)) continue;
    const view = Bokeh.index.find_one(m), gd = view == null ? null : view.container;
    let top = -1;
    for (const t of (gd && gd.data) || []) if (t.x != null && t.x.length) top = Math.max(top, t.x[t.x.length - 1]);
    const st = m._lossviz_tail;
    out.push([m._render_count, st ? st.updates : 0, top, st ? st.missed : 0]);
  }
  return out;
}"""


def stream_state(page) -> tuple:
    return tuple(max(page.evaluate(STREAM_JS), key=lambda r: r[1], default=(0, 0, -1, 0)))


def test_form_run_trains_in_a_child_process_and_streams_to_the_page(tmp_path, tab):
    path = tmp_path / "runs.sqlite"; store = RunStore(path)
    srv = serve(tmp_path, path); tick = Clock()
    try:
        page = open_runs(tab, srv.url); tick("page open")
        page.get_by_label("loss").select_option("focal")
        page.get_by_text("gamma").first.wait_for()
        page.get_by_label("epochs").fill("1000000"); page.get_by_label("epochs").press("Enter")
        page.get_by_role("button", name="Start run").click()
        run = wait_until(lambda: store.runs() and store.runs()[0], 120, what="the run in the store"); tick("run in the store")
        req = get_request(path, 1)
        assert req["pid"] not in (None, srv.proc.pid), "the run must train in its own process"
        assert run["config"]["loss"]["name"] == "focal" and run["config"]["epochs"] == 1000000
        n1 = wait_until(lambda: plot_points(page), 120, what="the first points")
        wait_until(lambda: plot_points(page) > n1, 120, what=f"more than {n1} points"); tick("points stream in")
        # an update sends the new points only (a tail source), not whole columns and a re-render of the figure
        rc0, up0, top0, _ = wait_until(lambda: (s := stream_state(page))[1] > 0 and s, 120, what="new points through the tail source")
        rc1, up1, _, _ = wait_until(lambda: (s := stream_state(page))[1] >= up0 + 3 and s, 120, what="three more updates of new points")
        top1 = wait_until(lambda: (t := stream_state(page)[2]) > top0 and t, 120, what=f"steps after {top0} drawn")
        assert stream_state(page)[3] == 0, "an update of new points found the browser lacking earlier points"
        assert rc1 - rc0 <= 2, f"the whole figure was re-rendered {rc1 - rc0} times in {up1 - up0} updates" # (a re-thinning: once)
        tick(f"{up1 - up0} updates of new points only, {rc1 - rc0} re-renders")
        wait_until(lambda: badge_status(page) == "running", 120, what="the badge to show running")
        wait_until(lambda: page.get_by_role("button", name="pause").is_enabled(), 120, what="pause to be enabled"); tick("running")
        # force: Playwright's actionability wait (two identical animation frames) took 28-65 s on a loaded 2-core machine while
        # the page redrew 4x/s; the click itself reached the run at once (the command was handled within 0.2 s)
        page.get_by_role("button", name="pause").click(force=True); tick("pause clicked")
        wait_until(lambda: store.run(run["id"])["status"] == "paused", 120, what="pause through the store"); tick("paused")
        wait_until(lambda: badge_status(page) == "paused" and page.get_by_role("button", name="resume").is_enabled(), 120,
                   what="the page to show paused")
        tab.shot("runs-form-run-paused"); tick("screenshot")
        page.get_by_role("button", name="resume").click()
        wait_until(lambda: store.run(run["id"])["status"] == "running", 120, what="resume"); tick("resumed")
        assert tab.errors() == [], f"console errors: {tab.errors()}"
        # the server restarts on the same port: it stopped its run on the way out; the page reloads itself once it is back
        page.evaluate("window.__lossviz_before_restart = 1")
        srv.stop()
        assert store.run(run["id"])["status"] == "stopped", "stopping the server stops the runs it started"
        page.locator(".lossviz-reconnecting").wait_for(timeout=60_000); tick("server down; the page says so")
        srv = serve(tmp_path, path, port=srv.port)
        wait_until(lambda: page.evaluate("window.__lossviz_before_restart === undefined"), 120, what="the page to reload itself")
        wait_until(lambda: badge_status(page) == "stopped" and plot_points(page) > 0, 120, what="the page to recover after restart")
        tick("recovered by itself")
        assert f"run={run['id']}" in page.url
        errs = [m for m in tab.errors() if not lost_connection(m)]
        assert errs == [], f"console errors: {errs}"
    finally:
        srv.stop()


def test_steer_a_run_started_by_lossviz_train_in_another_process(tmp_path, tab):
    path = tmp_path / "runs.sqlite"; store = RunStore(path)
    srv = serve(tmp_path, path)
    log = open(tmp_path / "train.log", "w")
    train = subprocess.Popen([BIN / "lossviz", "train", "--store", path, "--epochs", "1000000", "--lr", "0.01",
                              "--name", "from-cli", "--no-progress"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        tick = Clock()
        rid = wait_until(lambda: [r["id"] for r in store.runs() if r["status"] == "running"], 120, what="`lossviz train` to run")[0]
        page = open_runs(tab, srv.url); tick("page open")
        cell = page.locator(".lossviz-runs").get_by_role("gridcell", name="from-cli", exact=True)
        wait_until(lambda: cell.count() > 0, 120, what="the CLI run in the table")
        cell.first.click()
        wait_until(lambda: badge_status(page) == "running" and plot_points(page) > 0, 120, what="the CLI run's timeline"); tick("timeline")
        assert f"run={rid}" in page.url
        wait_until(lambda: page.get_by_role("button", name="stop").is_enabled(), 120, what="stop to be enabled")
        page.get_by_role("button", name="stop").click()
        wait_until(lambda: store.run(rid)["status"] == "stopped", 120, what="the CLI run to stop"); tick("stopped")
        assert train.wait(60) == 0
        assert tab.errors() == [], f"console errors: {tab.errors()}"
    finally:
        if train.poll() is None: train.kill(); train.wait(10)
        log.close(); srv.stop()
