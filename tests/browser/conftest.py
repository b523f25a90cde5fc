"""Browser-test harness: the system Chromium driven by Playwright (never `playwright install`), servers started as
subprocesses in their own process group on a free 127.0.0.1 port, console messages collected, screenshots saved."""
import json, os, shutil, signal, socket, subprocess, sys, time
from dataclasses import dataclass, field
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent # the venv's bin: lossviz, jupyter-lab, panel
SHOTS = Path(os.environ.get("LOSSVIZ_SCREENSHOTS", ROOT / "screenshots")) # git-ignored
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

def chromium_path() -> str:
    "The Chromium to drive: $LOSSVIZ_CHROMIUM, else `chromium` on PATH, else /usr/bin/chromium; fails (never skips) if absent."
    env = os.environ.get("LOSSVIZ_CHROMIUM")
    if env and not Path(env).exists():
        pytest.fail(f"browser tests: LOSSVIZ_CHROMIUM={env} does not exist; point it at a Chromium/Chrome binary", pytrace=False)
    cand = env or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(cand).exists():
        pytest.fail(f"browser tests need Chromium, and none was found (looked for $LOSSVIZ_CHROMIUM, `chromium` on PATH, "
                    f"/usr/bin/chromium). Install it (`apt-get install chromium`) or set LOSSVIZ_CHROMIUM=/path/to/chrome.",
                    pytrace=False)
    return cand


def free_port() -> int:
    "A TCP port that was free on 127.0.0.1 a moment ago."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def wait_until(fn, timeout:float=30.0, interval:float=0.2, what:str="condition"):
    "Poll `fn()` until it returns something truthy (returned); fail with `what` after `timeout` seconds."
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v: return v
        except Exception as e: last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))


class Server:
    "A server subprocess in its own process group; waits for its port, kills the whole group on `stop()`."
    def __init__(self, cmd:list, port:int, log:Path, env:dict|None=None, cwd=None, timeout:float=90.0):
        self.cmd, self.port, self.log_path = [str(c) for c in cmd], port, Path(log)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                     cwd=cwd, start_new_session=True)
        try: wait_until(self._up, timeout, 0.2, f"{self.cmd[0]} to listen on 127.0.0.1:{port}")
        except AssertionError: self.stop(); raise AssertionError(f"server did not come up: {' '.join(self.cmd)}\n{self.log()}")

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with code {self.proc.returncode}:\n{self.log()}")
        try: socket.create_connection(("127.0.0.1", self.port), 0.5).close(); return True
        except OSError: return False

    def log(self) -> str:
        "The last 4000 characters the server printed."
        if not self._log.closed: self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self):
        "SIGTERM the process group, then SIGKILL what is left after 10 s."
        if self.proc.poll() is None:
            try: os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError: pass
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(10)
        self._log.close()


@dataclass
class Tab:
    "A browser page plus everything its console said."
    page: object
    console: list = field(default_factory=list) # (type, text)

    def errors(self) -> list:
        "Console errors and uncaught page errors."
        return [m for m in self.console if m[0] in ("error", "pageerror")]

    def shot(self, name:str) -> Path:
        "Save a full-page screenshot under screenshots/ and return its path."
        SHOTS.mkdir(parents=True, exist_ok=True)
        p = SHOTS / f"{name}.png"; self.page.screenshot(path=str(p), full_page=True); return p


# Number of plotted points in every plotly graph on the page, walking into shadow roots (Panel renders in them).
PLOT_POINTS_JS = """() => {
  const graphs = [];
  const walk = (root) => root.querySelectorAll('*').forEach(el => {
    if (el.classList && el.classList.contains('js-plotly-plot')) graphs.push(el);
    if (el.shadowRoot) walk(el.shadowRoot);
  });
  walk(document);
  return graphs.map(g => (g.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0));
}"""

def plot_points(page) -> int:
    "Total points plotted in all plotly graphs on `page` (0 before any renders)."
    return sum(page.evaluate(PLOT_POINTS_JS))


@pytest.fixture(scope="module")  # per module: while open, sync Playwright leaves an asyncio loop marked running in this thread
def browser():
    "One headless Chromium for the whole browser tier."
    exe = chromium_path()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    "Keep each phase's report on the test item, so fixtures can tell a failed test at teardown."
    rep = (yield).get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def tab(browser, request):
    "A fresh page (1400x900) whose console messages and page errors are collected; screenshot saved if the test fails."
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page(); page.set_default_timeout(90_000)
    t = Tab(page)
    page.on("console", lambda m: t.console.append((m.type, m.text)))
    # (an uncaught page error keeps the top of its stack: which library, which call)
    page.on("pageerror", lambda e: t.console.append(("pageerror", str(e) + (f" | {e.stack.splitlines()[1:14]}" if getattr(e, "stack", None) else ""))))
    yield t
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        try: print(f"screenshot of the failure: {t.shot('FAILED-' + request.node.name)}")
        except Exception as e: print(f"(no screenshot: {e})")
    ctx.close()


@pytest.fixture
def served(tmp_path):
    "`lossviz serve` on a free port with a fresh store and no default run; yields the Server (with `.url`, `.store`)."
    port, store = free_port(), tmp_path / "runs.sqlite"
    srv = Server([BIN / "lossviz", "serve", "--port", port, "--store", store, "--no-default-run"], port,
                 tmp_path / "serve.log", env={"LOSSVIZ_HEARTBEAT_TIMEOUT": "30"}, cwd=tmp_path)
    srv.url, srv.store = f"http://127.0.0.1:{port}/", store
    yield srv
    srv.stop()
