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
    (["--epochs", "0"], "epochs: expected an int >= 1"),
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
    import lossviz.app
    got = {}
    monkeypatch.setattr(lossviz.app, "serve", lambda **kw: got.update(kw))
    assert cli.main(["serve", "--port", "0", "--store", str(tmp_path / "s.sqlite"), "--no-default-run"]) == 0
    assert got == {"address": "127.0.0.1", "port": 0, "store": str(tmp_path / "s.sqlite"), "default_run": False, "show": False}
    cli.main(["serve"])
    assert got["port"] == 5006 and got["default_run"] is True and got["store"] is None


def test_parse_values():
    assert cli.parse_params(["a=1", "b=1e-3", "c=false", "d=none", "e=x=y"]) == {"a": 1, "b": 1e-3, "c": False, "d": None, "e": "x=y"}


def test_python_dash_m(tmp_path):
    p = subprocess.run([sys.executable, "-m", "lossviz.cli", "runs", "--store", str(tmp_path / "m.sqlite")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "no runs" in p.stdout
