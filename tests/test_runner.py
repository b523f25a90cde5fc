"""lossviz.runner: start requests trained in their own processes; a crashed, SIGKILLed or diverging run never touches the
process that launched it or the other runs; server-side limits; stop_all ends the launcher's runs as `stopped` only."""
import os, signal, sys, time
import pytest
from lossviz.store import RunStore
from lossviz.runner import Launcher, Limits, Refused, validate_request, get_request
from _util import wait


@pytest.fixture
def store(tmp_path): return RunStore(tmp_path / "runs.sqlite", heartbeat_timeout=5)


def test_validation_is_server_side_against_registries_and_hparam_bounds():
    with pytest.raises(Refused, match="epochs: must be from 1 to 1000"): validate_request({"epochs": 1_000_000_000})
    with pytest.raises(Refused, match="epochs"): validate_request({"epochs": 2.5})
    with pytest.raises(Refused, match="gamma"): validate_request({"loss": "focal", "loss_params": {"gamma": -3.0}})
    with pytest.raises(Refused, match="no hyperparameter"): validate_request({"loss": "focal", "loss_params": {"q": 0.5}})
    with pytest.raises(Refused, match="lr"): validate_request({"lr": 1e6})
    with pytest.raises(Refused, match="device"): validate_request({"device": "cuda"}, Limits(devices=("auto", "cpu")))
    with pytest.raises(Refused, match="classification, pair or proxy"): validate_request({"loss": "__import__('os')"})
    with pytest.raises(Refused, match="epochs: must be from 1 to 5"): validate_request({"epochs": 6}, Limits(max_epochs=5))
    from lossviz import losses
    for kind in ("classification", "pair", "proxy"): # every trainable registered loss is accepted with its defaults
        for name in losses.names(kind):
            assert validate_request({"loss": name, "batch_size": 64})["loss"] == name



def test_a_request_chooses_its_monitors_by_registered_name(store):
    assert validate_request({"monitors": ["default", "collapse", "landscape"]})["monitors"] == ["default", "collapse", "landscape"]
    assert "monitors" not in validate_request({}) # absent: the run's default monitors
    with pytest.raises(Refused, match="monitors: unknown monitor"): validate_request({"monitors": ["collapse", "os.system"]})
    with pytest.raises(Refused, match="monitors: expected a list"): validate_request({"monitors": 3})
    L = Launcher(store, Limits(max_runs=1))
    req = L.start({"data": "blobs", "epochs": 2, "name": "m", "monitors": ["default", "collapse"]})
    rid = L.run_of(req, timeout=90)
    wait(lambda: store.run(rid)["status"] in ("finished", "failed"), "the run to end", 120)
    assert store.run(rid)["status"] == "finished" and store.artifacts(rid, "class_means")
    assert any(k.startswith("test/") for k in store.keys(rid)) # "default" still brings its monitors

def test_launcher_checks_its_nice(store):
    with pytest.raises(ValueError, match="nice"): Launcher(store, nice=-1)
    with pytest.raises(ValueError, match="nice"): Launcher(store, nice=20)

def test_crash_sigkill_and_divergence_stay_in_their_processes(store):
    L = Launcher(store, Limits(max_runs=3))
    steady = L.start({"epochs": 1000, "lr": 0.01, "name": "steady"})
    victim = L.start({"epochs": 1000, "lr": 0.01, "name": "victim"})
    wild = L.start({"epochs": 50, "lr": 10.0, "loss": "cross_entropy", "name": "wild"})
    rs, rv, rw = (L.run_of(r, timeout=90) for r in (steady, victim, wild))
    assert None not in (rs, rv, rw)
    assert os.getpid() not in {L.procs[r].pid for r in (steady, victim, wild)} # each in its own process
    wait(lambda: store.run(rv)["status"] == "running" and store.run(rv)["step"] > 0, "the victim to train")
    # runners train below the server's priority (Launcher(nice=10)), so the pages stay responsive on shared cores
    assert os.getpriority(os.PRIO_PROCESS, L.procs[victim].pid) == min(os.getpriority(os.PRIO_PROCESS, 0) + 10, 19)
    os.kill(L.procs[victim].pid, signal.SIGKILL)
    wait(lambda: victim not in L.live(), "the launcher to notice the killed runner")
    assert store.run(rv)["status"] == "failed" and "signal 9" in store.run(rv)["error"]
    assert get_request(store, victim)["state"] == "failed"
    wait(lambda: store.run(rw)["status"] in ("diverged", "finished", "failed"), "the wild run to end", 120)
    step = store.run(rs)["step"]
    wait(lambda: store.run(rs)["step"] > step, "the steady run to keep training")
    assert store.run(rs)["status"] == "running"
    L.stop_all()
    assert store.run(rs)["status"] == "stopped"


def test_concurrency_limit_and_stop_all_leaves_other_runs_alone(store):
    L = Launcher(store, Limits(max_runs=1))
    mine = L.start({"epochs": 1000, "lr": 0.01})
    with pytest.raises(Refused, match="limit"): L.start({"epochs": 2})
    other = store.create_run("from-a-notebook"); store.set_status(other, "running") # started elsewhere
    rid = L.run_of(mine, timeout=90)
    L.stop_all()
    assert store.run(rid)["status"] == "stopped" and L.live() == []
    store.heartbeat(other)
    assert store.run(other)["status"] == "running"
    L.start({"epochs": 1}) # a slot is free again
    wait(lambda: not L.live(), "the short run to end")


def test_runner_stops_its_run_when_the_server_disappears(store, tmp_path):
    import subprocess
    from lossviz.runner import submit_request
    req = submit_request(store, validate_request({"epochs": 1000, "lr": 0.01}))
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    child = subprocess.Popen([sys.executable, "-m", "lossviz.runner", "--store", str(store.path), "--request", str(req),
                              "--parent", str(parent.pid)], start_new_session=True)
    try:
        rid = wait(lambda: get_request(store, req)["run_id"], "the runner to create its run")
        wait(lambda: store.run(rid)["status"] == "running", "the run to start")
        parent.kill(); parent.wait()
        assert child.wait(60) == 0
        assert store.run(rid)["status"] == "stopped"
    finally:
        for p in (parent, child):
            if p.poll() is None: p.kill(); p.wait()
