"""RunStore: schema, round trips, commands, staleness, and many processes on one file at once."""
import json, os, sqlite3, subprocess, sys, textwrap, time
import numpy as np
import pytest
import torch

from lossviz.store import (Artifact, RunStore, StoreWriter, as_store, SCHEMA_VERSION, STATUSES, default_store_path)

PY = sys.executable


def test_default_path_and_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOSSVIZ_STORE", raising=False)
    s = RunStore()
    assert s.path == tmp_path / "lossviz-runs" / "runs.sqlite" and s.path.exists()
    monkeypatch.setenv("LOSSVIZ_STORE", str(tmp_path / "other" / "x.sqlite"))
    assert default_store_path() == tmp_path / "other" / "x.sqlite"
    assert as_store(None).path.exists()


def test_schema_and_wal(store_path):
    s = RunStore(store_path)
    con = sqlite3.connect(store_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schema", "runs", "scalars", "artifacts", "commands"} <= tables
    assert s.schema_version == SCHEMA_VERSION
    con.execute("UPDATE schema SET version=?", (SCHEMA_VERSION + 1,)); con.commit(); con.close()
    with pytest.raises(RuntimeError, match="newer than this lossviz"):
        RunStore(store_path)


def test_status_transitions_and_times(store_path):
    s = RunStore(store_path)
    rid = s.create_run(config={"a": 1, "arr": np.arange(2)})
    r = s.run(rid)
    assert r["name"] == f"run-{rid}" and r["status"] == "created" and r["config"] == {"a": 1, "arr": [0, 1]}
    assert r["started"] is None and r["ended"] is None and "torch" in r["versions"] and "python" in r["versions"]
    s.set_status(rid, "running"); t0 = s.run(rid)["started"]
    s.set_status(rid, "paused"); s.set_status(rid, "running")
    assert s.run(rid)["started"] == t0 and s.run(rid)["ended"] is None
    s.set_status(rid, "failed", error="boom", traceback="Traceback ...")
    r = s.run(rid)
    assert r["status"] == "failed" and r["error"] == "boom" and r["traceback"] == "Traceback ..." and r["ended"] >= t0
    with pytest.raises(ValueError, match="status: expected one of"):
        s.set_status(rid, "done")
    with pytest.raises(ValueError, match="no run 12345"):
        s.set_status(12345, "running")
    with pytest.raises(TypeError, match="run_id: expected an int"):
        s.run(1.5)
    s.update_config(rid, extra="x")
    assert s.run(rid)["config"]["extra"] == "x"
    s.delete_run(rid)
    assert s.runs() == []


def test_scalars_roundtrip_matches_numpy(store_path):
    s = RunStore(store_path)
    rid = s.create_run("x")
    rng = np.random.default_rng(0)
    vals = rng.normal(size=50)
    s.log_scalars(rid, [(i + 1, (i + 1) / 10, "a", v) for i, v in enumerate(vals)])
    s.log_scalars(rid, [(i + 1, None, "b", float(i)) for i in range(5)])
    c = s.scalars(rid)
    np.testing.assert_array_equal(c["a"][0], np.arange(1, 51))
    np.testing.assert_array_equal(c["a"][1], vals)          # float64 round trip is exact
    assert c["a"][0].dtype == np.int64 and c["a"][1].dtype == np.float64
    np.testing.assert_allclose(s.scalars(rid, x="epoch")["a"][0], np.arange(1, 51) / 10)
    assert np.isnan(s.scalars(rid, "b", x="epoch")["b"][0]).all()
    assert set(s.scalars(rid, ["b"])) == {"b"} and s.scalars(rid, "zzz") == {}
    np.testing.assert_array_equal(s.scalars(rid, "a", since=45)["a"][0], [46, 47, 48, 49, 50])
    with pytest.raises(ValueError, match="x: expected one of"):
        s.scalars(rid, x="wall")


def test_nan_inf_roundtrip(store_path):
    s = RunStore(store_path); rid = s.create_run()
    s.log_scalars(rid, [(1, None, "l", float("nan")), (2, None, "l", float("inf")), (3, None, "l", torch.tensor(2.5))])
    v = s.scalars(rid)["l"][1]
    assert np.isnan(v[0]) and v[1] == np.inf and v[2] == 2.5


def test_artifact_roundtrip_dtypes(store_path):
    s = RunStore(store_path); rid = s.create_run()
    data = {"f16": np.arange(6, dtype=np.float16).reshape(2, 3), "i64": np.arange(4), "t": torch.eye(3),
            "b": np.array([True, False])}
    s.log_artifact(rid, 10, Artifact("grid", data, {"span": 1.0, "names": ["x", "y"]}))
    a = s.artifact(rid, "grid")
    assert a.step == 10 and a.meta == {"span": 1.0, "names": ["x", "y"]}
    for k in ("f16", "i64", "b"):
        np.testing.assert_array_equal(a[k], data[k]); assert a[k].dtype == data[k].dtype
    np.testing.assert_array_equal(a["t"], np.eye(3, dtype=np.float32))
    with pytest.raises(KeyError, match="no 'nope' artifact"):
        s.artifact(rid, "nope")


def test_tail_sees_everything_once(store_path):
    s = RunStore(store_path); rid = s.create_run(); other = s.create_run()
    cur, seen = None, []
    for chunk in range(5):
        s.log_scalars(rid, [(chunk * 10 + i, None, "k", i) for i in range(10)])
        s.log_scalars(other, [(1, None, "k", 0.0)])   # another run's rows never leak in
        t, cur = s.tail(rid, cur)
        seen += list(t.scalars["k"][0])
    assert seen == list(range(50))
    t, cur2 = s.tail(rid, cur)
    assert t.empty and cur2 == cur
    t, cur3 = s.tail(rid, None, limit=7)
    assert len(t.scalars["k"][0]) == 7
    t, _ = s.tail(rid, cur3)
    assert len(t.scalars["k"][0]) == 43


def test_commands_are_delivered_once(store_path):
    s = RunStore(store_path); rid = s.create_run(); other = s.create_run()
    s.send(rid, "pause"); s.send(other, "stop"); s.send(rid, "stop")
    assert RunStore(store_path).pending_commands(rid) == ["pause", "stop"]
    assert s.pending_commands(rid) == [] and s.pending_commands(other) == ["stop"]
    with pytest.raises(ValueError, match="no run"):
        s.send(999, "stop")


def test_heartbeat_staleness(store_path, monkeypatch):
    s = RunStore(store_path); rid = s.create_run(); s.set_status(rid, "running")
    assert s.run(rid)["status"] == "running"
    monkeypatch.setenv("LOSSVIZ_HEARTBEAT_TIMEOUT", "0.2")
    time.sleep(0.3)
    assert s.run(rid)["status"] == "interrupted" and s.run(rid)["stored_status"] == "running"
    s.heartbeat(rid, step=3)
    assert s.run(rid)["status"] == "running" and s.run(rid)["step"] == 3
    s.set_status(rid, "finished"); time.sleep(0.3)
    assert s.run(rid)["status"] == "finished"     # final statuses never go stale
    monkeypatch.setenv("LOSSVIZ_HEARTBEAT_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="LOSSVIZ_HEARTBEAT_TIMEOUT"):
        s.run(rid)


def test_writer_batches_and_orders_status_after_rows(store_path):
    s = RunStore(store_path); rid = s.create_run()
    w = StoreWriter(s, rid, flush_every=0.05)
    w.status("running")
    for i in range(1, 2001): w.scalars(i, {"loss": torch.tensor(float(i)), "lr": 0.1}, epoch=i / 100)
    w.status("finished")
    w.close()
    c = s.scalars(rid)
    np.testing.assert_array_equal(c["loss"][0], np.arange(1, 2001)); np.testing.assert_array_equal(c["loss"][1], np.arange(1, 2001))
    r = s.run(rid)
    assert r["status"] == "finished" and r["step"] == 2000 and r["summary"]["loss"] == 2000.0 and r["epoch"] == 20.0
    assert w.error is None
    # few transactions: rows share their commit time in batches
    times = s._conn().execute("SELECT COUNT(DISTINCT time) FROM scalars WHERE run=?", (rid,)).fetchone()[0]
    assert times < 200


_WRITER = textwrap.dedent("""
    import sys, time
    from lossviz.store import RunStore, StoreWriter
    s = RunStore(sys.argv[1]); rid = s.create_run(sys.argv[2])
    print(rid, flush=True)
    if len(sys.argv) > 4:   # wait until the reader is following
        import os
        while not os.path.exists(sys.argv[4]): time.sleep(0.01)
    w = StoreWriter(s, rid, flush_every=0.01)
    w.status("running")
    for i in range(1, int(sys.argv[3]) + 1):
        w.scalars(i, {"v": float(i)})
        if i % 50 == 0: time.sleep(0.01)
    w.status("finished"); w.close()
""")

_READER = textwrap.dedent("""
    import json, sys, time
    from lossviz.store import RunStore
    s = RunStore(sys.argv[1]); rid = int(sys.argv[2]); cur = None; steps = []; polls = 0
    t, cur = s.tail(rid, cur); open(sys.argv[3], "w").close()
    deadline = time.time() + 60
    while time.time() < deadline:
        t, cur = s.tail(rid, cur); polls += 1
        if "v" in t.scalars: steps += t.scalars["v"][0].tolist()
        if t.status == "finished":
            t, cur = s.tail(rid, cur)
            if "v" in t.scalars: steps += t.scalars["v"][0].tolist()
            break
        time.sleep(0.005)
    print(json.dumps({"steps": steps, "polls": polls, "status": s.run(rid)["status"]}))
""")


def test_two_writer_processes_and_a_reader(tmp_path):
    "Two processes write two runs into one file while a third follows one of them with tail."
    path = tmp_path / "runs.sqlite"; RunStore(path)
    (tmp_path / "w.py").write_text(_WRITER); (tmp_path / "r.py").write_text(_READER)
    ready = tmp_path / "reader-ready"
    w1 = subprocess.Popen([PY, tmp_path / "w.py", path, "one", "3000", ready], stdout=subprocess.PIPE, text=True)
    rid1 = int(w1.stdout.readline())
    r = subprocess.Popen([PY, tmp_path / "r.py", path, str(rid1), ready], stdout=subprocess.PIPE, text=True)
    w2 = subprocess.Popen([PY, tmp_path / "w.py", path, "two", "3000"], stdout=subprocess.PIPE, text=True)
    for p in (w1, w2): assert p.wait(120) == 0
    out = json.loads(r.communicate(timeout=120)[0])
    assert out["status"] == "finished" and out["steps"] == list(range(1, 3001))
    assert out["polls"] > 2   # it really followed the run, not read it once at the end
    s = RunStore(path)
    assert [x["name"] for x in s.runs()] == ["one", "two"]
    for x in s.runs():
        np.testing.assert_array_equal(s.scalars(x["id"])["v"][0], np.arange(1, 3001))
