"""The GPW explorer: model logic, in-place FigureWidget updates, Panel front end, and following a live run."""
import time
import pytest
import torch
from lossviz import losses
from lossviz.gpw import pair_weights, synthetic_batch
from lossviz.widgets.gpw import GPWModel, GPWExplorer, GPWExplorerPanel, gpw_page
from lossviz.plots.gpw import gpw_figure, weight_scatter_figure, pair_table


def test_model_weights_are_the_losses_weights():
    m = GPWModel("contrastive", hparams={"neg_margin": 0.2}, classes=3, per_class=5, separation=0.8, seed=4)
    e, y, _ = synthetic_batch(3, 5, 16, 0.8, 4)
    want = pair_weights("contrastive", e, y, neg_margin=0.2)
    torch.testing.assert_close(m.weights().weight, want.weight)
    assert m.weights() is m.weights()  # cached until a setting changes
    m.set_hparam("neg_margin", 0.3)
    assert not torch.equal(m.weights().weight, want.weight)


def test_proxy_loss_uses_the_cluster_centres():
    m = GPWModel("proxy_anchor", classes=3, per_class=4, separation=3.0)
    pw = m.weights()
    assert pw.sim.shape == (12, 3)
    # proxies at the centres of well separated clusters: every sample is most similar to its own class's proxy
    assert (pw.sim.argmax(1) == pw.labels).all()


def test_presets_and_bad_settings():
    m = GPWModel("triplet")
    m.apply_preset("paper")
    assert m.loss_name == "multi_similarity" and m.values["multi_similarity"]["base"] == 1.0
    with pytest.raises(ValueError, match="preset: expected one of 'paper', 'official', 'pml'"): m.apply_preset("nope")
    with pytest.raises(ValueError, match="separation: expected a value in"): m.set_batch(separation=-1.0)
    with pytest.raises(ValueError, match="set_batch: unknown setting"): m.set_batch(colour=1)
    with pytest.raises(ValueError, match="beta: expected a value in"): m.set_hparam("beta", 1e6)


def test_no_positive_pair_is_flagged_and_finite():
    m = GPWModel("multi_similarity", per_class=1, classes=6)
    s = m.status()
    assert s["no_positive_pair"] and s["loss"] == 0.0 and not s["nonfinite"]
    assert "no positive pair" in m.figure().layout.title.text


def test_stored_similarity_must_match_the_loss_kind():
    m = GPWModel("triplet")
    e, y, _ = synthetic_batch(2, 4)
    m.use_similarity(losses.cosine_similarity_matrix(e), y, "a batch")
    assert m.weights().sim.shape == (8, 8)
    m.set_loss("proxy_anchor")
    with pytest.raises(ValueError, match="pick a pair loss, not proxy_anchor"): m.weights()


def test_explorer_updates_the_same_figure_in_place():
    ex = GPWExplorer("multi_similarity", separation=1.0)
    fig = ex.fig
    n_traces = len(fig.data)
    before = [list(t.x) if t.x is not None else None for t in fig.data[:4]]
    ex.separation.value = 3.5
    assert ex.fig is fig and len(fig.data) == n_traces
    assert [list(t.x) if t.x is not None else None for t in fig.data[:4]] != before
    ex.controls["multi_similarity"]["epsilon"].value = 0.5
    assert ex.model.values["multi_similarity"]["epsilon"] == 0.5 and "epsilon=0.5" in fig.layout.title.text
    ex.anchor.value = 5
    assert len(fig.data[4].x) == ex.model.n - 1  # the anchor's pairs are circled
    ex.curves.value = ("circle",)
    assert ex.fig is fig and len(fig.data) == 5 + 4 + 4 + 2


def test_explorer_sliders_come_from_hparams():
    ex = GPWExplorer("circle")
    spec = losses.spec("circle")
    assert set(ex.controls["circle"]) == set(spec.hparams)
    assert ex.controls["circle"]["gamma"].min == pytest.approx(0)  # FloatLogSlider: exponent of 10 (1 = 10^0)
    ex.loss.value = "ntxent"
    assert set(ex.controls["ntxent"]) == {"temperature"} and list(ex.hp_box.children) == list(ex.controls["ntxent"].values())


def test_scatter_marks_zero_weight_pairs():
    m = GPWModel("multi_similarity", separation=1.5)
    pw = m.weights()
    f = weight_scatter_figure(pw)
    zero = len(f.data[1].x) + len(f.data[3].x)
    assert zero == int(((pw.weight == 0) & (pw.pos_mask | pw.neg_mask)).sum()) > 0
    t = pair_table(pw)
    assert len(t["sim"]) == 32 * 31


def test_panel_front_end_shares_the_model():
    m = GPWModel("triplet")
    p = GPWExplorerPanel(m)
    p.separation.value = 2.0
    assert m.separation == 2.0 and "separation 2" in p.pane.object.layout.title.text
    p.loss.value = "supcon"
    assert "supcon" in p.pane.object.layout.title.text and not p.error.visible
    w = p.controls["supcon"]["temperature"]  # a log-scale HParam: a DiscreteSlider over log-spaced values
    v = w.options[len(w.options) // 2]; w.value = v
    assert m.values["supcon"]["temperature"] == v and f"temperature={v:.3g}" in p.pane.object.layout.title.text
    p.separation.value = 4.9
    assert not p.error.visible


def test_explorer_follows_a_live_run(store_path):
    from lossviz.train import Run
    from lossviz.store import RunStore
    from lossviz.monitors_gpw import GPWMonitor
    store = RunStore(store_path)
    run = Run("mlp", "blobs", loss="triplet", epochs=3, batch_size=32, store=store, monitors=[GPWMonitor(every=3)])
    ex = GPWExplorer("multi_similarity")
    run.start()
    poller = ex.follow(store, run.id, interval=0.2)
    run.wait(120)
    deadline = time.monotonic() + 30
    while poller.running and time.monotonic() < deadline: time.sleep(0.1)
    assert not poller.running and poller.error is None
    last = store.artifacts(run.id, "pair_weights")[-1]
    assert ex.model.source == "similarity" and f"step {last}" in ex.fig.layout.title.text
    assert ex.model.weights().sim.shape == (32, 32)


def test_sample_mode_without_the_matrix(store_path):
    from lossviz.train import Run
    from lossviz.store import RunStore
    from lossviz.monitors_gpw import GPWMonitor
    store = RunStore(store_path)
    run = Run("mlp", "blobs", loss="multi_similarity", epochs=1, batch_size=32, store=store,
              monitors=[GPWMonitor(every=4, full_max=8, sample=100)]).start(background=False)
    m = GPWModel().load_run(store, run.id)
    assert m.source == "sample" and m.weights() is None
    f = m.figure()
    assert sum(len(t.x) for t in f.data[:4]) == 100 and "stored pair sample" in f.layout.title.text


def test_dashboard_page_lists_runs_with_pair_weights(store_path):
    from lossviz.train import Run
    from lossviz.store import RunStore
    from lossviz.monitors_gpw import GPWMonitor
    store = RunStore(store_path)
    Run("mlp", "blobs", epochs=1, store=store, monitors="default").start(background=False)  # classification: no pair weights
    r = Run("mlp", "blobs", loss="contrastive", epochs=1, batch_size=32, store=store, monitors=[GPWMonitor(every=5)]).start(background=False)
    p = GPWExplorerPanel(store=store)
    assert list(p.run.options.values()) == [None, r.id]
    p.run.value = r.id
    assert p.model.source == "similarity" and f"run {r.id}" in p.pane.object.layout.title.text
    assert gpw_page(str(store_path)) is not None  # a path works as well as a store
