"""The Playground page in a real browser (cheap: one server, one page): it opens from its URL state, trains live when
`start` is pressed (the step in the note grows and the decision regions are redrawn many times), pauses, and each of
three quick clicks on the regions of a custom set adds a point. Screenshots: screenshots/playground-<what>.png (look at them).
Nothing here asserts a time or a rate (benchmarks/playground.py measures updates per second)."""
import re
import pytest
from conftest import plot_points, wait_until

pytestmark = pytest.mark.browser
CLASSES = re.compile(r"^\s*Classes\b") # the label of the `classes` slider

Z_SUM_JS = """() => { // the sum of the first plotly graph's heatmap z (changes whenever the regions are redrawn)
  let g = null; const walk = (r) => r.querySelectorAll('*').forEach(el => { if (!g && el.classList && el.classList.contains('js-plotly-plot')) g = el; if (el.shadowRoot) walk(el.shadowRoot); });
  walk(document); if (!g || !g.data || !g.data[0] || !g.data[0].z) return null;
  let s = 0; for (const row of g.data[0].z) for (const v of row) s += (v || 0); return s; }"""

TRACE_POINTS_JS = """(i) => { let g = null; const walk = (r) => r.querySelectorAll('*').forEach(el => { if (!g && el.classList && el.classList.contains('js-plotly-plot')) g = el; if (el.shadowRoot) walk(el.shadowRoot); });
  walk(document); return g && g.data && g.data[i] ? (g.data[i].x || []).length : -1; }"""


def _step(page) -> int:
    m = re.search(r"step (\d+)", page.locator(".lossviz-status").first.locator("xpath=..").inner_text())
    return int(m.group(1)) if m else -1


def test_playground_page_trains_live_pauses_and_takes_clicks(served, tab):
    page = tab.page
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.goto(served.url + "playground?dataset=xor&hidden=8,8&optimizer=adam", timeout=120_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
    wait_until(lambda: plot_points(page) > 0, 60, what="the points plotted")
    wait_until(lambda: _step(page) >= 0, 60, what="the note with the step") # the note may render after the plot
    assert _step(page) == 0
    assert page.get_by_text(CLASSES).count() == 0 # XOR has two classes: no `classes` control
    z0 = page.evaluate(Z_SUM_JS)
    page.get_by_role("button", name="start").click()
    seen = {z0}
    def redrawn():
        seen.add(page.evaluate(Z_SUM_JS)); return len(seen) >= 6
    wait_until(redrawn, 120, 0.1, what="the decision regions redrawn while training")
    wait_until(lambda: _step(page) > 20, 120, what="training steps in the note")
    tab.shot("playground-training-1600")
    page.get_by_role("button", name="pause").click()
    try: wait_until(lambda: page.locator(".lossviz-status[data-status=paused]").count() > 0, 60, what="the paused badge")
    except AssertionError: print(served.log()); raise
    s = _step(page); page.wait_for_timeout(1500); assert _step(page) == s # paused: no more steps
    # a custom set: pick it, click the regions twice -> two points on the class-0 trace
    sel = page.locator("select").first # the dataset control is the first select of the control column
    sel.select_option("custom")
    wait_until(lambda: page.evaluate(TRACE_POINTS_JS, 1) == 0, 60, what="an empty custom set")
    drag = page.locator(".js-plotly-plot .nsewdrag").first
    box = drag.bounding_box()
    # each click as soon as the last one's point is drawn: the pane is still re-rendering then (Panel redraws the plot
    # several times per update), and plotly.js dropped such a click (no hover data right after a redraw) until
    # PanelView gave plotly the point under the mouse (adapter._CLICK_JS)
    for n, (fx, fy) in enumerate(((0.3, 0.3), (0.7, 0.6), (0.5, 0.85)), 1):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        try: wait_until(lambda: page.evaluate(TRACE_POINTS_JS, 1) == n, 60, what=f"drawn point {n}")
        except AssertionError: tab.shot("playground-click-lost"); print(served.log()); raise
    assert page.get_by_text(CLASSES).count() == 1 # a drawn set: the `classes` control is back
    page.set_viewport_size({"width": 1000, "height": 1000}); page.wait_for_timeout(1500)
    tab.shot("playground-drawn-1000")
    assert tab.errors() == [], tab.errors()
