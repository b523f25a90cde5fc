"""A user's own dashboard, the Panel way: the ten-line example of the README / page-api (LossExplorer, a RunMonitor of the
newest run beside a GPWExplorer) served with plain `panel serve my_dashboard.py`, offline (zero failed requests), no
console errors, and the run's curves grow while it trains (streamed by the generic adapter)."""
import re
from pathlib import Path
import pytest
from lossviz.store import RunStore
from conftest import BIN, Server, free_port, plot_points, wait_until

pytestmark = pytest.mark.browser

# The example is read from the README, so what a user copies is what this test serves.
README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE = re.search(r"```python\n(# my_dashboard\.py.*?)```", README.read_text(), re.S).group(1)


def test_ten_line_example_serves_offline_and_streams(tmp_path, tab):
    assert len([l for l in EXAMPLE.splitlines() if l.strip()]) <= 10
    store = RunStore(tmp_path / "runs.sqlite")
    script = tmp_path / "my_dashboard.py"; script.write_text(EXAMPLE)
    import subprocess
    train = subprocess.Popen([BIN / "lossviz", "train", "--store", store.path, "--epochs", "2000", "--lr", "0.01", "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    port = free_port()
    try:
        wait_until(lambda: store.runs() and store.runs()[0]["step"] > 0, 120, what="a training run")
        srv = Server([BIN / "panel", "serve", script, "--address", "127.0.0.1", "--port", port], port, tmp_path / "serve.log",
                     env={"LOSSVIZ_STORE": str(store.path)}, cwd=tmp_path)
        try:
            failed = []
            tab.page.on("requestfailed", lambda r: failed.append(r.url))
            tab.page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            tab.page.goto(f"http://127.0.0.1:{port}/my_dashboard", timeout=300_000)
            tab.page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=300_000)
            n1 = wait_until(lambda: plot_points(tab.page), 90, what="points")
            wait_until(lambda: plot_points(tab.page) > n1, 90, what="the run's curves to grow")
            try: tab.shot("user-dashboard")
            except Exception: pass
            assert failed == [], failed
            assert tab.errors() == [], tab.errors()
        finally: srv.stop()
    finally:
        if train.poll() is None: train.terminate(); train.wait(30)
