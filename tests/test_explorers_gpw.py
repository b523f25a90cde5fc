"""GPWExplorer: its pair weights are the losses' own, presets are one change, edge batches are flagged not NaN,
stored batches (similarity matrix or pair sample) replay, and it follows a live run."""
import json, time
import pytest
import torch
from lossviz import losses
from lossviz.gpw import pair_weights, synthetic_batch
from lossviz.explorers.gpw import GPWExplorer, NO_PRESET
from lossviz.plots.style import figure_json


def _title(f): return f"{f.layout.title.text} {f.layout.title.subtitle.text or ''}"


def test_weights_are_the_losses_weights():
    m = GPWExplorer("contrastive", hparams={"neg_margin": 0.2}, classes=3, per_class=5, separation=0.8, seed=4)
    e, y, _ = synthetic_batch(3, 5, 16, 0.8, 4)
    want = pair_weights("contrastive", e, y, neg_margin=0.2)
    torch.testing.assert_close(m.weights().weight, want.weight)
    assert m.weights() is m.weights()
    m.set(**{"contrastive.neg_margin": 0.3})
    assert not torch.equal(m.weights().weight, want.weight)


def test_proxy_loss_uses_the_cluster_centres():
    pw = GPWExplorer("proxy_anchor", classes=3, per_class=4, separation=3.0).weights()
    assert pw.sim.shape == (12, 3) and (pw.sim.argmax(1) == pw.labels).all()


def test_preset_is_one_change_and_one_figure():
    from lossviz.widgets.jupyter import JupyterView
    ex = GPWExplorer("triplet", classes=2, per_class=3)
    v = JupyterView(ex)
    before = v.plot.figures_sent # whole figures or patches sent (a patch updates the figure trait silently)
    v.controls["preset"].value = "paper"
    assert v.plot.figures_sent - before == 1 and ex.loss == "multi_similarity" and ex.values["multi_similarity"]["base"] == 1.0
    assert v.controls["loss"].value == "multi_similarity" and v.controls["multi_similarity.base"].value == 1.0
    with pytest.raises(ValueError, match="preset"): ex.set(preset="nope")
    with pytest.raises(ValueError, match="separation"): ex.set(separation=-1.0)


def test_no_positive_pair_is_flagged_and_json_is_strict():
    m = GPWExplorer("multi_similarity", per_class=1, classes=6)
    s = m.status()
    assert s["no_positive_pair"] and s["loss"] == 0.0
    assert "no positive pair" in _title(m.figure()) and "no positive pair" in m.note()
    json.dumps(figure_json(m.figure()), allow_nan=False)


def test_dim_and_normalize_are_controls_in_both_front_ends():
    names = [c.name for c in GPWExplorer().controls()]
    assert {"dim", "normalize", "anchor", "curve_losses", "preset"} <= set(names)


def test_anchor_bounds_follow_the_batch():
    ex = GPWExplorer(classes=4, per_class=8, anchor=30)
    ex.set(classes=2, per_class=2)
    assert ex.anchor == 3 and ex.param.anchor.bounds == (0, 3)


def test_stored_similarity_must_match_the_loss_kind():
    m = GPWExplorer("triplet")
    e, y, _ = synthetic_batch(2, 4)
    m.use_similarity(losses.cosine_similarity_matrix(e), y, "a batch")
    assert m.weights().sim.shape == (8, 8)
    m.set(loss="proxy_anchor")
    with pytest.raises(ValueError, match="pick a pair loss, not proxy_anchor"): m.weights()


def _gpw_monitor(**kw):
    try: from lossviz.monitors.gpw import GPWMonitor
    except ImportError: from lossviz.monitors_gpw import GPWMonitor
    return GPWMonitor(**kw)


def test_follows_a_live_run(tmp_path):
    from lossviz.train import Run
    from lossviz.store import RunStore
    store = RunStore(tmp_path / "runs.sqlite")
    run = Run("mlp", "blobs", loss="triplet", epochs=3, batch_size=32, store=store, monitors=[_gpw_monitor(every=3)])
    ex = GPWExplorer("multi_similarity")
    run.start()
    ex.follow(store, run.id, interval=0.2)
    run.wait(120)
    deadline = time.monotonic() + 30
    while not ex.done and time.monotonic() < deadline:
        ex.poll(); time.sleep(0.05)
    assert ex.done
    last = store.artifacts(run.id, "pair_weights")[-1]
    assert ex.source == "similarity" and f"step {last}" in _title(ex.figure())


def test_sample_mode_and_store_picker(tmp_path):
    from lossviz.train import Run
    from lossviz.store import RunStore
    store = RunStore(tmp_path / "runs.sqlite")
    run = Run("mlp", "blobs", loss="multi_similarity", epochs=1, batch_size=32, store=store,
              monitors=[_gpw_monitor(every=4, full_max=8, sample=100)]).start(background=False)
    m = GPWExplorer().load_run(store, run.id)
    assert m.source == "sample" and m.weights() is None
    f = m.figure()
    assert sum(len(t.x) for t in f.data[:4]) == 100 and "stored pair sample" in f.layout.title.text
    p = GPWExplorer(store=str(tmp_path / "runs.sqlite")) # a path works as well as a store
    assert p.param.batch.objects == ["synthetic", f"run {run.id}"]
    p.set(batch=f"run {run.id}"); assert p.source == "sample"
    p.set(batch="synthetic"); assert p.source == "synthetic"


def test_plain_json_figure_is_plotlys_in_random_states():
    "The Jupyter view's figure (plain dicts, no plotly objects) equals the JSON of the figure plotly builds and validates."
    import random
    from types import SimpleNamespace
    from lossviz.explorers.gpw import _pair_losses
    from lossviz.plots.gpw import _build_gpw_figure
    rng = random.Random(9)
    ex = GPWExplorer(classes=3, per_class=4)
    names = _pair_losses()
    for i in range(12):
        ex.set(loss=rng.choice(names), classes=rng.randint(1, 5), per_class=rng.randint(1, 6), separation=round(rng.uniform(0, 3), 2),
               seed=rng.randint(0, 50), normalize=rng.random() < 0.5, curve_losses=rng.sample(names, rng.randint(0, 3)))
        if rng.random() < 0.3: ex.set(preset=rng.choice(["paper", "official"]))
        for c in ex.extra_controls():
            if c.kind in ("float", "int") and rng.random() < 0.5:
                v = rng.uniform(c.low, c.high) if c.kind == "float" else rng.randint(c.low, c.high)
                ex.set(**{c.name: round(v, 3) if c.kind == "float" else v})
        ex.set(anchor=rng.randint(0, ex.n - 1))
        if i == 11: # a stored pair sample (float32, as a run's GPW monitor stores it)
            pw = GPWExplorer("multi_similarity", classes=3, per_class=3).weights()
            ii, jj = (pw.pos_mask | pw.neg_mask).nonzero(as_tuple=True)
            d = {"anchor": ii, "index": jj, "sim": pw.sim[ii, jj].float(), "weight": pw.weight[ii, jj].float(),
                 "is_pos": pw.pos_mask[ii, jj], "active": pw.active[ii, jj]}
            ex.use_artifact(SimpleNamespace(data=d, meta={"loss": "multi_similarity"}, step=3))
        want = figure_json(_build_gpw_figure(*ex._figure_args()))
        got = ex.figure_json()
        assert json.dumps(got, sort_keys=True, allow_nan=False) == json.dumps(want, sort_keys=True, allow_nan=False), (i, ex)
        assert figure_json(ex.figure()) == want # the plotly figure for Panel and static images: the same
