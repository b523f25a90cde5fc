"""CollapseMonitor: per-epoch collapse scalars and class-mean artifacts from the run's shared evaluation pass (no extra
forward), equal to lossviz.collapse.metrics on that pass; under torchrun (2 gloo ranks) rank 0 writes the merged numbers."""
import os, subprocess, sys
import numpy as np
import pytest
import torch

from lossviz.collapse import metrics
from lossviz.monitors.core import compute_eval_pass
from lossviz.train import Run
from lossviz.store import RunStore

KEYS = ("collapse/nc1", "collapse/nc2_equinorm", "collapse/nc2_equiangular", "collapse/nc3", "collapse/nc4", "collapse/cdnv")


def test_collapse_monitor_logs_every_epoch_and_stores_class_means(tmp_path):
    run = Run("mlp", "blobs", epochs=3, store=tmp_path / "r.sqlite", monitors=["test", "collapse"], seed=1).run_sync()
    assert run.status == "finished"
    sc = run.scalars()
    for k in KEYS + ("collapse/seconds",):
        assert len(sc[k][1]) == 3, k
    np.testing.assert_array_equal(sc["collapse/nc1"][0], sc["test/acc"][0])       # same steps: the epoch ends
    steps = run.store.artifacts(run.id, "class_means")
    assert list(steps) == list(sc["collapse/nc1"][0])
    art = run.store.artifact(run.id, "class_means", steps[0])
    C, D = run.model.head.weight.shape
    assert art.data["means"].shape == (C, D) and art.data["weight"].shape == (C, D) and art.data["bias"].shape == (C,)
    assert art.meta["epoch"] == 1 and art.meta["split"] == "train"
    np.testing.assert_allclose(art.data["global_mean"], art.data["means"][art.data["counts"] > 0].mean(0), rtol=1e-5, atol=1e-6)
    # the last epoch's numbers are those of metrics() on the same train samples with the final model
    ds = run.data
    idx = getattr(run, "_train_eval_idx", None)
    x, y = (ds.x_train, ds.y_train) if idx is None else (ds.x_train[idx], ds.y_train[idx])
    ep = compute_eval_pass(run.model, x, y, "train")
    m = metrics(ep.features, ep.labels, run.model.head.weight.detach(), run.model.head.bias.detach())
    for k in KEYS:
        assert sc[k][1][-1] == pytest.approx(getattr(m, k.split("/")[1]), rel=1e-5, abs=1e-9), k
    fin = run.store.artifact(run.id, "class_means")
    np.testing.assert_allclose(fin.data["weight"], run.model.head.weight.detach().numpy(), rtol=1e-6)


def test_collapse_monitor_uses_the_shared_pass_only(monkeypatch):
    "The monitor asks for the train pass once per epoch and never runs a forward of its own."
    import lossviz.train as T
    calls = []
    real = T.compute_eval_pass
    def counting(model, x, y, split, *a, **k):
        calls.append(split); return real(model, x, y, split, *a, **k)
    monkeypatch.setattr(T, "compute_eval_pass", counting)
    from lossviz.monitors.collapse import CollapseMonitor
    mon = CollapseMonitor()
    run = Run("mlp", "blobs", epochs=2, store=False, monitors=[mon], seed=2).run_sync()
    assert run.status == "finished" and calls.count("train") == 2 and mon.seconds > 0


def test_collapse_monitor_split_and_bad_arguments():
    from lossviz.monitors.collapse import CollapseMonitor
    assert CollapseMonitor(split="test").config()["split"] == "test"
    with pytest.raises(ValueError, match="split: expected one of 'train', 'test'"):
        CollapseMonitor(split="val")


@pytest.mark.ddp
def test_collapse_monitor_under_torchrun(tmp_path):
    "Two gloo ranks, each with half of the train pass: rank 0 writes statistics merged over all the samples."
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    store = tmp_path / "ddp.sqlite"
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(store)],
                       capture_output=True, text=True, env=env, timeout=400)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    s = RunStore(store)
    (r,) = s.runs()                                                    # only rank 0 writes
    assert r["config"]["world_size"] == 2
    sc = s.scalars(r["id"])
    for k in KEYS: assert len(sc[k][1]) == 2 and np.all(np.isfinite(sc[k][1])), k
    assert len(s.artifacts(r["id"], "class_means")) == 2
    art = s.artifact(r["id"], "class_means")
    from lossviz.data import load
    assert art.data["counts"].sum() == min(len(load("digits").y_train), 4096)   # both shards counted
    assert 0 <= sc["collapse/nc4"][1][-1] <= 1


if __name__ == "__main__":
    Run("mlp", "digits", epochs=2, batch_size=32, store=sys.argv[1], monitors=["default", "collapse"], seed=0).run_sync()
