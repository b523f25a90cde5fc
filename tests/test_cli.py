"""The `lossviz` console script: train, runs, serve, and clean errors for bad input."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest

from lossviz import cli
from lossviz.store import RunStore

SCRIPT = shutil.which("lossviz", path=str(Path(sys.executable).parent)) or "lossviz"


def _run(*args, env=None, timeout=300):
    e = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=e, timeout=timeout)


def test_console_script_trains_and_lists(tmp_path):
    db = tmp_path / "runs.sqlite"
    p = _run("train", "--epochs", "2", "--store", str(db), "--name", "from-cli", "--loss", "focal",
             "--loss-param", "gamma=2", "--seed", "3")
    assert p.returncode == 0, p.stderr
    assert "finished after" in p.stdout and "test  loss" in p.stdout and "train loss" in p.stdout
    assert "step" in p.stderr                               # the tqdm bar went to stderr
    r = RunStore(db).runs()[0]
    assert r["name"] == "from-cli" and r["status"] == "finished" and r["config"]["seed"] == 3
    assert r["config"]["loss"] == {"name": "focal", "kind": "classification", "hparams": {"gamma": 2}}
    assert not any(m == {} for m in r["config"]["monitors"])      # the progress bar is not a stored monitor
    acc = float(p.stdout.split("test  loss")[1].split("accuracy")[1].split()[0])
    assert acc == pytest.approx(RunStore(db).scalars(r["id"], "test/acc")["test/acc"][1][-1], abs=1e-4)
    ls = _run("runs", "--store", str(db))
    assert ls.returncode == 0 and "from-cli" in ls.stdout and "finished" in ls.stdout and "digits mlp focal" in ls.stdout
    js = json.loads(_run("runs", "--store", str(db), "--json").stdout)
    assert js[0]["name"] == "from-cli" and js[0]["step"] == r["step"] and "test/acc" in js[0]["summary"]


def test_store_from_environment(tmp_path):
    db = tmp_path / "env.sqlite"
    p = _run("train", "--epochs", "1", "--no-progress", env={"LOSSVIZ_STORE": str(db)})
    assert p.returncode == 0, p.stderr
    assert len(RunStore(db).runs()) == 1 and "step" not in p.stderr


@pytest.mark.parametrize("args, message", [
    (["--dataset", "digitz"], "--dataset: unknown dataset 'digitz'; valid: digits, blobs"),
    (["--model", "mlpp"], "--model: unknown model 'mlpp'; valid: mlp, cnn, resnet18"),
    (["--loss", "focall"], "--loss: unknown loss 'focall'; valid: "),
    (["--loss", "focal", "--loss-param", "gama=2"], "gama"),
    (["--loss", "focal", "--loss-param", "gamma"], "--loss-param: expected KEY=VALUE"),
    (["--loss", "focal", "--loss-param", "gamma=-5"], "gamma: expected a value in"),
    (["--optimizer", "lbfgs"], "--optimizer: unknown optimizer 'lbfgs'; valid: sgd, adam, adamw"),
    (["--monitor", "colapse"], "--monitor: unknown monitor 'colapse'"),
    (["--epochs", "0"], "--epochs: expected an integer >= 1, got 0"),
    (["--every", "-3"], "--every: expected an integer >= 1, got -3"),
    (["--batch-size", "0"], "--batch-size: expected an integer >= 1"),
    (["--loss", "multi_similarity", "--batch-size", "7"], "--batch-size: a pair loss needs every batch to hold at least 2 classes"),
    (["--loss", "contrastive", "--batch-size", "3"], "3 cannot be split"),
    (["--amp", "fp16"], "--amp: unknown precision 'fp16'; valid: bf16"),
    (["--lr", "-1"], "--lr: expected a positive learning rate"),
    (["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "gpu"], "device"),
])
def test_bad_input_is_one_clean_line_and_exit_2(tmp_path, capsys, args, message):
    code = cli.main(["train", "--store", str(tmp_path / "x.sqlite"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1
    assert RunStore(tmp_path / "x.sqlite").runs() == []       # nothing half-made in the store


def test_unknown_names_from_the_console_script(tmp_path):
    p = _run("train", "--dataset", "nope", "--store", str(tmp_path / "x.sqlite"))
    assert p.returncode == 2 and "valid: digits" in p.stderr and "Traceback" not in p.stderr
    p = _run("frobnicate")
    assert p.returncode == 2 and "invalid choice" in p.stderr


def test_diverged_exits_1(tmp_path, capsys):
    code = cli.main(["train", "--store", str(tmp_path / "x.sqlite"), "--no-progress", "--lr", "1e6", "--epochs", "3"])
    assert code == 1 and "diverged" in capsys.readouterr().err
    assert RunStore(tmp_path / "x.sqlite").runs()[0]["status"] == "diverged"


def test_runs_on_an_empty_store(tmp_path, capsys):
    assert cli.main(["runs", "--store", str(tmp_path / "e.sqlite")]) == 0
    assert "no runs in" in capsys.readouterr().out


def test_serve_delegates_to_app(monkeypatch, tmp_path):
    import lossviz.app.server as server
    got = {}
    monkeypatch.setattr(server, "main", lambda a: got.update(vars(a)) or 0)
    assert cli.main(["serve", "--port", "0", "--store", str(tmp_path / "s.sqlite"), "--no-default-run"]) == 0
    assert got["address"] == "127.0.0.1" and got["port"] == 0 and got["store"] == str(tmp_path / "s.sqlite")
    assert got["no_default_run"] is True and got["show"] is False
    cli.main(["serve", "--port", "0"])
    assert got["no_default_run"] is False and got["store"] is None


def test_parse_values():
    assert cli.parse_params(["a=1", "b=1e-3", "c=false", "d=none", "e=x=y"]) == {"a": 1, "b": 1e-3, "c": False, "d": None, "e": "x=y"}


def test_python_dash_m(tmp_path):
    p = subprocess.run([sys.executable, "-m", "lossviz.cli", "runs", "--store", str(tmp_path / "m.sqlite")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "no runs" in p.stdout


def _one_line(capsys, code, *says):
    err = capsys.readouterr().err
    assert code == 2, err
    for x in says: assert x in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    return err


def test_bad_stores_are_one_line_errors(tmp_path, capsys):
    import sqlite3
    corrupt = tmp_path / "corrupt.sqlite"; corrupt.write_bytes(b"\x00garbage" * 500)
    _one_line(capsys, cli.main(["runs", "--store", str(corrupt)]), "--store", str(corrupt), "not an SQLite database")
    _one_line(capsys, cli.main(["train", "--store", str(corrupt), "--no-progress"]), "--store", "not an SQLite database")
    _one_line(capsys, cli.main(["runs", "--store", str(tmp_path)]), "--store", str(tmp_path), "is a directory")
    _one_line(capsys, cli.main(["train", "--store", str(tmp_path), "--no-progress"]), "is a directory")
    foreign = tmp_path / "notes.db"
    con = sqlite3.connect(foreign); con.execute("CREATE TABLE notes (t TEXT)"); con.commit(); con.close()
    before = foreign.read_bytes()
    _one_line(capsys, cli.main(["runs", "--store", str(foreign)]), "not a lossviz run store", "notes")
    _one_line(capsys, cli.main(["serve", "--port", "0", "--store", str(foreign)]), "--store", "not a lossviz run store")
    assert foreign.read_bytes() == before and not Path(str(foreign) + "-wal").exists()     # left unchanged


def test_serve_port_in_use_is_one_line(capsys):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0)); busy.listen(1); port = busy.getsockname()[1]
        _one_line(capsys, cli.main(["serve", "--port", str(port)]), "--port", str(port), "in use")
    _one_line(capsys, cli.main(["serve", "--port", "70000"]), "--port: expected 0..65535")


def test_serve_restarts_on_a_port_with_closed_connections(monkeypatch, tmp_path):
    "A restarted server gets its port back while the last one's connections linger in TIME_WAIT (only a listener is 'in use')."
    import socket, lossviz.app.server as server
    with socket.socket() as lst:
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", 0)); lst.listen(1); port = lst.getsockname()[1]
        cl = socket.create_connection(("127.0.0.1", port)); conn, _ = lst.accept()
        conn.close(); cl.close() # the server side closed first: its end of the connection waits in TIME_WAIT on `port`
    monkeypatch.setattr(server, "main", lambda a: 0)
    assert cli.main(["serve", "--port", str(port), "--store", str(tmp_path / "s.sqlite"), "--no-default-run"]) == 0


def test_read_only_store_can_be_listed(tmp_path, capsys, monkeypatch):
    db = tmp_path / "ro.sqlite"
    s = RunStore(db); rid = s.create_run("kept"); s.set_status(rid, "finished"); s.close()
    from lossviz import store as S
    monkeypatch.setattr(S.os, "access", lambda path, mode: False)      # as a user without write permission (root writes anyway)
    before = db.read_bytes()
    assert cli.main(["runs", "--store", str(db)]) == 0
    assert "kept" in capsys.readouterr().out and db.read_bytes() == before


def test_cli_and_api_get_the_same_monitors(tmp_path):
    "Same loss, same monitors: a pair loss from the CLI records pair weights and retrieval metrics, like Run(...)."
    from lossviz.train import Run
    db = tmp_path / "m.sqlite"
    assert cli.main(["train", "--store", str(db), "--no-progress", "--dataset", "blobs", "--loss", "multi_similarity",
                     "--batch-size", "32", "--epochs", "1"]) == 0
    api = Run("mlp", "blobs", loss="multi_similarity", batch_size=32, epochs=1, store=db).run_sync()
    runs = RunStore(db).runs()
    names = [[m["name"] for m in r["config"]["monitors"]] for r in runs]
    assert names[0] == names[1] and "gpw" in names[0] and "retrieval" in names[0]
    assert "test/recall@1" in RunStore(db).keys(runs[0]["id"])
    assert cli.main(["train", "--store", str(db), "--no-progress", "--monitor", "none", "--epochs", "1"]) == 0
    assert cli.main(["train", "--store", str(db), "--no-progress", "--dataset", "blobs", "--loss", "triplet",
                     "--batch-size", "32", "--monitor", "gpw", "--epochs", "1"]) == 0
    r_none, r_gpw = RunStore(db).runs()[-2:]
    assert r_none["config"]["monitors"] == [] and RunStore(db).keys(r_none["id"]) == []
    assert [m["name"] for m in r_gpw["config"]["monitors"]] == ["gpw"]


def test_pair_loss_divergence_exits_1(tmp_path, capsys):
    code = cli.main(["train", "--store", str(tmp_path / "x.sqlite"), "--no-progress", "--dataset", "blobs",
                     "--loss", "multi_similarity", "--batch-size", "32", "--lr", "1e30", "--epochs", "2"])
    assert code == 1 and "diverged" in capsys.readouterr().err
    assert RunStore(tmp_path / "x.sqlite").runs()[0]["status"] == "diverged"


def test_sam_and_amp_from_the_cli(tmp_path):
    db = tmp_path / "s.sqlite"
    assert cli.main(["train", "--store", str(db), "--no-progress", "--optimizer", "sam", "--sam-rho", "0.1", "--amp", "bf16",
                     "--epochs", "1"]) == 0
    c = RunStore(db).runs()[0]["config"]
    assert c["optimizer"]["name"] == "sam" and c["optimizer"]["rho"] == 0.1 and c["amp"] == "bf16"
