"""Safe to share: a token on every HTTP and websocket request, a websocket Origin allow-list, hostile run names and
statuses escaped in HTML and in plotly, no absolute store path shown, a generated token for non-loopback addresses."""
import asyncio, os, sqlite3, subprocess, sys, urllib.error, urllib.request
import pytest
from lossviz.store import RunStore
from lossviz.app.core import HOSTILE_NAME
from conftest import BIN, Server, free_port, plot_points, wait_until

pytestmark = pytest.mark.browser
TOKEN = "tok-s3cret-123456"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    "`lossviz serve --token` on a store holding a hostile run name and a hostile stored status."
    tmp = tmp_path_factory.mktemp("secure")
    s = RunStore(tmp / "runs.sqlite")
    a = s.create_run(HOSTILE_NAME, config={"data": {"name": "digits"}, "loss": {"name": "<b>x</b>"}})
    s.set_status(a, "running"); s.log_scalars(a, [(i, i / 10, "train/loss", 1 / (1 + i)) for i in range(1, 60)]); s.set_status(a, "finished")
    b = s.create_run("plain"); s.log_scalars(b, [(1, 0.1, "train/loss", 1.0)])
    c = sqlite3.connect(str(s.path)); c.execute("UPDATE runs SET status=?, error=? WHERE id=?",
                                               ('<img src=z onerror="window.__lossviz_xss=2">', "<script>window.__lossviz_xss=3</script>", b))
    c.commit(); c.close()
    port = free_port()
    srv = Server([BIN / "lossviz", "serve", "--port", port, "--store", s.path, "--no-default-run", "--token", TOKEN,
                  "--allow-origin", "lab.example:8080"], port, tmp / "serve.log", cwd=tmp)
    srv.base, srv.store, srv.ids = f"http://127.0.0.1:{port}", s, (a, b)
    yield srv
    srv.stop()


def status_of(url, headers=None) -> int:
    try: return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=120).status
    except urllib.error.HTTPError as e: return e.code


def ws_status(url, origin, cookie=None) -> int:
    "The HTTP status a websocket handshake gets (101 when accepted)."
    from tornado.httpclient import HTTPRequest, HTTPClientError
    from tornado.websocket import websocket_connect
    headers = {"Origin": origin, **({"Cookie": cookie} if cookie else {})}
    async def go():
        try:
            conn = await websocket_connect(HTTPRequest(url, headers=headers, request_timeout=60))
            conn.close(); return 101
        except HTTPClientError as e: return e.code
    return asyncio.run(go())


def test_token_is_required_on_every_page_and_websocket(guarded):
    for path in ("/", "/runs", "/losses?losses=focal", "/pairs"):
        assert status_of(guarded.base + path) == 403, path
        assert status_of(guarded.base + path + ("&" if "?" in path else "?") + "token=wrong-token-xx") == 403, path
    assert status_of(guarded.base + "/runs?token=" + TOKEN) == 200
    assert status_of(guarded.base + "/runs", {"Authorization": f"Bearer {TOKEN}"}) == 200
    r = urllib.request.urlopen(guarded.base + "/?token=" + TOKEN, timeout=120)
    cookie = r.headers["Set-Cookie"]
    assert "lossviz_token=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    ws = guarded.base.replace("http", "ws") + "/runs/ws"
    own = guarded.base
    assert ws_status(ws, own) == 403 # no token: refused
    assert ws_status(ws, "http://evil.example", f"lossviz_token={TOKEN}") == 403 # foreign Origin: refused even with the token


def test_generated_token_for_a_non_loopback_address(tmp_path):
    port = free_port()
    p = subprocess.Popen([BIN / "lossviz", "serve", "--address", "0.0.0.0", "--port", str(port), "--store", tmp_path / "r.sqlite",
                          "--no-default-run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                         env={k: v for k, v in os.environ.items() if k != "LOSSVIZ_TOKEN"})
    try:
        line = ""
        while "lossviz dashboard:" not in line:
            line = p.stdout.readline(); assert line or p.poll() is None, "serve exited"
        assert "?token=" in line and len(line.split("?token=")[1].split()[0]) >= 20
        assert status_of(f"http://127.0.0.1:{port}/runs") == 403
    finally:
        os.killpg(p.pid, 15); p.wait(60)


def test_hostile_names_render_as_text_and_no_store_path(guarded, tab):
    page = tab.page
    a, b = guarded.ids
    page.goto(f"{guarded.base}/runs?token={TOKEN}&run={a}&compare={b}", timeout=120_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
    wait_until(lambda: plot_points(page) > 0, 60, what="the hostile run's points")
    page.wait_for_timeout(3000)
    assert page.evaluate("window.__lossviz_xss") is None, "a stored name or status ran script"
    text = page.evaluate("""() => { let t = ''; const walk = (r) => r.querySelectorAll('*').forEach(el => {
        if (el.shadowRoot) { t += el.shadowRoot.textContent || ''; walk(el.shadowRoot); } }); walk(document); return document.body.innerText + t; }""")
    assert "<img src=z" in text # the hostile status is shown as text
    assert "<b>bold</b>" in text or "&lt;b&gt;bold" not in text # the hostile name as text (legend / badge)
    big = page.evaluate("""() => { let n = 0; const walk = (r) => r.querySelectorAll('*').forEach(el => {
        if (el.tagName === 'IMG' && el.getAttribute('src') === 'z') n++; if (el.tagName === 'A' && (el.getAttribute('href')||'').includes('evil')) n++;
        if (el.shadowRoot) walk(el.shadowRoot); }); walk(document); return n; }""")
    assert big == 0, "hostile markup became elements"
    assert str(guarded.store.path.parent) not in text and str(guarded.store.path.parent) not in page.content()
    try: tab.shot("security-hostile-names")
    except Exception: pass
    assert tab.errors() == [], tab.errors()
