"""RunMonitor in a real JupyterLab: a notebook starts a Run and displays its monitor; the plot renders, its points
grow while the kernel stays idle (polling does not block it), and the widget's stop button stops the run."""
import json, time
import nbformat
import pytest
from lossviz.store import RunStore
from conftest import BIN, Server, free_port, plot_points, wait_until

pytestmark = pytest.mark.browser

NOTEBOOK = [
    "import lossviz\nfrom lossviz.widgets import RunMonitor",
    'run = lossviz.Run("mlp", "digits", epochs=2000, lr=0.01, store="runs.sqlite", name="from-lab").start()\n'
    "mon = RunMonitor(run)\nmon",
]
KERNEL_IDLE_JS = """() => { try { return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle' }
                            catch (e) { return false } }"""


@pytest.fixture
def lab(tmp_path):
    "JupyterLab on a free port, with its config/data/runtime/settings in a temp folder and a notebook to open."
    root = tmp_path / "work"; root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / "monitor.ipynb")
    env = {k: str(tmp_path / k.lower()) for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")}
    settings = tmp_path / "lab-settings"; env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
    (settings / "@jupyterlab/apputils-extension").mkdir(parents=True) # no "get news?" pop-up over the notebook
    (settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port, token = free_port(), "lossviz-browser-test"
    srv = Server([BIN / "jupyter-lab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                  f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
                  "--LabApp.extension_manager=readonly", f"--ServerApp.root_dir={root}"],
                 port, tmp_path / "lab.log", env={**env, "LOSSVIZ_HEARTBEAT_TIMEOUT": "30"}, cwd=root)
    srv.url, srv.root = f"http://127.0.0.1:{port}/lab/tree/monitor.ipynb?token={token}", root
    yield srv
    srv.stop()


def test_runmonitor_renders_and_updates_in_jupyterlab(lab, tab):
    page = tab.page
    page.goto(lab.url)
    wait_until(lambda: page.evaluate(KERNEL_IDLE_JS), 120, 0.3, "the notebook's kernel to be idle")
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }") # not awaited
    page.locator(".jp-OutputArea .js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
    n1 = wait_until(lambda: plot_points(page), 90, what="the first plotted points")
    n2 = wait_until(lambda: (n := plot_points(page)) > n1 and n, 60, what=f"more than {n1} plotted points")
    # the points keep growing while the kernel is idle: polling runs between messages, it never blocks the kernel
    wait_until(lambda: plot_points(page) > n2 and page.evaluate(KERNEL_IDLE_JS), 60,
               what=f"more than {n2} points with the kernel idle")
    assert page.locator(".lossviz-status[data-status='running']").count() == 1
    tab.shot("jupyterlab-runmonitor")

    store = RunStore(lab.root / "runs.sqlite")
    (run,) = store.runs()
    assert run["name"] == "from-lab" and run["status"] == "running"
    page.locator(".jp-OutputArea").get_by_role("button", name="stop").click()
    wait_until(lambda: store.run(run["id"])["status"] == "stopped", 60, what="the widget's stop to stop the run")
    wait_until(lambda: page.locator(".lossviz-status[data-status='stopped']").count() == 1, 30, what="the badge to show stopped")
    bad = [m for m in tab.errors() if any(w in m[1].lower() for w in ("plotly", "widget", "anywidget", "lossviz", "comm"))]
    assert bad == [], f"console errors about the widgets: {bad}"
