"""Load on `lossviz serve`'s Runs page with protocol-level clients (raw websocket clients speaking the Bokeh protocol, not browsers).

    .venv/bin/python benchmarks/serve_load.py [--sessions 1 5 20] [--seconds 30] [--quick] [--length-only] [--browser] [--nice 10]

Part 1 — two runs train (`lossviz train`, two processes, one torch thread each, at nice +10 as `lossviz serve` launches the runs
started from its form; `--nice 0`: at the server's priority) into a fresh store; `lossviz serve` serves /runs?run=<first run>.
For each session count N, N clients open the page the way BokehJS does (GET the page for its session token, open the
websocket with it, ACK, PULL-DOC-REQ, then `document_ready`, after which Panel sends updates), follow the live run for
--seconds and report:

- new-point latency p50/p95: for every commit of the watched run (the `time` the writer stored with its rows), per client,
  from that moment to the first PATCH-DOC that showed its newest step or a later one (the largest `x` of its column
  updates); a client that updates rarely waits long (a commit not shown by the end counts until the end);
- updates/s and bytes per update per session (all websocket frames of the PATCH-DOC);
- server CPU (% of one core, averaged over the window), and the server's CPU time per session-update (CPU ms/update = server CPU
  / (sessions x updates/s): what the queue behind one commit costs per session, less sensitive to other load than latency),
  and server RSS per session ((RSS with N sessions - RSS before) / N);
- RSS after the sessions close and the server destroyed them (goal: back near the RSS before they opened).
- visible p50/p95: how long after its stored commit time each commit of the watched run became visible to a reader
  (a thread of this process polls the store every 5 ms): the part of the latency no server can remove.

Part 2 — bytes per update against run length: one client watches a run that already holds 200 points per track, then one
that holds 20,000, while a feeder adds 20 steps/s to both (the display is decimated to <= 2000 points per trace).

Part 3 (--browser) — the browser's work per update: one headless Chromium page on the Runs page of the 20,000-point run
while the feeder adds 20 steps/s, served by `panel serve` twice: updates as whole columns plus a Plotly.react of the figure
(what a plain Panel Plotly pane does; `PanelView.send_tails = False`), and new points only (`send_tails = True`: a tail
source, one Plotly.redraw per animation frame). Reported per mode: messages/s, redraws/s, main-thread busy time (Chrome's
TaskDuration) per second and per update, and how long a trivial `page.evaluate` waits for the main thread (p50/p95).

Goal (issue 9): p95 < 300 ms at 20 sessions. The clients share the machine's cores with the server and the runs; the
header line states the machine and its load average."""
import argparse, asyncio, base64, json, os, re, signal, socket, sqlite3, subprocess, sys, tempfile, threading, time, uuid
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRACKS = "train/loss,train/acc,test/loss,test/acc"


def free_port():
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


# ---- the Bokeh wire protocol, by hand ----------------------------------------------------------------------------------
def _frames(msgtype:str, content:dict) -> list:
    return [json.dumps({"msgid": uuid.uuid4().hex[:12], "msgtype": msgtype}), "{}", json.dumps(content)]


def document_ready() -> list:
    "The PATCH-DOC BokehJS sends once the page rendered (Panel starts its periodic callbacks and updates after it)."
    ev = {"type": "event", "name": "document_ready", "values": {"type": "map"}}
    return _frames("PATCH-DOC", {"events": [{"kind": "MessageSent", "msg_type": "bokeh_event", "msg_data": ev}]})


def _arrays_of(node, key:str, buffers:dict, out:list, under:bool=False):
    "Collect the ndarrays that are values of the column `key` in any ColumnDataChanged/ModelChanged data map."
    if isinstance(node, dict):
        if node.get("type") == "ndarray" and under:
            data = node["array"]["data"] if isinstance(node.get("array"), dict) else node.get("array")
            raw = buffers.get(data["id"]) if isinstance(data, dict) else base64.b64decode(data) if isinstance(data, str) else None
            if raw is not None: out.append(np.frombuffer(raw, dtype=np.dtype(node["dtype"]).newbyteorder("<" if node.get("order") == "little" else ">")))
            return
        if node.get("type") == "map" and "entries" in node:
            for k, v in node["entries"]: _arrays_of(v, key, buffers, out, under or k == key)
            return
        for v in node.values(): _arrays_of(v, key, buffers, out, under)
    elif isinstance(node, list):
        if under and node and all(isinstance(v, (int, float)) for v in node): out.append(np.asarray(node, dtype=float)); return
        for v in node: _arrays_of(v, key, buffers, out, under)


class Client:
    "One page session: GET, websocket, ACK, PULL-DOC, document_ready; then records every PATCH-DOC (time, bytes, largest x)."
    def __init__(self, base:str, path:str, args:dict):
        self.base, self.path, self.args = base, path, args
        self.updates, self.ws, self.pulled_bytes = [], None, 0 # (wall time, bytes, largest x or nan)

    async def open(self):
        from urllib.parse import urlencode
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest
        from tornado.websocket import websocket_connect
        r = await AsyncHTTPClient().fetch(f"{self.base}{self.path}?{urlencode(self.args)}", request_timeout=300, connect_timeout=300)
        token = re.search(r'"token"\s*:\s*"([^"]+)"', r.body.decode()).group(1)
        ws = f"{self.base.replace('http', 'ws', 1)}{self.path}/ws"
        self.ws = await websocket_connect(HTTPRequest(ws, headers={"Origin": self.base.rstrip("/")}, request_timeout=300),
                                          subprotocols=["bokeh", token], max_message_size=1 << 30)
        head, _, _, _, n = await self._read()
        if head["msgtype"] != "ACK": raise RuntimeError(f"expected ACK, got {head['msgtype']}")
        for f in _frames("PULL-DOC-REQ", {}): await self.ws.write_message(f)
        while True:
            head, _, content, _, n = await self._read()
            if head["msgtype"] == "PULL-DOC-REPLY": self.pulled_bytes = n; break
        for f in document_ready(): await self.ws.write_message(f)
        self.task = asyncio.ensure_future(self._listen())
        return self

    async def _read(self):
        frames = [await self.ws.read_message() for _ in range(3)]
        if any(f is None for f in frames): raise ConnectionError("websocket closed")
        head, meta, content = (json.loads(f) for f in frames)
        buffers, n = {}, sum(len(f) for f in frames)
        for _ in range(head.get("num_buffers", 0) or 0):
            bh, data = await self.ws.read_message(), await self.ws.read_message()
            buffers[json.loads(bh)["id"]] = data; n += len(bh) + len(data)
        return head, meta, content, buffers, n

    async def _listen(self):
        while True:
            try: head, _, content, buffers, n = await self._read()
            except Exception: return
            if head["msgtype"] != "PATCH-DOC": continue
            xs = []; _arrays_of(content, "x", buffers, xs)
            top = max((float(np.nanmax(a)) for a in xs if a.size), default=float("nan"))
            self.updates.append((time.time(), n, top))

    def close(self):
        if self.ws is not None: self.ws.close()


def commit_times(store_path, run_id) -> tuple:
    "(steps, time each step was committed) of a run's rows, steps ascending."
    c = sqlite3.connect(str(store_path), timeout=60)
    rows = c.execute("SELECT step, MIN(time) FROM scalars WHERE run=? GROUP BY step ORDER BY step", (run_id,)).fetchall()
    c.close()
    a = np.asarray(rows, dtype=float).reshape(-1, 2)
    return a[:, 0], a[:, 1]


def latencies(clients, t_start, t_end, steps, times) -> np.ndarray:
    "Per client and per commit of the run in [t_start, t_end - 2 s]: seconds from the commit to the first update that showed its newest step or a later one (a client that updates rarely waits long); a commit never shown counts as t_end - commit."
    order = np.argsort(times, kind="stable")
    ct, cs = times[order], steps[order]
    keep = np.r_[ct[1:] != ct[:-1], True] # one commit = the rows that share a commit time: its newest step
    newest = np.maximum.accumulate(cs)[keep]; ct = ct[keep]
    sel = (ct >= t_start) & (ct <= t_end - 2.0)
    out = []
    for c in clients:
        ups = [(t, top) for t, _, top in c.updates if np.isfinite(top)]
        if not ups: out += [t_end - t for t in ct[sel]]; continue
        ut = np.asarray([u[0] for u in ups]); shown = np.maximum.accumulate(np.asarray([u[1] for u in ups]))
        for t, s in zip(ct[sel], newest[sel]):
            j = np.searchsorted(shown, s) # the first update showing step s or later (shown only grows)
            out.append((ut[j] if j < len(ut) else t_end) - t)
    return np.asarray(out)


# ---- the server and the runs -----------------------------------------------------------------------------------------
def start_server(store_path, tmp):
    port = free_port()
    log = open(tmp / "serve.log", "w")
    p = subprocess.Popen([BIN / "lossviz", "serve", "--port", str(port), "--store", str(store_path), "--no-default-run"],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp)
    t0 = time.monotonic()
    while True:
        try: socket.create_connection(("127.0.0.1", port), 0.5).close(); break
        except OSError:
            if p.poll() is not None or time.monotonic() - t0 > 180: sys.exit((tmp / "serve.log").read_text())
            time.sleep(0.3)
    return p, f"http://127.0.0.1:{port}/", log


def stop(p, timeout=60):
    try: os.killpg(p.pid, signal.SIGTERM); p.wait(timeout)
    except Exception:
        try: os.killpg(p.pid, signal.SIGKILL)
        except Exception: pass


def wait_sessions_gone(proc, before:float, seconds:float=45.0) -> float:
    "RSS after the server dropped closed sessions (Bokeh checks unused sessions every ~17 s): the lowest seen in `seconds`."
    low, end = proc.memory_info().rss, time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(1); low = min(low, proc.memory_info().rss)
    return low


def watch_commits(store_path, rid, stop_evt, seen:dict):
    "Poll the store every 5 ms from a thread of this process: commit time -> when its rows became visible to a reader (the part of the latency before any server could read them)."
    c = sqlite3.connect(str(store_path), timeout=60)
    last = c.execute("SELECT COALESCE(MAX(id), 0) FROM scalars WHERE run=?", (rid,)).fetchone()[0]
    while not stop_evt.is_set():
        rows = c.execute("SELECT id, time FROM scalars WHERE run=? AND id>?", (rid, last)).fetchall(); now = time.time()
        if rows:
            last = max(r[0] for r in rows)
            for _, t in rows: seen.setdefault(t, now)
        time.sleep(0.005)
    c.close()


async def measure(base, args, n, seconds, proc, store_path, rid):
    clients = [Client(base, "runs", args) for _ in range(n)]
    gate = asyncio.Semaphore(4) # pages open 4 at a time (each session builds its page on the server first)
    async def open_one(c):
        async with gate: await c.open()
    await asyncio.gather(*(open_one(c) for c in clients))
    await asyncio.sleep(3) # first draws
    for c in clients: c.updates.clear()
    seen, halt = {}, threading.Event()
    watcher = threading.Thread(target=watch_commits, args=(store_path, rid, halt, seen), daemon=True); watcher.start()
    proc.cpu_percent(None); t_start = time.time()
    await asyncio.sleep(seconds)
    cpu, rss = proc.cpu_percent(None), proc.memory_info().rss
    t_end = time.time(); halt.set(); watcher.join(5)
    steps, times = commit_times(store_path, rid)
    lat = latencies(clients, t_start, t_end, steps, times)
    visible = np.asarray([v - t for t, v in seen.items() if t_start <= t <= t_end - 2.0])
    ups = [u for c in clients for u in c.updates if u[0] >= t_start]
    for c in clients: c.close()
    for c in clients: c.task.cancel()
    return dict(lat=lat, visible=visible, updates=len(ups) / n / seconds, bytes=np.mean([u[1] for u in ups]) if ups else float("nan"),
                cpu=cpu, rss=rss, pulled=np.mean([c.pulled_bytes for c in clients]))


def feeder(store_path, start:dict, stop_evt, rate=20.0):
    "Append one step per `1/rate` s to each run of `start` (run id -> last step; train/* every step, test/* every 23 steps)."
    from lossviz.store import RunStore
    st = RunStore(store_path)
    step, run_ids = dict(start), list(start)
    while not stop_evt.is_set():
        for r in run_ids:
            s = step[r] = step[r] + 1
            rows = [(s, s / 23, "train/loss", float(2 * np.exp(-s / 4000) + 0.05 * np.random.rand())), (s, s / 23, "train/acc", float(1 - np.exp(-s / 3000)))]
            if s % 23 == 0: rows += [(s, s / 23, "test/loss", float(2 * np.exp(-s / 4000) + 0.1)), (s, s / 23, "test/acc", float(1 - np.exp(-s / 3500)))]
            st.log_scalars(r, rows)
            if s % 10 == 0: st.heartbeat(r, s, s / 23) # alive (a run without heartbeats reads as interrupted)
        time.sleep(1 / rate)


BROWSER_APP = """import os
from lossviz.app.adapter import PanelView
PanelView.send_tails = os.environ["LOSSVIZ_SEND_TAILS"] == "1"
from lossviz.app.gallery import gallery
gallery(os.environ["LOSSVIZ_STORE"]).servable(title="lossviz runs")
"""

COUNT_DRAWS_JS = """() => {
  const graphs = [];
  const walk = (root) => root.querySelectorAll('*').forEach(el => {
    if (el.classList && el.classList.contains('js-plotly-plot')) graphs.push(el);
    if (el.shadowRoot) walk(el.shadowRoot);
  });
  walk(document);
  window.__lv_draws = window.__lv_draws || 0;
  for (const g of graphs) if (!g.__lv_counted) { g.__lv_counted = true; g.on('plotly_afterplot', () => { window.__lv_draws += 1 }) }
  return graphs.length;
}"""


def browser_work(store_path, rid, seconds:float, tmp:Path) -> list:
    "Per mode (whole columns + react, new points only): one Chromium page of the Runs page of `rid`; see Part 3 of the doc."
    sys.path.insert(0, str(ROOT / "tests" / "browser"))
    from conftest import CHROMIUM_FLAGS, chromium_path
    from playwright.sync_api import sync_playwright
    script = tmp / "runs_app.py"; script.write_text(BROWSER_APP)
    out = []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)
        for mode, tails in (("whole columns + Plotly.react", "0"), ("new points only", "1")):
            port = free_port(); log = open(tmp / f"panel-{tails}.log", "w")
            p = subprocess.Popen([BIN / "panel", "serve", script, "--address", "127.0.0.1", "--port", str(port)], stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp,
                                 env={**os.environ, "LOSSVIZ_SEND_TAILS": tails, "LOSSVIZ_STORE": str(store_path)})
            try:
                t0 = time.monotonic()
                while True:
                    try: socket.create_connection(("127.0.0.1", port), 0.5).close(); break
                    except OSError:
                        if p.poll() is not None or time.monotonic() - t0 > 180: sys.exit((tmp / f"panel-{tails}.log").read_text())
                        time.sleep(0.3)
                ctx = b.new_context(viewport={"width": 1400, "height": 900}); page = ctx.new_page(); page.set_default_timeout(300_000)
                msgs = {"n": 0, "bytes": 0}
                def on_ws(ws):
                    def frame(payload):
                        msgs["bytes"] += len(payload)
                        if isinstance(payload, str) and '"msgtype":"PATCH-DOC"' in payload.replace(" ", ""): msgs["n"] += 1
                    ws.on("framereceived", frame)
                page.on("websocket", on_ws)
                page.goto(f"http://127.0.0.1:{port}/runs_app?page=runs&run={rid}&tracks={TRACKS}")
                page.locator(".js-plotly-plot .main-svg").first.wait_for()
                time.sleep(5) # first draws (and the tail source arrives)
                page.evaluate(COUNT_DRAWS_JS)
                cdp = ctx.new_cdp_session(page); cdp.send("Performance.enable")
                def task(): return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}["TaskDuration"]
                busy0, n0, by0, d0, w0 = task(), msgs["n"], msgs["bytes"], page.evaluate("window.__lv_draws"), time.monotonic()
                rtt = []
                while time.monotonic() - w0 < seconds:
                    t = time.perf_counter(); page.evaluate("1"); rtt.append(time.perf_counter() - t)
                    time.sleep(0.2)
                busy, n, by, d, wall = task() - busy0, msgs["n"] - n0, msgs["bytes"] - by0, page.evaluate("window.__lv_draws") - d0, time.monotonic() - w0
                out.append(dict(mode=mode, msgs=n / wall, bytes=by / max(n, 1), draws=d / wall, busy=busy / wall,
                                per_update=busy / max(n, 1), rtt=np.asarray(rtt) * 1000))
                ctx.close()
            finally: stop(p); log.close()
        b.close()
    return out


def synthetic_run(st, name, n):
    "A running run that already holds `n` steps on each train track (and test tracks every 23 steps)."
    rid = st.create_run(name, config={"data": {"name": "digits"}, "model": {"name": "mlp"}, "loss": {"name": "cross_entropy"}})
    st.set_status(rid, "running")
    s = np.arange(1, n + 1)
    rows = [(int(i), i / 23, "train/loss", float(2 * np.exp(-i / 4000) + 0.05)) for i in s]
    rows += [(int(i), i / 23, "train/acc", float(1 - np.exp(-i / 3000))) for i in s]
    rows += [(int(i), i / 23, k, v) for i in s[22::23] for k, v in (("test/loss", 2 * np.exp(-i / 4000) + 0.1), ("test/acc", 1 - np.exp(-i / 3500)))]
    st.log_scalars(rid, rows); st.heartbeat(rid, n, n / 23)
    return rid


def vis(m) -> str:
    "p50/p95 of how long after its stored commit time a commit became visible to a reader (polled every 5 ms)."
    v = m["visible"] * 1000
    return f"{np.percentile(v, 50):.0f}/{np.percentile(v, 95):.0f}" if v.size else "-"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 20])
    ap.add_argument("--seconds", type=float, default=30.0, help="measurement time per session count")
    ap.add_argument("--quick", action="store_true", help="short check: 1 and 5 sessions, 10 s each, part 2 at 10 s")
    ap.add_argument("--length-only", action="store_true", help="part 2 only (bytes per update against run length)")
    ap.add_argument("--browser", action="store_true", help="also part 3: the browser's work per update, whole columns against new points only")
    ap.add_argument("--nice", type=int, default=10, help="the two training processes run this much below the server's priority: 10 is what "
                    "`lossviz serve` gives the runs started from its form (runner.Launcher); 0 for runs at the server's own priority")
    a = ap.parse_args(argv)
    if a.quick: a.sessions, a.seconds = [1, 5], 10.0
    import psutil
    from lossviz.store import RunStore
    tmp = Path(tempfile.mkdtemp(prefix="lossviz-load-"))
    store = RunStore(tmp / "runs.sqlite")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(f"the 2 training runs: `lossviz train` processes at nice +{a.nice}" + (" (as `lossviz serve` launches the runs started from its form)" if a.nice == 10 else ""))
    trains = [] if a.length_only else [subprocess.Popen(["nice", "-n", str(a.nice), BIN / "lossviz", "train", "--store", str(store.path), "--epochs", "1000000", "--lr", "0.01",
                                "--name", f"load-{i}", "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env, start_new_session=True) for i in range(2)]
    server, base, log = start_server(store.path, tmp)
    proc = psutil.Process(server.pid)
    loop = asyncio.new_event_loop(); asyncio.set_event_loop(loop)
    from tornado.httpclient import AsyncHTTPClient
    AsyncHTTPClient.configure(None, max_clients=64)
    try:
        if not a.length_only:
          while len([r for r in store.runs() if r["status"] == "running"]) < 2: time.sleep(0.3)
          rid = min(r["id"] for r in store.runs())
          args = {"run": str(rid), "tracks": TRACKS}
          cold = proc.memory_info().rss
          loop.run_until_complete(measure(base, args, 1, 3, proc, store.path, rid)) # warm-up: first-use imports are not per session
          idle = wait_sessions_gone(proc, cold)
          print(f"server pid {server.pid}; RSS cold {cold / 2**20:.0f} MiB, idle after a warm-up session {idle / 2**20:.0f} MiB; "
                f"2 runs training; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
          print(f"{'sessions':>8} {'p50 ms':>8} {'p95 ms':>8} {'n lat':>6} {'updates/s':>10} {'B/update':>9} {'server CPU%':>11} "
                f"{'CPU ms/update':>13} {'RSS/session MiB':>15} {'RSS after close MiB':>19} {'run step':>8} {'visible p50/p95 ms':>18}")
          rows = []
          for n in a.sessions:
              before = proc.memory_info().rss
              m = loop.run_until_complete(measure(base, args, n, a.seconds, proc, store.path, rid))
              after = wait_sessions_gone(proc, before)
              lat = m["lat"] * 1000 if m["lat"].size else np.array([np.nan])
              print(f"{n:>8} {np.percentile(lat, 50):>8.0f} {np.percentile(lat, 95):>8.0f} {m['lat'].size:>6} {m['updates']:>10.2f} "
                    f"{m['bytes']:>9.0f} {m['cpu']:>11.0f} {10 * m['cpu'] / max(n * m['updates'], 1e-9):>13.2f} "
                    f"{(m['rss'] - before) / n / 2**20:>15.1f} {after / 2**20:>19.0f} "
                    f"{store.run(rid)['step']:>8} {vis(m):>18}", flush=True)
              rows.append((n, m, after))
          print(f"RSS after all sessions closed: {proc.memory_info().rss / 2**20:.0f} MiB (idle after warm-up {idle / 2**20:.0f} MiB)")
        # ---- part 2: bytes per update against run length
        for t in trains: stop(t, 30)
        short, long_ = synthetic_run(store, "short-200", 200), synthetic_run(store, "long-20000", 20000)
        halt = threading.Event(); th = threading.Thread(target=feeder, args=(store.path, {short: 200, long_: 20000}, halt), daemon=True); th.start()
        print(f"\nbytes per update against run length (1 session, a feeder adds 20 steps/s to each run, {a.seconds / 2:.0f} s each):")
        print(f"{'points/track':>12} {'B/update':>9} {'updates/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'first pull B':>12}")
        for rid2, npts in ((short, 200), (long_, 20000)):
            m = loop.run_until_complete(measure(base, {"run": str(rid2), "tracks": TRACKS}, 1, a.seconds / 2, proc, store.path, rid2))
            lat = m["lat"] * 1000 if m["lat"].size else np.array([np.nan])
            print(f"{npts:>12} {m['bytes']:>9.0f} {m['updates']:>10.2f} {np.percentile(lat, 50):>8.0f} {np.percentile(lat, 95):>8.0f} "
                  f"{m['pulled']:>12.0f}", flush=True)
        if a.browser:
            rows = browser_work(store.path, long_, a.seconds, tmp)
            print(f"\nthe browser's work per update (one Chromium page, the 20,000-point run, {a.seconds:.0f} s each; load average "
                  f"{os.getloadavg()[0]:.1f}):")
            print(f"{'updates as':>29} {'msgs/s':>7} {'B/msg':>7} {'redraws/s':>9} {'main thread busy %':>18} {'busy ms/update':>14} "
                  f"{'evaluate p50 ms':>15} {'p95 ms':>7}")
            for r in rows:
                print(f"{r['mode']:>29} {r['msgs']:>7.2f} {r['bytes']:>7.0f} {r['draws']:>9.2f} {100 * r['busy']:>18.1f} "
                      f"{1000 * r['per_update']:>14.1f} {np.percentile(r['rtt'], 50):>15.1f} {np.percentile(r['rtt'], 95):>7.1f}")
            w, t = rows
            print(f"new points only / whole columns: bytes per message {t['bytes'] / w['bytes']:.3f}, busy ms per update "
                  f"{t['per_update'] / w['per_update']:.3f}, main thread busy {t['busy'] / w['busy']:.3f}")
        halt.set(); th.join(5)
    finally:
        stop(server); log.close()
        for t in trains: stop(t, 30)
        loop.close()


if __name__ == "__main__":
    main()

