"""Reliability of live runs across processes: SIGKILL mid-run, following a run from another process, remote commands."""
import os, signal, sqlite3, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest

from lossviz.core import FINAL_STATUSES
from lossviz.store import RunStore

pytestmark = pytest.mark.slow   # subprocesses that train for seconds each

LOSSVIZ = [sys.executable, "-m", "lossviz.cli"]


def _env(**kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in kw.items()})
    return env


def _train(store_path, *args, **env):
    "Start `lossviz train` in a subprocess (its own process group)."
    cmd = LOSSVIZ + ["train", "--store", str(store_path), "--no-progress", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(**env),
                            start_new_session=True)


def _wait_for(pred, timeout=120, what="condition", proc=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = pred()
        if v: return v
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _first_run(store):
    runs = store.runs()
    return runs[0]["id"] if runs else None


def test_sigkill_keeps_every_committed_step(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path)
    p = _train(path, "--epochs", "2000", "--every", "1")
    try:
        reader = RunStore(path, heartbeat_timeout=1.0)
        rid = _wait_for(lambda: _first_run(reader), what="the run row", proc=p)
        cur, seen = None, {}
        def enough():
            nonlocal cur
            t, cur = reader.tail(rid, cur)
            for k, (s, v) in t.scalars.items():
                seen.setdefault(k, ([], []))[0].extend(s.tolist()); seen[k][1].extend(v.tolist())
            return len(seen.get("train/loss", ([], []))[0]) >= 60
        _wait_for(enough, what="60 committed steps", proc=p)
        assert reader.run(rid)["status"] == "running"
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(30)
    assert p.returncode == -signal.SIGKILL
    # the file opens, is intact, and holds everything a reader saw before the kill
    con = sqlite3.connect(path); assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"; con.close()
    after = RunStore(path, heartbeat_timeout=1.0)
    curves = after.scalars(rid)
    for k, (steps, vals) in seen.items():
        n = len(steps)
        np.testing.assert_array_equal(curves[k][0][:n], steps)
        np.testing.assert_array_equal(curves[k][1][:n], vals)
    steps = curves["train/loss"][0]
    np.testing.assert_array_equal(steps, np.arange(1, len(steps) + 1))   # no hole: whole batches or nothing
    # the dead run reads interrupted once its heartbeat is stale (1 s here), never running forever
    _wait_for(lambda: after.run(rid)["status"] == "interrupted", timeout=10, what="interrupted")
    assert after.run(rid)["stored_status"] == "interrupted"      # and written back, so every reader agrees
    assert after.runs(status="interrupted")[0]["id"] == rid


def test_follow_a_run_from_another_process(tmp_path):
    "This test process follows a run written by a `lossviz train` subprocess, with `tail` only."
    path = tmp_path / "runs.sqlite"
    RunStore(path)
    p = _train(path, "--epochs", "15", "--every", "2")
    reader = RunStore(path)
    rid = _wait_for(lambda: _first_run(reader), what="the run row", proc=p)
    cur, steps, statuses, polls = None, [], [], 0
    deadline = time.time() + 300
    while time.time() < deadline:
        t, cur = reader.tail(rid, cur); polls += 1
        if "train/loss" in t.scalars: steps += t.scalars["train/loss"][0].tolist()
        statuses.append(t.status)
        if t.status in FINAL_STATUSES:
            t, cur = reader.tail(rid, cur)
            if "train/loss" in t.scalars: steps += t.scalars["train/loss"][0].tolist()
            break
        time.sleep(0.05)
    assert p.wait(60) == 0, p.stderr.read()
    assert statuses[-1] == "finished"
    assert "running" in statuses                    # it was followed while it ran, not read once at the end
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert steps == reader.scalars(rid, "train/loss")["train/loss"][0].tolist()   # every point, exactly once


def test_pause_resume_stop_from_another_process(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path)
    p = _train(path, "--epochs", "2000", "--every", "1")
    try:
        ctl = RunStore(path)
        rid = _wait_for(lambda: _first_run(ctl), what="the run row", proc=p)
        _wait_for(lambda: ctl.run(rid)["step"] >= 5, what="some steps", proc=p)
        ctl.send(rid, "pause")
        _wait_for(lambda: ctl.run(rid)["status"] == "paused", timeout=30, what="paused", proc=p)
        s0 = ctl.run(rid)["step"]; time.sleep(1.0)
        assert ctl.run(rid)["step"] == s0 and ctl.run(rid)["status"] == "paused"   # heartbeats go on while paused
        ctl.send(rid, "resume")
        _wait_for(lambda: ctl.run(rid)["status"] == "running" and ctl.run(rid)["step"] > s0 + 3, timeout=30,
                  what="resumed", proc=p)
        ctl.send(rid, "stop")
        assert p.wait(60) == 0, p.stderr.read()
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGKILL); p.wait(30)
    r = ctl.run(rid)
    assert r["status"] == "stopped" and r["ended"] is not None and r["step"] < 2000 * 23
    assert "stopped" in p.stdout.read()


def test_sigterm_ends_the_run_as_stopped(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path)
    p = _train(path, "--epochs", "2000")
    try:
        s = RunStore(path)
        rid = _wait_for(lambda: _first_run(s), what="the run row", proc=p)
        _wait_for(lambda: s.run(rid)["step"] >= 5, what="some steps", proc=p)
        os.kill(p.pid, signal.SIGTERM)
        assert p.wait(60) == 130
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGKILL); p.wait(30)
    r = s.run(rid)
    assert r["status"] == "stopped" and r["stored_status"] == "stopped" and r["ended"] is not None
