"""The gallery in a real browser: every registered page renders at 1000 and 1600 px with zero failed requests (no network:
every JS/CSS file is local) and zero console errors; its URL state restores it; an interaction updates its figure.
Screenshots: screenshots/gallery-<slug>-<width>.png (look at them)."""
import re
import pytest
from lossviz.store import RunStore, StoreWriter
from conftest import BIN, Server, free_port, plot_points, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    "`lossviz serve` on a store with two finished runs (so the Runs page has a timeline to draw), no default run."
    # written the way a trainer writes (StoreWriter: the run's step, epoch and summary follow its rows), so the table and the
    # status pill show what a user sees (store.log_scalars alone leaves a run at step 0 with no summary)
    tmp = tmp_path_factory.mktemp("gallery")
    store = RunStore(tmp / "runs.sqlite")
    for j, name in enumerate(("focal", "ce")):
        r = store.create_run(name, config={"data": {"name": "digits"}, "model": {"name": "mlp"}, "loss": {"name": name}}, device="cpu")
        w = StoreWriter(store, r); w.status("running")
        for s in range(1, 400):
            w.scalars(s, {"train/loss": 2.0 / (1 + s / (30 + 20 * j)), "lr": 0.05, "gpw/pos_weight": 0.5 + 0.3 / s,
                          **({"test/acc": 0.9 - 0.1 * j - 0.5 / (1 + s / 40)} if s % 20 == 0 else {})}, epoch=s / 20)
        w.status("finished"); w.close()
        assert store.run(r)["step"] == 399 and store.run(r)["summary"]["train/loss"] > 0
    port = free_port()
    srv = Server([BIN / "lossviz", "serve", "--port", port, "--store", store.path, "--no-default-run"], port, tmp / "serve.log", cwd=tmp)
    srv.url, srv.store = f"http://127.0.0.1:{port}/", store
    yield srv
    srv.stop()


def open_page(tab, url, wait_for=".js-plotly-plot .main-svg"):
    failed = []
    tab.page.on("requestfailed", lambda r: failed.append(f"failed {r.url}"))
    tab.page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    tab.page.goto(url, timeout=120_000)
    tab.page.locator(wait_for).first.wait_for(timeout=120_000)
    return failed


def slugs():
    from lossviz.app.core import pages
    return [p.slug for p in pages()]


@pytest.mark.parametrize("width", [1000, 1600])
def test_landing_page_has_a_card_per_page(gallery, tab, width):
    tab.page.set_viewport_size({"width": width, "height": 900})
    failed = open_page(tab, gallery.url, ".lossviz-card")
    cards = tab.page.locator(".lossviz-card")
    wait_until(lambda: cards.count() == len(slugs()), 30, what="a card per registered page")
    tab.page.wait_for_timeout(1500)
    tab.shot(f"gallery-home-{width}")
    assert failed == [] and tab.errors() == [], (failed, tab.errors())
    cards.nth(1).click() # a card opens its page
    tab.page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
    assert tab.page.url.rstrip("/").endswith(slugs()[1])


@pytest.mark.parametrize("slug", slugs())
@pytest.mark.parametrize("width", [1000, 1600])
def test_every_page_renders_offline_without_console_errors(gallery, tab, slug, width):
    tab.page.set_viewport_size({"width": width, "height": 900})
    failed = open_page(tab, gallery.url + slug)
    wait_until(lambda: plot_points(tab.page) > 0, 60, what=f"points plotted on /{slug}")
    tab.page.wait_for_timeout(2500) # late components (their stylesheets) and the first poll
    tab.shot(f"gallery-{slug}-{width}")
    assert failed == [], f"requests that failed (offline): {failed}"
    assert tab.errors() == [], f"console errors: {tab.errors()}"
    assert "cdn." not in tab.page.content()
    if slug == "runs": # the runs table fits its column (fit_columns): every column visible, no horizontal scrolling
        box = tab.page.evaluate(TABLE_JS)
        assert box and box["scroll"] <= box["client"] + 1 and box["right"] <= width + 1, f"runs table wider than its column: {box}"
        # a finished run shows its last step, epoch and losses (the fixture writes as a trainer does)
        pill = tab.page.locator(".lossviz-badge").first.inner_text()
        assert "step 399" in pill and "epoch 19.95" in pill, pill
        cells = lambda f: tab.page.locator(f'.lossviz-runs .tabulator-cell[tabulator-field="{f}"]').all_inner_texts()
        assert cells("step") == ["399", "399"] and all(c.strip() for c in cells("train loss") + cells("test acc %")), \
            (cells("step"), cells("train loss"), cells("test acc %"))


def test_runs_page_url_state_and_interactions(gallery, tab):
    page = tab.page
    runs = sorted(r["id"] for r in gallery.store.runs())
    open_page(tab, f"{gallery.url}runs?run={runs[0]}&compare={runs[1]}&tracks=train/loss,gpw/pos_weight&smoothing=0.5")
    wait_until(lambda: len(page.evaluate(TRACES_JS)[0]) == 8, 60, what="2 tracks x 2 runs from the URL, and their moving averages")
    metas = [m for m, n in page.evaluate(TRACES_JS)[0]]
    raw = [f"{r}|{k}" for k in ("train/loss", "gpw/pos_weight") for r in runs[:2]] # both per-batch: each drawn under its average
    assert metas == raw + [m + "|smoothed" for m in raw], metas
    # an interaction updates the figure and the address: remove a track chip
    page.locator(".choices__item--selectable", has_text="gpw/pos_weight").locator("button").first.click()
    wait_until(lambda: len(page.evaluate(TRACES_JS)[0]) == 4, 60, what="the figure to drop the removed track")
    wait_until(lambda: "tracks=train%2Floss" in page.url or "tracks=train/loss" in page.url, 30, what="the URL to follow the tracks")
    assert "smoothing=0.5" in page.url, page.url # the URL's smoothing stays in the address
    assert tab.errors() == []


def test_losses_and_pairs_restore_from_the_url(gallery, tab):
    page = tab.page
    open_page(tab, f"{gallery.url}losses?losses=focal,gce")
    names = lambda: {t for g in page.evaluate(NAMES_JS) for t in g}
    wait_until(lambda: any("focal" in n for n in names()) and any("gce" in n.lower() for n in names()), 60, what="focal and gce curves")
    open_page(tab, f"{gallery.url}pairs?loss=circle")
    wait_until(lambda: page.locator("select").evaluate_all("els => els.map(e => e.value)").count("circle") >= 1 or
               "circle" in page.content(), 60, what="the circle loss selected")
    assert tab.errors() == []


# trace meta and point count of every plotly graph (walks shadow roots: Panel renders in them)
TRACES_JS = """() => {
  const graphs = [];
  const walk = (root) => root.querySelectorAll('*').forEach(el => {
    if (el.classList && el.classList.contains('js-plotly-plot')) graphs.push(el);
    if (el.shadowRoot) walk(el.shadowRoot);
  });
  walk(document);
  return graphs.map(g => (g.data || []).map(t => [t.meta, t.x ? t.x.length : 0]));
}"""
NAMES_JS = TRACES_JS.replace("(g.data || []).map(t => [t.meta, t.x ? t.x.length : 0])", "(g.data || []).map(t => String(t.name || ''))")

# the runs table's width: its scrolling area against the visible one, and its right edge (in shadow roots too)
TABLE_JS = """() => {
  let found = null;
  const walk = (root) => root.querySelectorAll('*').forEach(el => {
    if (!found && el.classList && el.classList.contains('tabulator-tableholder')) found = el;
    if (el.shadowRoot) walk(el.shadowRoot);
  });
  walk(document);
  if (!found) return null;
  const r = found.getBoundingClientRect();
  return {scroll: found.scrollWidth, client: found.clientWidth, right: r.right};
}"""
