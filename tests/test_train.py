"""Run and track: they train exactly like a plain loop, record everything, and obey pause/resume/stop."""
import math, threading, time
import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from lossviz import data as D, models as M, losses as L
from lossviz.monitors import Monitor, StepOutput
from lossviz.store import Artifact, RunStore
from lossviz.train import Run, track, Tracker


@pytest.fixture(scope="module")
def digits():
    return D.load("digits")


@pytest.fixture
def store(store_path):
    return RunStore(store_path)


def _until(pred, timeout=60, what="condition"):
    t_end = time.time() + timeout
    while not pred():
        assert time.time() < t_end, f"timed out waiting for {what}"
        time.sleep(0.005)


def _plain(ds, epochs, seed=0, lr=0.05, bs=64, every=1):
    "An independent plain loop: the per-step losses, grad norms and the final model."
    torch.manual_seed(seed)
    net = M.get("mlp", data=ds, seed=seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    loader = D.batches(ds.x_train, ds.y_train, bs, shuffle=True, seed=seed)
    losses, accs, gnorms = [], [], []
    for _ in range(epochs):
        for x, y in loader:
            z = net(x); loss = F.cross_entropy(z, y)
            opt.zero_grad(); loss.backward()
            gnorms.append(float(torch.nn.utils.clip_grad_norm_(net.parameters(), float("inf"))))
            opt.step()
            losses.append(float(loss.detach())); accs.append(float((z.argmax(1) == y).float().mean()))
    return net, np.array(losses), np.array(accs), np.array(gnorms)


def test_run_trains_exactly_like_a_plain_loop(digits, store):
    run = Run("mlp", digits, epochs=2, store=store, every=1, device="cpu").run_sync()
    net, losses, accs, gnorms = _plain(digits, 2)
    c = run.scalars()
    n = len(losses)
    np.testing.assert_array_equal(c["train/loss"][0], np.arange(1, n + 1))
    np.testing.assert_allclose(c["train/loss"][1], losses, rtol=1e-5)
    np.testing.assert_allclose(c["train/acc"][1], accs, atol=1e-6)
    np.testing.assert_allclose(c["grad_norm"][1], gnorms, rtol=1e-4)
    # the model ends the same, and the logged test accuracy is the final model's (checked with numpy)
    for p, q in zip(run.model.parameters(), net.parameters()): torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    with torch.no_grad(): zt = net(digits.x_test)
    assert c["test/acc"][1][-1] == pytest.approx(np.mean(zt.argmax(1).numpy() == digits.y_test.numpy()), abs=1e-6)
    assert c["test/loss"][1][-1] == pytest.approx(float(F.cross_entropy(zt, digits.y_test)), rel=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_run_optimizers_are_foreach_with_the_default_numbers(digits, optimizer):
    "The Run's optimizers update all parameters in one call (foreach); on a CPU, bit for bit torch's default per-parameter loop."
    run = Run("mlp", digits, optimizer=optimizer, weight_decay=1e-3, store=False, epochs=1)
    assert run.optimizer.defaults["foreach"] is True
    cls, kw = {"sgd": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}), "adam": (torch.optim.Adam, {"lr": 1e-3}),
               "adamw": (torch.optim.AdamW, {"lr": 1e-3})}[optimizer]
    nets = [M.get("mlp", data=digits, seed=0) for _ in range(2)]
    opts = [cls(nets[0].parameters(), weight_decay=1e-3, foreach=True, **kw), cls(nets[1].parameters(), weight_decay=1e-3, **kw)]
    assert opts[1].defaults["foreach"] is None # torch's default, per parameter on a CPU
    for x, y in list(D.batches(digits.x_train, digits.y_train, 64, seed=0))[:8]:
        for net, opt in zip(nets, opts):
            opt.zero_grad(set_to_none=True); F.cross_entropy(net(x), y).backward(); opt.step()
    assert all(torch.equal(p, q) for p, q in zip(*(n.parameters() for n in nets)))
    assert not all(torch.equal(p, q) for p, q in zip(nets[0].parameters(), M.get("mlp", data=digits, seed=0).parameters()))


def test_train_metrics_are_the_logged_steps_batch(digits, store):
    "With every=5 the train loss and accuracy at step s are those of step s's batch, as a plain loop computes them."
    run = Run("mlp", digits, epochs=2, store=store, every=5).run_sync()
    _, losses, accs, _ = _plain(digits, 2)
    c = run.scalars(["train/loss", "train/acc"])
    np.testing.assert_array_equal(c["train/loss"][0], np.arange(5, len(losses) + 1, 5))
    np.testing.assert_allclose(c["train/loss"][1], losses[c["train/loss"][0] - 1], rtol=1e-5)
    np.testing.assert_allclose(c["train/acc"][1], accs[c["train/acc"][0] - 1], atol=1e-7)


def test_same_seed_same_curves_other_seed_differs(digits, store):
    def curves(seed):
        r = Run("mlp", digits, epochs=2, store=store, seed=seed, model_params={"dropout": 0.2}).run_sync()
        return {k: v[1] for k, v in r.scalars().items() if k != "throughput" and not k.endswith("/seconds")} # timings differ
    a, b, c = curves(3), curves(3), curves(4)
    assert a.keys() == b.keys()
    for k in a: np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["train/loss"], c["train/loss"])


def test_config_is_complete(digits, store):
    run = Run("mlp", "digits", loss="focal", loss_params={"gamma": 3.0}, optimizer="adamw", lr=2e-3, weight_decay=0.01,
              epochs=1, batch_size=32, store=store, seed=7, name="cfg", model_params={"hidden": [32]}).run_sync()
    r = store.run(run.id)
    cfg = r["config"]
    assert r["name"] == "cfg" and r["device"] == "cpu" and r["status"] == "finished"
    assert cfg["data"] == {"name": "digits"} and cfg["model"] == {"name": "mlp", "hidden": [32]}
    assert cfg["loss"]["name"] == "focal" and cfg["loss"]["kind"] == "classification" and cfg["loss"]["hparams"]["gamma"] == 3.0
    assert cfg["optimizer"] == {"name": "adamw", "lr": 2e-3, "momentum": None, "weight_decay": 0.01}
    assert cfg["epochs"] == 1 and cfg["batch_size"] == 32 and cfg["seed"] == 7 and cfg["device"] == "cpu"
    assert {"lossviz", "torch", "python", "numpy"} <= set(cfg["versions"]) and r["versions"]["torch"] == torch.__version__
    assert [m["name"] for m in cfg["monitors"]] == ["train", "test", "lr", "grad_norm", "throughput"]
    assert r["started"] <= r["ended"] and r["step"] == math.ceil(len(digits.x_train) / 32)
    assert run.loss_fn.hparams["gamma"] == 3.0


def test_objects_instead_of_names(digits, store):
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    run = Run(net, digits, loss=L.get("label_smoothing", epsilon=0.2), epochs=2, store=store).run_sync()
    assert run.model is net and run.status == "finished"
    cfg = store.run(run.id)["config"]
    assert cfg["model"] == {"name": "Sequential", "object": True} and cfg["loss"]["name"] == "label_smoothing"
    assert run.scalars("test/acc")["test/acc"][1][-1] > 0.8


def test_diverged_records_step_and_message(digits, store):
    run = Run("mlp", digits, epochs=5, lr=1e5, store=store, every=2).run_sync()
    assert run.status == "diverged"
    r = store.run(run.id)
    assert r["status"] == "diverged" and "at step" in r["error"] and r["ended"] is not None
    step = int(r["error"].split("at step ")[1].split()[0])
    assert 1 <= step <= run.global_step + 1
    assert run.global_step < 5 * 23                         # it stopped early


def test_divergence_check_names_the_part_and_has_no_false_alarm_for_large_outputs(digits):
    "Finite outputs whose sum overflows float32 are healthy (max |output|, not a sum); NaN/inf anywhere is caught and named."
    from lossviz.train import Diverged
    r = Run("mlp", digits, epochs=1, store=False, monitors=None, model_params={"hidden": (8,)})
    r._hooks(); p = next(r.model.parameters())
    def check(losses, out):
        r._window, r._last_out, r.global_step = [(28 + i, torch.tensor(v)) for i, v in enumerate(losses)], out, 30
        r._check()
    with torch.no_grad(): p.fill_(1e15)
    check([1.0, 2.0, 3.0], torch.full((4, 10), 3e37))          # healthy, although the outputs' sum overflows
    assert r._window == []
    with pytest.raises(Diverged, match="loss became nan at step 29"): check([1.0, float("nan"), 3.0], torch.zeros(4, 10))
    with pytest.raises(Diverged, match="model output"): check([1.0], torch.tensor([[0.0, float("-inf")]]))
    with torch.no_grad(): p[0, 0] = float("nan")
    with pytest.raises(Diverged, match="parameters"): check([1.0], torch.zeros(4, 10))


def test_failed_records_traceback(digits, store):
    class Boom(Monitor):
        def on_step(self, run, step, batch, out):
            if step == 3: raise ZeroDivisionError("monitor bug")
    run = Run("mlp", digits, epochs=1, store=store, monitors=["default", Boom(every=1)]).start()
    assert run.wait(60) == "failed"
    r = store.run(run.id)
    assert r["error"] == "ZeroDivisionError: monitor bug" and "Traceback" in r["traceback"] and "on_step" in r["traceback"]
    assert isinstance(run.error, ZeroDivisionError)


def test_start_returns_at_once_and_statuses(digits, store):
    seen = []
    class Spy(Monitor):
        def on_step(self, run, step, batch, out): seen.append(run.status)
    run = Run("mlp", digits, epochs=300, store=store, monitors=[Spy(every=1)])
    assert run.status == "created" and store.run(run.id)["status"] == "created"
    t0 = time.perf_counter(); run.start(); dt = time.perf_counter() - t0
    assert run.status == "running"
    assert dt < 5   # generous: it returned long before 300 epochs could finish
    _until(lambda: run.global_step >= 3, what="3 steps")
    run.pause()
    _until(lambda: run.status == "paused", 30, "paused")
    s = run.global_step; time.sleep(0.3); assert run.global_step == s
    run.flush(); assert store.run(run.id)["status"] == "paused"
    run.resume()
    _until(lambda: run.global_step >= s + 3, what="3 more steps")
    run.stop()
    assert run.wait(30) == "stopped" and run.done
    assert store.run(run.id)["status"] == "stopped"
    assert set(seen) == {"running"}
    with pytest.raises(RuntimeError, match="already started"):
        run.start()


def test_stop_before_start(digits, store):
    run = Run("mlp", digits, epochs=1, store=store).stop().start()
    assert run.wait(10) == "stopped" and run.global_step == 0


def test_pair_loss_trains_features_on_m_per_class_batches(digits, store):
    counts = []
    class Batches(Monitor):
        def on_batch(self, run, step, batch, out):
            counts.append(torch.bincount(batch[1], minlength=10))
            assert out.logits is None and out.embeddings.shape == (64, run.model.feature_dim)
    run = Run("mlp", digits, loss="multi_similarity", optimizer="adam", epochs=2, store=store,
              monitors=["default", Batches()]).run_sync()
    assert run.status == "finished" and run.kind == "pair"
    for c in counts: assert sorted(c[c > 0].tolist()) == [8] * 8     # 8 classes x 8 samples per batch
    c = run.scalars()
    assert "train/acc" not in c and c["test/acc"][1][-1] > 0.85 and c["train/loss"][1][-1] < c["train/loss"][1][0]


def test_proxy_loss_trains_its_proxies(digits, store):
    run = Run("mlp", digits, loss="proxy_anchor", optimizer="adam", epochs=1, store=store)
    before = [p.detach().clone() for p in run.loss_fn.parameters()]
    assert before, "a proxy loss has parameters"
    opt_params = {id(p) for g in run.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in opt_params for p in run.loss_fn.parameters())
    run.run_sync()
    assert run.status == "finished"
    assert any(not torch.equal(a, b) for a, b in zip(before, run.loss_fn.parameters()))


def test_bad_arguments_name_what_is_valid(digits, store):
    with pytest.raises(ValueError, match="uniformity is a feature regulariser"):
        Run("mlp", digits, loss="uniformity", store=store)
    with pytest.raises(ValueError, match="gama"):
        Run("mlp", digits, loss="focal", loss_params={"gama": 2}, store=store)
    with pytest.raises(ValueError, match="lr: expected a value in"):
        Run("mlp", digits, lr=-1, store=store)
    with pytest.raises(ValueError, match="batch_size: expected an int >= 1"):
        Run("mlp", digits, batch_size=0, store=store)
    with pytest.raises(TypeError, match="data: expected a dataset name"):
        Run("mlp", 42, store=store)


def test_custom_monitor_artifacts_and_no_monitors(digits, store):
    class Means(Monitor):
        def on_epoch(self, run, epoch):
            with torch.no_grad(): f = run.model.features(run.data.x_train)
            m = torch.stack([f[run.data.y_train == c].mean(0) for c in range(10)])
            return {"means": Artifact("class_means", {"means": m}, {"epoch": epoch})}
    run = Run("mlp", digits, epochs=2, store=store, monitors=[Means()]).run_sync()
    assert store.artifacts(run.id, "class_means") == [run.steps_per_epoch, 2 * run.steps_per_epoch]
    a = store.artifact(run.id, "class_means")
    assert a["means"].shape == (10, 128) and a.meta == {"epoch": 2}
    assert store.scalars(run.id) == {}
    quiet = Run("mlp", digits, epochs=1, store=store, monitors=None).run_sync()
    assert quiet.status == "finished" and store.scalars(quiet.id) == {}


def test_store_false_records_nothing(digits, store):
    run = Run("mlp", digits, epochs=1, store=False).run_sync()
    assert run.id is None and run.status == "finished" and run.summary()["test/acc"] > 0.5


def test_track_a_user_loop(digits, store):
    net = M.get("mlp", data=digits, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    ce = L.get("cross_entropy")
    with track(net, store=store, optimizer=opt, loss_fn=ce, data=digits, every=1, name="mine", config={"lr": 0.05}) as t:
        for epoch in range(2):
            for x, y in D.batches(digits.x_train, digits.y_train, 64, seed=0):
                z = net(x); loss = ce(z, y)
                opt.zero_grad(); loss.backward()
                assert t.step(loss, z, y)
                opt.step()
            t.epoch(extra=epoch)
    assert t.status == "finished"
    r = store.run(t.id)
    assert r["name"] == "mine" and r["config"]["lr"] == 0.05 and r["config"]["tracked"] and r["status"] == "finished"
    c = store.scalars(t.id)
    n = 2 * len(D.batches(digits.x_train, digits.y_train, 64))
    np.testing.assert_array_equal(c["train/loss"][0], np.arange(1, n + 1))
    np.testing.assert_array_equal(c["extra"][1], [0, 1])
    np.testing.assert_allclose(store.scalars(t.id, "extra", x="epoch")["extra"][0], [1.0, 2.0])
    with torch.no_grad(): acc = float((net(digits.x_test).argmax(1) == digits.y_test).float().mean())
    assert c["test/acc"][1][-1] == pytest.approx(acc, abs=1e-6)


def test_track_obeys_a_stop_command_and_detects_nan(digits, store):
    net = nn.Linear(64, 10)
    t = track(net, store=store, every=2)
    with t:
        steps = 0
        for i in range(10_000):
            if not t.step(torch.tensor(1.0)): break
            steps += 1
            if i == 5: RunStore(store.path).send(t.id, "stop")
            time.sleep(0.002)
    assert t.should_stop and 5 < steps < 10_000 and store.run(t.id)["status"] == "stopped"
    with track(net, store=store, every=2) as t2:
        ok = [t2.step(torch.tensor(v)) for v in (1.0, float("nan"), 1.0, 1.0)]
    assert ok[-1] is False and t2.status == "diverged" and "at step 2" in store.run(t2.id)["error"]


# --- honest runs (issue 14) -----------------------------------------------------------------------------------------

def test_run_leaves_the_callers_rng_alone(digits, store):
    torch.manual_seed(7); want = torch.rand(4)
    torch.manual_seed(7)
    r = Run("mlp", digits, loss="proxy_anchor", epochs=1, store=store, model_params={"dropout": 0.2})  # proxies are random too
    r.run_sync()
    assert torch.equal(torch.rand(4), want)


def test_two_concurrent_runs_with_dropout_are_identical(digits, store):
    "Same seed, dropout, two threads at once: identical curves (each run draws from its own generator)."
    runs = [Run("mlp", digits, epochs=2, store=store, seed=5, model_params={"dropout": 0.5}) for _ in range(2)]
    for r in runs: r.start()
    for r in runs: assert r.wait(120) == "finished"
    a, b = (r.scalars("train/loss")["train/loss"][1] for r in runs)
    np.testing.assert_array_equal(a, b)
    for p, q in zip(runs[0].model.parameters(), runs[1].model.parameters()): assert torch.equal(p, q)
    alone = Run("mlp", digits, epochs=2, store=store, seed=5, model_params={"dropout": 0.5}).run_sync()
    np.testing.assert_array_equal(alone.scalars("train/loss")["train/loss"][1], a)
    assert all("forward" not in m.__dict__ for m in runs[0].model.modules())    # the model is handed back unpatched


def test_pair_loss_with_non_finite_parameters_diverges(store):
    r = Run("mlp", "blobs", loss="multi_similarity", lr=float("inf"), epochs=2, batch_size=32, store=store).run_sync()
    assert r.status == "diverged"
    row = store.run(r.id)
    assert row["status"] == "diverged" and ("non-finite" in row["error"] or "nan" in row["error"]) and "at step" in row["error"]


def test_non_finite_outputs_diverge_whatever_the_loss(digits, store):
    "A model whose outputs overflow while the loss stays finite (a loss that ignores the values)."
    class Blow(nn.Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(64, 10); self.calls = 0
        def forward(self, x):
            self.calls += 1
            z = self.lin(x)
            return z.masked_fill(torch.ones_like(z, dtype=torch.bool), float("inf")) if self.calls > 12 else z  # no gradient
    flat = lambda z, y: (z.nan_to_num(0.0) * 0).sum() + 1.0
    r = Run(Blow(), digits, loss=flat, epochs=1, store=store, every=5).run_sync()
    assert r.status == "diverged" and "model output" in str(r.error) and r.error.step == 15


def test_impossible_pair_batches_are_refused_upfront(digits, store):
    from lossviz.train import check_pair_batch
    for bs in (7, 3, 1):
        with pytest.raises(ValueError, match=f"batch_size: .*{bs} cannot be split"):
            Run("mlp", digits, loss="multi_similarity", batch_size=bs, store=store)
    with pytest.raises(ValueError, match="no negative pair"):
        Run("mlp", digits, loss="contrastive", batch_size=16, m_per_class=16, store=store)
    with pytest.raises(ValueError, match="m_per_class"):
        Run("mlp", digits, loss="contrastive", batch_size=16, m_per_class=1, store=store)
    assert check_pair_batch(6, 10) == 3 and check_pair_batch(64, 10) == 8     # 2 classes x 3, 8 classes x 8
    assert len(store.runs()) == 0                                # nothing was created


def test_no_positive_pair_in_an_epoch_stops_a_tracked_run(store):
    "A loop that feeds a pair loss batches of distinct labels: the run fails after the first epoch, with the reason."
    net = nn.Linear(4, 3); msl = L.get("multi_similarity")
    with track(net, store=store, kind="pair", loss_fn=msl, monitors=None) as t:
        for _ in range(3):
            e = net(torch.randn(5, 4)); loss = msl(e, torch.arange(5))
            loss.backward(); t.step(loss, embeddings=e, targets=torch.arange(5))
        assert t.epoch() is False
    assert t.status == "failed" and "no positive pair" in store.run(t.id)["error"]


def test_disk_full_ends_the_run_failed(digits, tmp_path, capfd):
    "SQLite's page limit stands in for a full disk: the run stops, says why on stderr and, if it can, in the store."
    class Tiny(RunStore):
        def _conn(self):
            c = super()._conn()
            if threading.current_thread().name.startswith("lossviz-writer") and not getattr(self._local, "tiny", False):
                c.execute(f"PRAGMA max_page_count = {c.execute('PRAGMA page_count').fetchone()[0] + 1}"); self._local.tiny = True
            return c
    s = Tiny(tmp_path / "runs.sqlite")
    r = Run("mlp", digits, epochs=50, store=s, every=1).start()
    assert r.wait(120) == "failed"
    assert "could not write to the run store" in str(r.error) and "full" in str(r.error)
    assert r.global_step < 50 * r.steps_per_epoch                 # it stopped, it did not train on regardless
    assert "failed: could not write to the run store" in capfd.readouterr().err
    row = RunStore(s.path).run(r.id)
    assert (row["status"] == "failed" and "full" in row["error"]) or r.store_error is not None


def test_sam_takes_the_gradient_at_the_perturbed_point(digits, store):
    "One SAM step by hand (plain SGD, no momentum) equals the run's first update."
    net = M.get("mlp", data=digits, seed=0); w0 = [p.detach().clone() for p in net.parameters()]
    run = Run("mlp", digits, optimizer="sam", sam_rho=0.1, momentum=0.0, lr=0.1, epochs=1, store=store, monitors=None)
    x, y = next(iter(D.batches(digits.x_train, digits.y_train, 64, seed=0)))
    F.cross_entropy(net(x), y).backward()
    g = torch.cat([p.grad.flatten() for p in net.parameters()]); scale = 0.1 / g.norm()
    with torch.no_grad():
        for p in net.parameters(): p.add_(p.grad * scale)
    net.zero_grad(); F.cross_entropy(net(x), y).backward()
    want = [w - 0.1 * p.grad for w, p in zip(w0, net.parameters())]
    seen = {}
    class Grab(Monitor):
        def on_step(self, run, step, batch, out):
            if step == 1: seen["w"] = [p.detach().clone() for p in run.model.parameters()]
    run.monitors = [Grab(every=1)]
    run.run_sync()
    for a, b in zip(seen["w"], want): torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert store.run(run.id)["config"]["optimizer"] == {"name": "sam", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "rho": 0.1}


def test_amp_bf16(digits, store):
    r = Run("mlp", digits, amp="bf16", epochs=2, store=store).run_sync()
    assert r.status == "finished" and store.run(r.id)["config"]["amp"] == "bf16" and r.summary()["test/acc"] > 0.8
    with pytest.raises(ValueError, match="amp: expected one of 'bf16'"):
        Run("mlp", digits, amp="fp16", store=store)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_no_host_sync_inside_the_training_steps(tmp_path):
    "torch.cuda.set_sync_debug_mode('error') from the 2nd step to the last: any sync in the steps raises -> the run fails."
    class SyncGuard(Monitor):
        def on_batch(self, run, step, batch, out):
            if step == 2: torch.cuda.set_sync_debug_mode("error")
        def on_epoch(self, run, epoch): torch.cuda.set_sync_debug_mode(0)
    try:
        r = Run("mlp", "digits", epochs=1, device="cuda", store=tmp_path / "runs.sqlite",
                monitors=["train", "lr", "grad_norm", "throughput", SyncGuard(every=1)]).run_sync()
    finally: torch.cuda.set_sync_debug_mode(0)
    assert r.status == "finished", r.error
    assert set(r.scalars()) >= {"train/loss", "train/acc", "grad_norm"}


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_run_amp_and_sam(tmp_path):
    for kw in ({}, {"amp": "bf16"}, {"optimizer": "sam"}, {"loss": "multi_similarity"}):
        r = Run("mlp", "digits", epochs=2, device="cuda", store=tmp_path / "runs.sqlite", **kw).run_sync()
        assert r.status == "finished" and r.summary()["test/acc"] > 0.8, (kw, r.error)
    r = Run("mlp", "blobs", loss="multi_similarity", lr=float("inf"), epochs=2, batch_size=32, device="cuda",
            store=tmp_path / "runs.sqlite").run_sync()
    assert r.status == "diverged"


def test_check_schedule_default_and_explicit(digits):
    "Without `every` the divergence check runs every CHECK_EVERY steps (and at the end); an explicit `every` sets it too."
    from lossviz.train import CHECK_EVERY, Diverged
    assert Run("mlp", digits, store=False).check_every == CHECK_EVERY == 50
    assert Run("mlp", digits, store=False, every=5).check_every == 5
    # a parameter gone non-finite mid-epoch is still caught, at the next scheduled check, named as the parameters
    r = Run("mlp", digits, epochs=1, store=False, monitors=None, model_params={"hidden": (8,)})
    r._hooks(); p = next(r.model.parameters())
    with torch.no_grad(): p[0, 0] = float("nan")
    r._window, r._last_out, r.global_step = [(CHECK_EVERY, torch.tensor(1.0))], torch.zeros(4, 10), CHECK_EVERY
    with pytest.raises(Diverged, match=f"parameters.*checked every {CHECK_EVERY} steps"): r._check()



class _Poison(Monitor):
    "Sets one element of a parameter to NaN after the optimizer step of `at` (on_step runs after it)."
    name = "poison"
    def __init__(self, at, which, every=10): super().__init__(every); self.at, self.which = at, which
    def config(self): return {}
    def on_step(self, run, step, batch, out):
        if step == self.at:
            with torch.no_grad(): self.which(run).view(-1)[0] = float("nan")


def test_non_finite_parameters_are_caught_between_steps_and_at_the_end(digits, store):
    "A parameter poisoned mid-run, with a loss that stays finite, is caught at the next check and named; the loss's own parameters too; one poisoned after the last step's forward by the final check."
    from lossviz.train import CHECK_EVERY
    first = lambda run: next(run.model.parameters())
    # a loss that stays finite whatever the outputs: a model parameter poisoned at step 20 is caught at the next check (step 50)
    flat = lambda z, y: (z.nan_to_num(0.0) * 0).sum() + 1.0
    r = Run("mlp", digits, loss=flat, epochs=5, store=store, monitors=[_Poison(20, first)]).run_sync()
    assert r.status == "diverged" and "the parameters" in str(r.error) and r.error.step == CHECK_EVERY, r.error
    # a proxy (the loss's own parameter)
    r = Run("mlp", digits, loss="proxy_anchor", epochs=5, store=store, monitors=[_Poison(20, lambda run: run.loss_fn.proxies)]).run_sync()
    assert r.status == "diverged" and r.error.step <= CHECK_EVERY, r.error
    # poisoned after the last step's forward: only the final check can see it
    r = Run("mlp", digits, epochs=3, store=store, monitors=[_Poison(3 * 23, first, every=1)]).run_sync()
    assert r.status == "diverged" and "the parameters" in str(r.error) and r.error.step == 3 * 23, r.error
