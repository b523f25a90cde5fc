"""CalibrationMonitor on live runs: scalars on the timeline from the shared evaluation pass, reliability artifacts,
equal to the one-shot metrics; nothing for runs without a classifier head."""
import numpy as np
import pytest
import torch

from lossviz import calibration as cal
from lossviz.monitors.calibration import CalibrationMonitor
from lossviz.monitors.core import compute_eval_pass
from lossviz.store import RunStore
from lossviz.train import Run


def test_run_logs_calibration_every_epoch(tmp_path):
    path = tmp_path / "runs.sqlite"
    r = Run("mlp", "blobs", epochs=3, store=path, monitors=["default", "calibration"]).run_sync()
    assert r.status == "finished"
    sc = r.scalars()
    for k in ("ece", "mce", "nll", "brier", "temperature", "ece_at_t"):
        steps, vals = sc[f"calibration/{k}"]
        assert len(vals) == 3 and np.all(np.isfinite(vals)), k
    assert list(sc["calibration/ece"][0]) == list(sc["test/acc"][0])    # the same steps as the test metrics
    s = RunStore(path)
    arts = [s.artifact(r.id, "reliability", step=int(st)) for st in sc["calibration/ece"][0]]
    last = arts[-1]
    assert last.kind == "reliability" and int(last["count"].sum()) == 120 and last["edges"].shape == (16,)
    assert last.meta["epoch"] == 3 and last.meta["ece"] == pytest.approx(sc["calibration/ece"][1][-1])
    # the stored table reproduces the logged ECE
    t = cal.ReliabilityTable(torch.as_tensor(last["edges"]), torch.as_tensor(last["confidence"]),
                             torch.as_tensor(last["accuracy"]), torch.as_tensor(last["count"]))
    assert t.ece() == pytest.approx(sc["calibration/ece"][1][-1], abs=1e-9)
    # and the final model's test logits give the same numbers one-shot
    ep = compute_eval_pass(r.model, r.data.x_test, r.data.y_test, "test")
    assert cal.ece(ep.logits, ep.labels, from_logits=True) == pytest.approx(sc["calibration/ece"][1][-1], abs=1e-6)
    assert cal.fit_temperature(ep.logits, ep.labels) == pytest.approx(sc["calibration/temperature"][1][-1], rel=1e-6)


def test_one_eval_pass_shared(tmp_path):
    "The monitor reads the run's pass: with test metrics and calibration the model sees the test set once per epoch."
    calls = []
    r = Run("mlp", "blobs", epochs=1, store=False, monitors=["test", "calibration"])
    orig = r.eval_pass
    def counting(split="test"):
        ep = orig(split); calls.append((split, id(ep))); return ep
    r.eval_pass = counting
    r.run_sync()
    assert r.status == "finished"
    assert len(calls) >= 2 and len({i for _, i in calls}) == 1     # every caller got the same pass object


def test_no_head_no_calibration(tmp_path):
    r = Run("mlp", "blobs", loss="multi_similarity", epochs=1, store=tmp_path / "r.sqlite",
            monitors=["calibration"]).run_sync()
    assert r.status == "finished"
    assert not any(k.startswith("calibration/") for k in r.scalars())


def test_options_and_bad_input():
    m = CalibrationMonitor(n_bins=10, temperature=False, artifact=False)
    assert m.config()["n_bins"] == 10 and m.name == "calibration"
    with pytest.raises(ValueError, match="n_bins"): CalibrationMonitor(n_bins=0)
    with pytest.raises(ValueError, match="split"): CalibrationMonitor(split="val")
    assert CalibrationMonitor(every=None).split == "test"


def test_worker_thread_logs_every_epoch_and_raises_its_errors(tmp_path):
    "In one process the measurement runs beside the loop: all epochs logged before the run ends; a failure fails the run."
    r = Run("mlp", "blobs", epochs=3, store=tmp_path / "a.sqlite", monitors=[CalibrationMonitor(background=True)]).run_sync()
    assert r.status == "finished" and len(r.scalars()["calibration/ece"][1]) == 3
    fg = Run("mlp", "blobs", epochs=3, store=tmp_path / "b.sqlite", monitors=[CalibrationMonitor(background=False)]).run_sync()
    assert fg.scalars()["calibration/ece"][1] == pytest.approx(r.scalars()["calibration/ece"][1], abs=1e-12)  # same numbers

    class Broken(CalibrationMonitor):
        def measure(self, run, ep): raise RuntimeError("measurement broke")
    b = Run("mlp", "blobs", epochs=2, store=tmp_path / "c.sqlite", monitors=[Broken()])
    with pytest.raises(RuntimeError, match="measurement broke"): b.run_sync()
    assert b.status == "failed" and "measurement broke" in b.error.args[0]
