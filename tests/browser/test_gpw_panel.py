"""The GPW explorer's Panel page in a real browser: it renders every pair of a synthetic batch, and replays the batch a
pair-loss run stored."""
import pytest
from lossviz.store import RunStore
from conftest import BIN, Server, free_port, plot_points, wait_until, PLOT_POINTS_JS

pytestmark = pytest.mark.browser

TITLE_JS = PLOT_POINTS_JS.replace("return graphs.map(g => (g.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0));",
                                  "return graphs.map(g => g.layout && g.layout.title ? (g.layout.title.text || '') + ' ' + ((g.layout.title.subtitle || {}).text || '') : '');")


def titles(page) -> list:
    return page.evaluate(TITLE_JS)


@pytest.fixture
def gpw_server(tmp_path):
    "A store with one finished pair-loss run (GPW monitor on), and `panel serve` of the GPW page over it."
    from lossviz.train import Run
    from lossviz.monitors.gpw import GPWMonitor
    store = RunStore(tmp_path / "runs.sqlite")
    run = Run("mlp", "blobs", loss="triplet", epochs=1, batch_size=32, store=store, monitors=[GPWMonitor(every=5)]).start(background=False)
    app = tmp_path / "gpw_app.py"
    app.write_text("import panel as pn\npn.extension('plotly')\nfrom lossviz.explorers import GPWExplorer\n"
                   f"GPWExplorer(store={str(tmp_path / 'runs.sqlite')!r}).panel().servable()\n")
    port = free_port()
    srv = Server([BIN / "panel", "serve", app, "--address", "127.0.0.1", "--port", port,
                  "--allow-websocket-origin", f"127.0.0.1:{port}"], port, tmp_path / "panel.log", cwd=tmp_path)
    srv.url, srv.run_id = f"http://127.0.0.1:{port}/gpw_app", run.id
    yield srv
    srv.stop()


def test_gpw_page_renders_and_replays_a_run(gpw_server, tab):
    page = tab.page
    page.goto(gpw_server.url)
    page.locator(".js-plotly-plot .main-svg").first.wait_for()
    # the synthetic batch: 4 clusters x 8 = 32 samples, 32*31 ordered pairs in the scatter (plus the other panels)
    n = wait_until(lambda: plot_points(page), 60, what="the pairs to be plotted")
    assert n >= 32 * 31
    assert any("multi_similarity" in t for t in titles(page))
    page.get_by_label("batch").select_option(label=f"run {gpw_server.run_id}")
    wait_until(lambda: any(f"run {gpw_server.run_id}" in t and "triplet" in t for t in titles(page)), 60,
               what="the run's stored batch to be shown")
    assert not [e for e in tab.errors() if "favicon" not in e[1]]
    tab.shot("gpw-panel-run-batch")
