"Small helpers shared by the test modules (import as `from _util import wait`)."
import time


def wait(cond, what, timeout=90):
    "Poll `cond()` every 0.1 s until it returns something truthy (returned); fail naming `what` after `timeout` seconds."
    t0 = time.monotonic()
    while not (v := cond()):
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return v
