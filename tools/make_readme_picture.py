"""Regenerate nbs/images/dashboard.png, the README's picture: the `lossviz serve` dashboard with a live run.

    .venv/bin/python tools/make_readme_picture.py [--out nbs/images/dashboard.png]

It trains two short finished runs into a temporary store (so the runs table has some history), serves the dashboard
on a free 127.0.0.1 port with its default live run, waits until that run is some way in, and screenshots the page with
the system Chromium (Playwright's Python package; never `playwright install`). Needs Chromium (`apt-get install
chromium` or LOSSVIZ_CHROMIUM=/path/to/chrome)."""
import argparse, os, shutil, signal, socket, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "nbs/images/dashboard.png"), help="where to write the PNG")
    ap.add_argument("--epochs", type=float, default=40, help="how far the live run gets before the screenshot")
    a = ap.parse_args(argv)
    chrome = os.environ.get("LOSSVIZ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chrome).exists(): sys.exit("make_readme_picture: Chromium not found; apt-get install chromium, or set LOSSVIZ_CHROMIUM")
    import torch; torch.set_num_threads(2)
    from lossviz.train import Run
    from lossviz.store import RunStore
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="lossviz-picture-"))
    store = tmp / "runs.sqlite"
    Run("mlp", "digits", loss="focal", loss_params={"gamma": 2.0}, epochs=30, lr=0.02, store=store, name="focal-γ2").run_sync()
    Run("mlp", "digits", loss="label_smoothing", epochs=30, lr=0.02, store=store, name="label-smoothing").run_sync()
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    log = open(tmp / "serve.log", "w")
    server = subprocess.Popen([Path(sys.executable).parent / "lossviz", "serve", "--port", str(port), "--store", str(store)],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp)
    try:
        deadline = time.monotonic() + 120
        while True:
            try: socket.create_connection(("127.0.0.1", port), 0.5).close(); break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline: sys.exit(f"server did not start:\n{(tmp / 'serve.log').read_text()}")
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chrome, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 640}, device_scale_factor=1)
            page.goto(f"http://127.0.0.1:{port}/runs")
            page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
            live = RunStore(store)
            rid = max(r["id"] for r in live.runs())
            while live.run(rid)["epoch"] < a.epochs and live.run(rid)["status"] == "running": time.sleep(0.3)
            time.sleep(1.5) # one more poll of the page
            out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 1280, "height": 640})
            browser.close()
        print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    finally:
        os.killpg(server.pid, signal.SIGTERM); server.wait(20); log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__": main()
