"""Monitors: each default monitor against an independent computation, the hook protocol, the shared evaluation pass,
and the registry (names resolve without prior imports)."""
import subprocess, sys
import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from lossviz import data as D
from lossviz.monitors import (Monitor, StepOutput, TrainMetrics, TestMetrics, LearningRate, GradNorm, Throughput,
                              evaluate, overrides, register_monitor, resolve_monitors, monitor_names, compute_eval_pass,
                              EvalPass, MAX_TRAIN_EVAL, PAIR_DEFAULT, DEFAULT)
import lossviz.monitors.core as MC
from lossviz.store import RunStore
from lossviz.train import Run, track


class FakeRun:
    "Just what monitors read."
    kind = "classification"; rank = 0; world_size = 1; device = torch.device("cpu"); paused_seconds = 0.0; samples_seen = 0
    def __init__(self, model=None, data=None, loss_fn=None, optimizer=None):
        self.model, self.data, self.loss_fn, self.optimizer = model, data, loss_fn, optimizer
    global_step = 0
    def all_reduce(self, t): return t
    def parameters(self): return self.model.parameters()
    def eval_pass(self, split="test"):
        return compute_eval_pass(self.model, getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}"), split, chunk=7)


class Clock:
    "A fake `time` module for the monitors: `perf_counter()` returns what the test sets."
    def __init__(self): self.t = 100.0
    def perf_counter(self): return self.t


def test_train_metrics_match_numpy():
    rng = np.random.default_rng(0)
    tm = TrainMetrics(every=4); run = FakeRun()
    for s in range(4):
        n = int(rng.integers(1, 9)); z = rng.normal(size=(n, 5)).astype(np.float32); y = rng.integers(0, 5, n)
        l = float(rng.random())
        out = tm.on_step(run, s + 1, None, StepOutput(torch.tensor(l), torch.tensor(y), torch.tensor(z), batch_size=n))
        assert float(out["train/loss"]) == pytest.approx(l, rel=1e-7)
        assert float(out["train/acc"]) == pytest.approx(np.mean(z.argmax(1) == y), abs=1e-7)


def test_train_metrics_without_logits_logs_loss_only():
    tm = TrainMetrics(); run = FakeRun()
    assert set(tm.on_step(run, 1, None, StepOutput(torch.tensor(2.0), torch.zeros(3, dtype=torch.long), batch_size=3))) == {"train/loss"}
    run.kind = "pair"                                                    # embeddings are not logits: no accuracy
    out = tm.on_step(run, 2, None, StepOutput(torch.tensor(2.0), torch.tensor([0, 1, 1]), embeddings=torch.randn(3, 2), batch_size=3))
    assert set(out) == {"train/loss"} and float(out["train/loss"]) == 2.0


def test_grad_norm_matches_clip_grad_norm():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    net(torch.randn(5, 4)).pow(2).sum().backward()
    want = torch.nn.utils.clip_grad_norm_(net.parameters(), float("inf"))
    assert float(GradNorm().on_backward(FakeRun(net), 1)["grad_norm"]) == pytest.approx(float(want), rel=1e-6)
    net.zero_grad(set_to_none=True)
    assert GradNorm().on_backward(FakeRun(net), 1) is None


def test_on_backward_sees_the_gradient_of_this_step(store_path):
    "Plain SGD: the update equals -lr * the gradient the monitor saw, so it ran between backward and step."
    seen = {}
    class Grab(Monitor):
        def on_start(self, run): self.before = [p.detach().clone() for p in run.model.parameters()]
        def on_backward(self, run, step):
            if step == 1: seen["g"] = [p.grad.clone() for p in run.model.parameters()]
        def on_step(self, run, step, batch, out):
            if step == 1: seen["delta"] = [p.detach() - b for p, b in zip(run.model.parameters(), self.before)]
    Run("mlp", "digits", epochs=1, momentum=0.0, lr=0.1, store=store_path, monitors=[Grab(every=1)]).run_sync()
    for g, d in zip(seen["g"], seen["delta"]): torch.testing.assert_close(d, -0.1 * g)


def test_learning_rate_and_throughput(monkeypatch):
    net = nn.Linear(2, 2); opt = torch.optim.Adam(net.parameters(), lr=3e-4)
    assert LearningRate().on_step(FakeRun(net, optimizer=opt), 1, None, None) == {"lr": 3e-4}
    assert LearningRate().on_step(FakeRun(net), 1, None, None) is None
    clock = Clock(); monkeypatch.setattr(MC, "time", clock)      # a fake clock: no wall-clock assertion
    tp2 = Throughput(); run2 = FakeRun(net); tp2.on_start(run2)
    run2.samples_seen += 100; clock.t += 0.05
    assert tp2.on_step(run2, 1, None, None)["throughput"] == pytest.approx(100 / 0.05)


def test_throughput_excludes_paused_time(monkeypatch):
    clock = Clock(); monkeypatch.setattr(MC, "time", clock)
    run = FakeRun(nn.Linear(1, 1)); tp = Throughput(); tp.on_start(run)
    run.samples_seen += 1000
    clock.t += 0.2; run.paused_seconds = 0.15
    assert tp.on_step(run, 1, None, None)["throughput"] == pytest.approx(1000 / 0.05)   # the pause is not in the window


def test_evaluate_and_test_metrics_match_sklearn_style_count():
    ds = D.load("blobs", classes=3, dim=2)
    net = nn.Linear(2, 3)
    run = FakeRun(net, ds, lambda z, y: F.cross_entropy(z, y))
    out = TestMetrics().on_epoch(run, 1)
    with torch.no_grad(): z = net(ds.x_test)
    assert float(out["test/acc"]) == pytest.approx(float((z.argmax(1) == ds.y_test).float().mean()), abs=1e-6)
    assert float(out["test/loss"]) == pytest.approx(float(F.cross_entropy(z, ds.y_test)), rel=1e-5)
    net.train(); evaluate(run, ds.x_test, ds.y_test); assert net.training     # training mode restored
    assert TestMetrics().on_epoch(FakeRun(net, None, None), 1) is None


def test_hooks_not_overridden_are_never_called(store_path):
    calls = {"batch": 0, "step": 0}
    class OnlyStep(Monitor):
        def on_step(self, run, step, batch, out): calls["step"] += 1
    m = OnlyStep(every=5)
    assert overrides(m, "on_step") and not overrides(m, "on_batch") and not overrides(m, "on_backward")
    run = Run("mlp", "digits", epochs=1, store=store_path, monitors=[m]).run_sync()
    assert calls["step"] == run.global_step // 5


def test_registry_and_resolution(store_path):
    class Seven(Monitor):
        name = "seven"
        def on_step(self, run, step, batch, out): return {"seven": 7.0}
    register_monitor("seven", Seven)
    assert "seven" in monitor_names()
    ms = resolve_monitors(["default", "seven"], every=3)
    assert [m.name for m in ms] == ["train", "test", "lr", "grad_norm", "throughput", "seven"] and ms[-1].every == 3
    run = Run("mlp", "digits", epochs=1, store=store_path, monitors=["seven"], every=4).run_sync()
    c = run.scalars()
    assert set(c) == {"seven"} and list(c["seven"][0]) == list(range(4, run.global_step + 1, 4))
    with pytest.raises(ValueError, match="unknown monitor 'sevn'"):
        resolve_monitors("sevn")
    with pytest.raises(ValueError, match="every: expected a positive int"):
        TrainMetrics(every=-2)
    with pytest.raises(TypeError, match="factory"):
        register_monitor("x", 3)


def test_eval_pass_is_computed_once_per_epoch_and_shared(store_path):
    "Two per-epoch monitors asking for the test pass cost one pass over the test split."
    calls = {"eval": 0}
    class Count(nn.Module):
        def __init__(self, net): super().__init__(); self.net = net; self.head = net.head
        def features(self, x):
            if not self.training: calls["eval"] += len(x)
            return self.net.features(x)
        def forward(self, x): return self.head(self.features(x))
    seen = []
    class Reader(Monitor):
        def on_epoch(self, run, epoch): seen.append(run.eval_pass("test")); return None
    from lossviz import models as Mo
    ds = D.load("digits")
    run = Run(Count(Mo.get("mlp", data=ds, seed=0)), ds, epochs=2, store=store_path, monitors=["test", Reader(), Reader()])
    run.run_sync()
    assert calls["eval"] == 2 * len(ds.y_test)              # one pass per epoch, shared by TestMetrics and both readers
    assert len(seen) == 4 and seen[0] is seen[1] and seen[2] is seen[3] and seen[0] is not seen[2]
    ep = seen[-1]
    assert isinstance(ep, EvalPass) and ep.split == "test" and ep.step == run.global_step and len(ep) == len(ds.y_test)
    assert ep.logits.shape == (len(ds.y_test), 10) and ep.features.shape[0] == len(ds.y_test)
    assert ep.logits.dtype == torch.float32 and ep.labels.dtype == torch.int64
    net = run.model; net.eval()
    with torch.no_grad(): torch.testing.assert_close(ep.logits, net(ds.x_test))


def test_eval_pass_train_split_is_capped_and_fixed(store_path):
    ds = D.load("blobs", classes=3, dim=2)
    run = Run("mlp", ds, epochs=1, store=False, monitors=None)
    run.max_train_eval = 50
    a = run.eval_pass("train"); assert len(a) == min(50, len(ds.y_train)) and a.split == "train"
    assert run.eval_pass("train") is a                      # cached at this step
    run.global_step += 1; b = run.eval_pass("train")         # a new step: recomputed, on the same samples
    assert b is not a and torch.equal(a.labels, b.labels)
    with pytest.raises(ValueError, match="split: expected one of"):
        run.eval_pass("valid")


def test_eval_pass_from_track():
    ds = D.load("digits"); net = nn.Linear(64, 10)
    with track(net, store=False, data=ds, loss_fn=lambda z, y: F.cross_entropy(z, y), monitors=None) as t:
        ep = t.eval_pass("test")
    assert ep.features is None and ep.logits.shape == (len(ds.y_test), 10)
    with track(net, store=False, monitors=None) as t2:
        with pytest.raises(ValueError, match="no data"): t2.eval_pass()


def test_monitors_resolve_by_name_in_a_fresh_process():
    "No prior import: `resolve_monitors('gpw')` imports lossviz.monitors.gpw by itself (also for the science monitors)."
    code = ("import sys; from lossviz.monitors import resolve_monitors, MONITORS, monitor_names\n"
            "assert 'lossviz.monitors.gpw' not in sys.modules\n"
            "for n in MONITORS: m = resolve_monitors(n)[0]; assert isinstance(m, __import__('lossviz.monitors.core').monitors.core.Monitor), n\n"
            "print(sorted(MONITORS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "gpw" in out.stdout and "retrieval" in out.stdout


def test_default_depends_on_the_loss_kind():
    assert [m.name for m in resolve_monitors("default")] == list(DEFAULT)
    assert [m.name for m in resolve_monitors(["default", "none"], kind="pair")] == list(PAIR_DEFAULT)
    assert [m.name for m in resolve_monitors("default", kind="proxy")] == list(PAIR_DEFAULT)


def test_old_import_paths_still_work():
    from lossviz.monitors import GPWMonitor, RetrievalMonitor
    from lossviz.monitors_gpw import GPWMonitor as G2
    assert GPWMonitor is G2 and RetrievalMonitor.name == "retrieval"
