"""RunStore: schema, round trips, commands, staleness, and many processes on one file at once."""
import json, os, sqlite3, subprocess, sys, textwrap, time
import numpy as np
import pytest
import torch

from lossviz.store import (Artifact, RunStore, StoreWriter, StoreError, as_store, SCHEMA_VERSION, STATUSES, APPLICATION_ID,
                           default_store_path)
from lossviz import store as S
from lossviz.core import RUN_STATUSES, ACTIVE_STATUSES, FINAL_STATUSES

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
    with pytest.raises(StoreError, match="newer than this lossviz"):
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
    assert s.run(rid)["status"] == "interrupted" and s.run(rid)["stored_status"] == "interrupted"   # written back
    s.set_status(rid, "running"); s.heartbeat(rid, step=3)
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


def test_one_definition_of_statuses():
    assert S.STATUSES is RUN_STATUSES and S.ACTIVE is ACTIVE_STATUSES and S.FINAL is FINAL_STATUSES
    import lossviz.train as T
    assert "interrupted" in RUN_STATUSES and set(FINAL_STATUSES) | set(ACTIVE_STATUSES) | {"created"} == set(RUN_STATUSES)


def test_refuses_a_foreign_sqlite_file_without_changing_it(tmp_path):
    p = tmp_path / "app.db"
    con = sqlite3.connect(p); con.execute("CREATE TABLE notes (t TEXT)"); con.execute("INSERT INTO notes VALUES ('x')"); con.commit(); con.close()
    before = p.read_bytes()
    with pytest.raises(StoreError, match="not a lossviz run store"):
        RunStore(p)
    assert p.read_bytes() == before and not (tmp_path / "app.db-wal").exists()
    con = sqlite3.connect(p); con.execute(f"PRAGMA application_id = 1234"); con.commit(); con.close()
    with pytest.raises(StoreError, match="application_id 0x4d2"):
        RunStore(p)
    empty = tmp_path / "empty.sqlite"; sqlite3.connect(empty).close()       # an empty SQLite file becomes a store
    s = RunStore(empty)
    assert sqlite3.connect(empty).execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_adopts_a_store_written_before_the_application_id(store_path):
    s = RunStore(store_path); rid = s.create_run("old"); s.close()
    con = sqlite3.connect(store_path); con.execute("PRAGMA application_id = 0"); con.commit(); con.close()
    assert RunStore(store_path).run(rid)["name"] == "old"


def test_corrupt_file_and_directory_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.sqlite"; bad.write_bytes(os.urandom(4096))
    with pytest.raises(StoreError, match="is not an SQLite database") as e:
        RunStore(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(StoreError, match="is a directory"):
        RunStore(tmp_path)


def test_read_only_store_lists_and_refuses_writes(store_path, monkeypatch):
    s = RunStore(store_path); rid = s.create_run("r"); s.set_status(rid, "finished"); s.close()
    before = store_path.read_bytes()
    ro = RunStore(store_path, readonly=True)
    assert [r["id"] for r in ro.runs()] == [rid] and ro.readonly
    with pytest.raises(StoreError, match="read-only"):
        ro.create_run("x")
    with pytest.raises(StoreError, match="read-only"):
        StoreWriter(ro, rid)
    assert store_path.read_bytes() == before
    monkeypatch.setattr(S.os, "access", lambda path, mode: False)   # a file this user may not write (root may write anything)
    auto = RunStore(store_path)
    assert auto.readonly and auto.runs()[0]["name"] == "r"


def test_interrupted_is_written_back(store_path):
    s = RunStore(store_path); rid = s.create_run(); s.set_status(rid, "running")
    s._conn().execute("UPDATE runs SET heartbeat = heartbeat - 100 WHERE id=?", (rid,))
    r = s.run(rid)
    assert r["status"] == "interrupted"
    raw = sqlite3.connect(store_path).execute("SELECT status, ended, error FROM runs WHERE id=?", (rid,)).fetchone()
    assert raw[0] == "interrupted" and raw[1] is not None and "heartbeats" in raw[2]
    s.heartbeat(rid)                     # a run that only looked dead and comes back keeps its "interrupted" from plain heartbeats
    assert s.run(rid)["status"] == "interrupted"


def test_heartbeat_survives_a_long_lock_wait(store_path, monkeypatch):
    "A healthy run whose writer waits 3 s on another process's write lock still reads running (timeout 1 s)."
    s = RunStore(store_path, heartbeat_timeout=1.0); rid = s.create_run()
    w = StoreWriter(s, rid, flush_every=0.05, heartbeat_every=0.2); w.status("running"); assert w.flush()
    blocker = sqlite3.connect(store_path, isolation_level=None); blocker.execute("BEGIN IMMEDIATE")   # holds the write lock
    try:
        w.scalars(1, {"x": 1.0})
        t_end = time.time() + 3
        while time.time() < t_end:
            assert RunStore(store_path, heartbeat_timeout=1.0).run(rid)["status"] == "running"
            time.sleep(0.2)
    finally: blocker.execute("COMMIT"); blocker.close()
    assert w.flush() and s.scalars(rid, "x")["x"][1].tolist() == [1.0]
    w.status("finished"); w.close()
    assert not (s.heartbeat_dir / str(rid)).exists()      # the file heartbeat is removed at the end


def test_writer_failure_is_fatal_after_retries(store_path):
    "A disk that fails (not a lock) sets writer.fatal; a lock wait does not."
    s = RunStore(store_path); rid = s.create_run()
    w = StoreWriter(s, rid, flush_every=0.02)
    def boom(*a, **k): raise sqlite3.OperationalError("database or disk is full")
    w._commit = boom
    w.scalars(1, {"x": 1.0})
    t_end = time.time() + 10
    while w.fatal is None: assert time.time() < t_end; time.sleep(0.02)
    assert "disk is full" in str(w.fatal) and w.flush(1)          # flush does not hang on rows that cannot be written
    w.status("failed", "disk full"); w.close(5); assert w.final_error is not None    # not even the status could go in
    assert S._lock_wait(sqlite3.OperationalError("database is locked")) and not S._lock_wait(sqlite3.OperationalError("disk I/O error"))
