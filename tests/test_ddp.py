"""`lossviz train` under torchrun: two CPU processes (gloo), DDP, monitors reduced across ranks, rank 0 writes."""
import os, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

from lossviz.data import load
from lossviz.store import RunStore

pytestmark = [pytest.mark.ddp, pytest.mark.slow]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _cli(*args, torchrun=False, timeout=400):
    pre = TORCHRUN + ["--standalone", "--nproc_per_node=2"] if torchrun else [sys.executable]
    p = subprocess.run(pre + ["-m", "lossviz.cli", "train", "--no-progress", *args], capture_output=True, text=True,
                       env=_env(), timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def test_ddp_two_ranks_agree_and_match_one_process(tmp_path):
    ddp_store, one_store = tmp_path / "ddp.sqlite", tmp_path / "one.sqlite"
    # 2 ranks x 32 samples = the same global batches as one process with 64 (same seed, same order)
    p = _cli("--epochs", "2", "--batch-size", "32", "--store", str(ddp_store), "--name", "ddp", torchrun=True)
    assert p.stdout.count("finished after") == 1          # only rank 0 prints
    s = RunStore(ddp_store)
    runs = s.runs()
    assert len(runs) == 1                                  # only rank 0 writes
    r = runs[0]
    cfg = r["config"]
    assert r["status"] == "finished" and cfg["world_size"] == 2 and cfg["batch_size"] == 32
    ds = load("digits")
    spe = len(ds.x_train) // 64                                    # global batches of 64, the last partial one dropped
    assert cfg["steps_per_epoch"] == spe and r["step"] == 2 * spe
    c = s.scalars(r["id"])
    np.testing.assert_array_equal(c["train/loss"][0], np.arange(10, 2 * spe + 1, 10))
    np.testing.assert_array_equal(c["test/acc"][0], [spe, 2 * spe])
    assert c["test/acc"][1][-1] > 0.8
    # the ranks ended with identical parameters
    sums = cfg["param_checksums"]
    assert len(sums) == 2 and sums[0] == pytest.approx(sums[1], rel=0, abs=1e-9)

    # one process with the global batch size sees the same batches for the first epoch's full steps:
    # the window losses reduced across ranks must equal the single-process ones
    _cli("--epochs", "1", "--batch-size", "64", "--store", str(one_store))
    o = RunStore(one_store); oc = o.scalars(o.runs()[0]["id"])
    for key in ("train/loss", "train/acc", "grad_norm"):
        np.testing.assert_allclose(c[key][1][:2], oc[key][1][:2], rtol=2e-4, err_msg=key)
    # the test set is split over the ranks and the sums merged: the first epoch's test accuracy is the
    # accuracy on the whole test set (a multiple of 1/len(test set))
    acc = c["test/acc"][1][0] * len(ds.x_test)
    assert abs(acc - round(acc)) < 1e-3


def test_ddp_run_obeys_pause_resume_stop_from_the_store(tmp_path):
    "Commands reach rank 0 through the store; every rank follows (a flag all-reduce), so DDP never deadlocks."
    import time
    path = tmp_path / "ctl.sqlite"
    RunStore(path)
    p = subprocess.Popen(TORCHRUN + ["--standalone", "--nproc_per_node=2", "-m", "lossviz.cli", "train", "--no-progress",
                                     "--epochs", "3000", "--batch-size", "32", "--every", "2", "--store", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True)
    def wait_for(pred, what, timeout=180):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if pred(): return
            assert p.poll() is None, f"torchrun ended before {what}: {p.stderr.read()[-3000:]}"
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")
    s = RunStore(path)
    try:
        wait_for(lambda: s.runs() and s.runs()[0]["step"] >= 6, "some steps")
        rid = s.runs()[0]["id"]
        s.send(rid, "pause")
        wait_for(lambda: s.run(rid)["status"] == "paused", "paused")
        s0 = s.run(rid)["step"]; time.sleep(1.0)
        assert s.run(rid)["step"] == s0
        s.send(rid, "resume")
        wait_for(lambda: s.run(rid)["status"] == "running" and s.run(rid)["step"] > s0 + 4, "resumed")
        s.send(rid, "stop")
        assert p.wait(120) == 0, p.stderr.read()[-3000:]
    finally:
        if p.poll() is None:
            import signal; os.killpg(p.pid, signal.SIGKILL); p.wait(30)
    r = s.run(rid)
    assert r["status"] == "stopped" and len(s.runs()) == 1
    sums = r["config"]["param_checksums"]
    assert len(sums) == 2 and sums[0] == pytest.approx(sums[1], rel=0, abs=1e-9)
