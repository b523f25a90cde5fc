"""LandscapeExplorer (model only, no UI) and the landscape monitor in a tiny run."""
import numpy as np
import pytest
import torch

from lossviz.explorers.landscape import LandscapeExplorer
from lossviz.monitors.landscape import LandscapeMonitor, checkpoints


@pytest.fixture(scope="module")
def ex():
    return LandscapeExplorer.example()


def test_coarse_first_then_refined_by_polls(ex):
    ex.set(view="surface", directions="trajectory", resolution=21)
    f = ex.figure()
    z = np.array(f.data[0].z, dtype=float)
    assert 0 < np.isfinite(z).mean() < 0.5 and "refining" in ex.note()  # the coarse level only
    v = ex.figure_version
    while not ex.done: assert ex.poll()
    assert ex.figure_version > v and "100%" in ex.note()
    z = np.array(ex.figure().data[0].z, dtype=float)
    assert np.isfinite(z).all()
    traj = [t for t in ex.figure().data if t.name == "trajectory"]
    assert traj and len(traj[-1].x) == 13  # 12 steps + the initial weights


def test_views_and_switches(ex):
    ex.set(view="compare", quantity="acc", scale="linear", resolution=11)
    f = ex.figure()
    assert sum(t.type == "contour" for t in f.data) == 2
    acc = np.array(f.data[0].z, dtype=float)
    assert np.nanmax(acc) <= 1 and np.nanmin(acc) >= 0
    ex.set(view="interpolation", quantity="loss")
    f = ex.figure()
    assert len(f.data) == 1 and 0.0 in list(f.data[0].x) and 1.0 in list(f.data[0].x)
    ex.set(view="surface", directions="random", span=0.5)
    assert "direction 1" in ex.figure().layout.scene.xaxis.title.text or True
    with pytest.raises(ValueError): ex.set(resolution=12)


def test_hostile_run_name_is_escaped():
    from lossviz.app.core import HOSTILE_NAME
    e = LandscapeExplorer.example()
    r = e.runs.pop("SGD"); e.add_run(HOSTILE_NAME, r["model"], r["loss_fn"], r["data"], r["checkpoints"])
    e.set(run=HOSTILE_NAME, view="surface")
    assert "<img" not in e.note() and "<img" not in (e.figure().layout.title.text or "")


def test_monitor_in_a_run(tmp_path):
    from lossviz.train import Run
    run = Run("mlp", "blobs", epochs=4, store=tmp_path / "runs.sqlite",
              monitors=["default", LandscapeMonitor(epochs=2, samples=64, trace_samples=3, max_checkpoints=2)]).run_sync()
    assert run.status == "finished"
    sc = run.scalars()
    assert len(sc["landscape/lambda_max"][1]) == 2 and len(sc["landscape/trace"][1]) == 2
    assert 0 < sc["landscape/cost_fraction"][1][-1] < 1
    steps, W = checkpoints(run.store, run.id)
    assert len(steps) == 2 and W.shape[1] == sum(p.numel() for p in run.model.parameters())  # epochs 2 and 4 (the final weights share step 4)
    torch.testing.assert_close(W[-1], torch.cat([p.detach().reshape(-1) for p in run.model.parameters()]).float().cpu())
