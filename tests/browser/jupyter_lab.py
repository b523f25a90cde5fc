"""A real JupyterLab for browser tests and benchmarks: a server on a free 127.0.0.1 port with its config, data, runtime and
settings in a temp folder, a notebook written from a list of cell sources, and helpers that drive it through
`window.jupyterapp` (run one cell, wait for the kernel, find a cell's plots, measure element boxes)."""
import json, time
from pathlib import Path
import nbformat
from conftest import BIN, Server, free_port, wait_until

KERNEL_IDLE_JS = """() => { try { return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle' }
                            catch (e) { return false } }"""

RUN_CELL_JS = """(i) => { const nb = window.jupyterapp.shell.currentWidget; nb.content.activeCellIndex = i;
                          window.__lossvizT0 = performance.now();
                          window.jupyterapp.commands.execute('notebook:run-cell'); return window.__lossvizT0; }"""

# per lossviz plot in cell i's output: renders, number of plotted points, width of the plot and of the output area
PLOTS_JS = """(i) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[i].node;
  return [...cell.querySelectorAll('.lossviz-plot-div')].map(d => ({
    renders: +(d.dataset.renders || 0),
    points: (d.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0) + (t.z ? t.z.length : 0), 0),
    title: d.layout && d.layout.title ? (d.layout.title.text || '') : '',
    width: d.getBoundingClientRect().width,
    svg: !!d.querySelector('.main-svg'),
    output: cell.querySelector('.jp-OutputArea-output') ? cell.querySelector('.jp-OutputArea-output').getBoundingClientRect().width : 0,
  }));
}"""

# the boxes of every text-bearing part of every lossviz plot in cell i (titles, axis titles, legend, colour bars,
# annotations, tick labels of each axis as one box), and the plot's own box
BOXES_JS = """(i) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[i].node;
  const r = (el) => { const b = el.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  return [...cell.querySelectorAll('.lossviz-plot-div')].map(d => {
    const parts = [];
    const add = (sel, kind) => d.querySelectorAll(sel).forEach((el, k) => {
      const b = r(el); if (b[2] - b[0] > 0.5 && b[3] - b[1] > 0.5 && (el.textContent || kind === 'legend' || kind === 'colorbar')) parts.push({kind: kind + k, text: (el.textContent || '').slice(0, 40), box: b}); });
    add('.g-gtitle .gtitle', 'title'); add('.g-gtitle .gtitle-subtitle', 'subtitle');
    add('[class^="g-x"][class$="title"] text', 'xtitle'); add('[class^="g-y"][class$="title"] text', 'ytitle');
    add('.infolayer .legend .bg', 'legend'); add('.infolayer .colorbar .cbbg', 'colorbar');
    add('.infolayer .annotation-text-g', 'annotation');
    return {plot: r(d), svg: r(d.querySelector('.main-svg') || d), parts};
  });
}"""


class Lab:
    "JupyterLab serving one notebook made of `cells`; `open(page)` loads it and waits for an idle kernel."
    def __init__(self, tmp_path:Path, cells:list, name:str="explorers.ipynb"):
        self.root = tmp_path / "work"; self.root.mkdir(exist_ok=True)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        nbformat.write(nb, self.root / name)
        env = {k: str(tmp_path / k.lower()) for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")}
        settings = tmp_path / "lab-settings"; env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
        (settings / "@jupyterlab/apputils-extension").mkdir(parents=True, exist_ok=True) # no "get news?" pop-up
        (settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        port, token = free_port(), "lossviz-browser-test"
        self.server = Server([BIN / "jupyter-lab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                              f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
                              "--LabApp.extension_manager=readonly", f"--ServerApp.root_dir={self.root}"],
                             port, tmp_path / "lab.log", env={**env, "LOSSVIZ_HEARTBEAT_TIMEOUT": "30"}, cwd=self.root)
        self.url = f"http://127.0.0.1:{port}/lab/tree/{name}?token={token}"

    def open(self, page, timeout:float=120):
        page.goto(self.url)
        self.wait_idle(page, timeout)

    @staticmethod
    def wait_idle(page, timeout:float=120):
        wait_until(lambda: page.evaluate(KERNEL_IDLE_JS), timeout, 0.1, "the notebook's kernel to be idle")

    @staticmethod
    def run_cell(page, i:int) -> float:
        "Run cell `i` (not awaited); returns the page's clock at the start (ms)."
        return page.evaluate(RUN_CELL_JS, i)

    @staticmethod
    def plots(page, i:int) -> list:
        return page.evaluate(PLOTS_JS, i)

    @staticmethod
    def boxes(page, i:int) -> list:
        return page.evaluate(BOXES_JS, i)

    @staticmethod
    def kernel_eval(page, code:str, timeout:float=60) -> str:
        "Run `code` in the notebook's kernel (no cell, silent to the notebook) and return what it printed."
        return page.evaluate("""async ([code, ms]) => {
          const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel; let out = '';
          const f = k.requestExecute({ code, store_history: false });
          f.onIOPub = (m) => { if (m.header.msg_type === 'stream') out += m.content.text;
                               if (m.header.msg_type === 'error') out += m.content.ename + ': ' + m.content.evalue; };
          await Promise.race([f.done, new Promise((r) => setTimeout(r, ms))]); return out; }""", [code, timeout * 1000])

    @staticmethod
    def execution_count(page, i:int):
        "Cell `i`'s execution count (None while it runs or before it ever ran)."
        return page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.executionCount", i)

    def run_and_wait(self, page, i:int, timeout:float=120):
        "Run cell `i` and wait until it has finished: its execution count is new and the kernel idle. (Waiting for idle alone can return before the kernel went busy, under load: the cell would still be running.)"
        before = self.execution_count(page, i)
        self.run_cell(page, i)
        wait_until(lambda: (n := self.execution_count(page, i)) is not None and n != before and page.evaluate(KERNEL_IDLE_JS),
                   timeout, 0.05, f"cell {i} to finish")

    def stop(self): self.server.stop()


def overlaps(parts:list, tol:float=1.0) -> list:
    "Pairs of parts whose boxes overlap by more than `tol` px in both directions."
    bad = []
    for a in range(len(parts)):
        for b in range(a + 1, len(parts)):
            p, q = parts[a]["box"], parts[b]["box"]
            w, h = min(p[2], q[2]) - max(p[0], q[0]), min(p[3], q[3]) - max(p[1], q[1])
            if w > tol and h > tol: bad.append((parts[a]["kind"], parts[a]["text"], parts[b]["kind"], parts[b]["text"]))
    return bad


def clipped(parts:list, box:list, tol:float=1.0) -> list:
    "Parts that stick out of `box` (the plot's svg)."
    return [(p["kind"], p["text"]) for p in parts
            if p["box"][0] < box[0] - tol or p["box"][1] < box[1] - tol or p["box"][2] > box[2] + tol or p["box"][3] > box[3] + tol]
