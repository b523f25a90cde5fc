"""The served dashboard in a real browser: start a run from the form and watch it, and steer a run that another
process (`lossviz train`) is writing."""
import subprocess, time
import pytest
from lossviz.store import RunStore
from conftest import BIN, plot_points, wait_until, PLOT_POINTS_JS

pytestmark = pytest.mark.browser

TRACES_JS = PLOT_POINTS_JS.replace("return graphs.map(g => (g.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0));",
                                   "return graphs.map(g => (g.data || []).map(t => [t.meta, t.x ? t.x.length : 0]));")


def trace_counts(page) -> dict:
    "Points per scalar key in the page's (single) run figure."
    graphs = page.evaluate(TRACES_JS)
    assert len(graphs) == 1, f"expected one plotly graph on the page, found {len(graphs)}"
    return {k: n for k, n in graphs[0]}


def store_counts(store, rid) -> dict:
    return {k: len(v[0]) for k, v in store.scalars(rid).items() if k in ("train/loss", "test/loss", "train/acc", "test/acc")}


def open_dashboard(tab, url):
    tab.page.goto(url)
    tab.page.locator(".js-plotly-plot .main-svg").first.wait_for()
    return tab.page


def table_cell(page, text):
    "The runs table's cells whose text is exactly `text`."
    return page.locator(".lossviz-runs").get_by_role("gridcell", name=text, exact=True)


def badge_status(page) -> str:
    return page.locator(".lossviz-status").first.get_attribute("data-status")


def test_start_run_from_the_form_and_watch_it_grow(served, tab):
    page = open_dashboard(tab, served.url)
    store = RunStore(served.store)
    assert store.runs() == [] and plot_points(page) == 0
    # fill the form: digits, mlp, focal loss (its gamma control is generated from the registry), 150 epochs
    page.get_by_label("dataset").select_option("digits")
    page.get_by_label("model").select_option("mlp")
    page.get_by_label("loss").select_option("focal")
    page.get_by_text("gamma", exact=False).first.wait_for() # the loss's HParam control appeared
    page.get_by_label("epochs").fill("2000"); page.get_by_label("epochs").press("Enter") # stopped long before the end
    page.get_by_role("button", name="Start run").click()

    run = wait_until(lambda: store.runs() and store.runs()[0], 60, what="the run to appear in the store")
    assert run["config"]["loss"]["name"] == "focal" and run["config"]["epochs"] == 2000
    assert run["config"]["data"]["name"] == "digits" and run["config"]["model"]["name"] == "mlp"
    n1 = wait_until(lambda: plot_points(page), 60, what="the first points to be plotted")
    n2 = wait_until(lambda: (n := plot_points(page)) > n1 and n, 60, what=f"more than {n1} plotted points")
    wait_until(lambda: plot_points(page) > n2, 60, what=f"more than {n2} plotted points")
    wait_until(lambda: table_cell(page, "focal").count() > 0, 30, what="the run's row in the table")
    tab.shot("dashboard-live-run")

    assert store.run(run["id"])["status"] == "running"
    page.get_by_role("button", name="stop").click() # a command through the store, as for any run
    wait_until(lambda: store.run(run["id"])["status"] == "stopped", 60, what="the run to stop")
    wait_until(lambda: badge_status(page) == "stopped", 30, what="the badge to show the end")
    # every point in the store ends up in the browser, exactly once
    wait_until(lambda: trace_counts(page) == store_counts(store, run["id"]), 30,
               what=f"browser traces {trace_counts(page)} to equal the store's {store_counts(store, run['id'])}")
    assert tab.errors() == [], f"console errors: {tab.errors()}"


def test_steer_a_run_started_by_lossviz_train_in_another_process(served, tab, tmp_path):
    page = open_dashboard(tab, served.url)
    store = RunStore(served.store)
    log = open(tmp_path / "train.log", "w")
    train = subprocess.Popen([BIN / "lossviz", "train", "--store", served.store, "--epochs", "2000", "--lr", "0.01",
                              "--name", "from-cli", "--no-progress"], stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        rid = wait_until(lambda: [r["id"] for r in store.runs() if r["status"] == "running"], 90,
                         what="`lossviz train` to start running")[0]
        row = table_cell(page, "from-cli")
        wait_until(lambda: row.count() > 0, 30, what="the CLI run in the runs table")
        row.first.click()
        wait_until(lambda: badge_status(page) == "running", 30, what="the badge to show the CLI run running")
        wait_until(lambda: plot_points(page) > 0, 60, what="the CLI run's curves")

        page.get_by_role("button", name="pause").click()
        wait_until(lambda: store.run(rid)["status"] == "paused", 30, what="the CLI run to pause")
        wait_until(lambda: badge_status(page) == "paused", 30, what="the badge to show paused")
        step = store.run(rid)["step"]; time.sleep(1.5)
        assert store.run(rid)["step"] == step, "a paused run kept training"
        tab.shot("dashboard-cli-run-paused")

        page.get_by_role("button", name="resume").click()
        wait_until(lambda: store.run(rid)["status"] == "running" and store.run(rid)["step"] > step, 30,
                   what="the CLI run to resume and take more steps")
        page.get_by_role("button", name="stop").click()
        wait_until(lambda: store.run(rid)["status"] == "stopped", 30, what="the CLI run to stop")
        assert train.wait(60) == 0, (tmp_path / "train.log").read_text()
        wait_until(lambda: badge_status(page) == "stopped", 30, what="the badge to show stopped")
        assert tab.errors() == [], f"console errors: {tab.errors()}"
    finally:
        if train.poll() is None: train.kill(); train.wait(10)
        log.close()
