"""CollapseExplorer (model only: state -> figure data), collapse_figure, and the /collapse page builder."""
import json, os
import numpy as np
import pytest
import torch

from lossviz.collapse import geometry, simplex_etf, metrics
from lossviz.explorers.collapse import CollapseExplorer
from lossviz.plots.collapse import collapse_figure
from lossviz.plots.style import figure_json
from lossviz.store import RunStore, Artifact


def _json_ok(fig):
    s = json.dumps(figure_json(fig), allow_nan=False)
    assert "NaN" not in s and "Infinity" not in s


def test_example_epochs_slider_and_controls():
    ex = CollapseExplorer.example()
    assert ex.num_epochs == 6 and ex.epoch == 6
    names = [c.name for c in ex.controls()]
    assert names[:5] == ["run", "epoch", "dims", "projection", "classifier"]
    f6 = ex.figure(); _json_ok(f6)
    ex.set(epoch=1)
    f1 = ex.figure()
    m1, m6 = np.array([f1.data[2].x, f1.data[2].y]).T, np.array([f6.data[2].x, f6.data[2].y]).T
    e6 = np.array([f6.data[0].x, f6.data[0].y]).T[:-1]
    assert np.abs(m6 - e6).mean() < np.abs(m1 - np.array([f1.data[0].x, f1.data[0].y]).T[:-1]).mean()   # means reach the ETF
    with pytest.raises(ValueError): ex.set(epoch=0)
    for case in CollapseExplorer.edge_cases():
        ex.set(**case); _json_ok(ex.figure())
    ex.set(classifier=False)
    assert "classifier" not in [t.name for t in ex.figure().data]


def test_from_features_one_epoch_matches_metrics():
    E = simplex_etf(4, 6, scale=2.0, seed=0)
    y = torch.arange(4).repeat(25)
    h = E[y] + 0.1 * torch.randn(100, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ex = CollapseExplorer(features=h, labels=y, weight=E)
    assert ex.num_epochs == 1
    m = metrics(h, y, E)
    assert f"NC1 {m.nc1:.3g}" in ex.note()
    g = ex.geometry()
    mu = torch.stack([h[y == c].mean(0) for c in range(4)])
    np.testing.assert_allclose(g.norms, (mu - mu.mean(0)).norm(dim=1).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="labels: expected labels"): CollapseExplorer(features=h)
    with pytest.raises(ValueError, match="labels: expected one entry per epoch"): CollapseExplorer(features=[h, h], labels=[y, y, y])


def test_store_run_and_live_poll(tmp_path):
    store = RunStore(tmp_path / "r.sqlite")
    rid = store.create_run("imb<b>al</b>", config={})
    store.set_status(rid, "running")
    E = simplex_etf(3, 5, seed=1)
    def log(step, epoch, scale):
        mu = (scale * E).numpy().astype(np.float32)
        store.log_artifact(rid, step, Artifact("class_means", {"means": mu, "global_mean": mu.mean(0), "counts": np.array([30., 20, 10], np.float32),
                                                               "weight": mu}, {"epoch": epoch}))
        store.log_scalars(rid, [(step, epoch, "collapse/nc1", 1.0 / epoch), (step, epoch, "collapse/nc4", 0.0)])
    log(10, 1, 1.0); log(20, 2, 2.0)
    ex = CollapseExplorer(store=store)
    assert ex.run == rid and ex.num_epochs == 2 and ex.live and ex.epoch == 2
    fig = ex.figure(); _json_ok(fig)
    assert "<b>" not in fig.layout.title.text                                  # a run name is text, not markup
    assert list(ex._curves["nc1"][0]) == [1, 2]
    assert not ex.poll()
    log(30, 3, 3.0)
    assert ex.poll() and ex.num_epochs == 3 and ex.epoch == 3                  # the slider follows the newest epoch
    store.set_status(rid, "finished")
    assert ex.poll() and ex.done
    with pytest.raises(ValueError, match="run: expected a run with class means"): CollapseExplorer(store=store, run=99)


def test_empty_store_draws_a_placeholder(tmp_path):
    ex = CollapseExplorer(store=RunStore(tmp_path / "e.sqlite"))
    assert ex.num_epochs == 0 and "collapse" in ex.note()
    _json_ok(ex.figure())


def test_collapse_figure_panels_and_gaps():
    E = simplex_etf(5, 7, seed=2)
    geo = geometry(E, counts=torch.tensor([5, 4, 3, 2, 1]), weight=E)
    fig = collapse_figure(geo, {"nc1": ([1, 2, 3], [1.0, float("nan"), 0.0])}, epoch=2)
    _json_ok(fig)
    curve = [t for t in fig.data if t.name == "NC1"][0]
    assert curve.y == (1.0, None, None)
    heat = [t for t in fig.data if t.type == "heatmap"][0]
    assert all(heat.z[i][i] is None for i in range(5))
    with pytest.raises(TypeError, match="geo: expected a CollapseGeometry"): collapse_figure(E)


def test_page_builds_on_an_empty_and_a_filled_store(tmp_path):
    from lossviz.app.collapse import page
    class Ctx:
        def __init__(s, store, state): s.store, s.state = store, state
        def explorer_state(s, cls): return dict(s.state)
    store = RunStore(tmp_path / "p.sqlite")
    ex = page(Ctx(store, {}))                                                   # no class means: the synthetic example, saying so
    assert ex.num_epochs == 6 and "synthetic example" in ex.note()
    rid = store.create_run("x", config={})
    mu = simplex_etf(3, 4).numpy().astype(np.float32)
    store.log_artifact(rid, 5, Artifact("class_means", {"means": mu, "counts": np.ones(3, np.float32)}, {"epoch": 1}))
    ex = page(Ctx(store, {"run": rid, "dims": 3, "projection": "pca"}))
    assert ex.run == rid and ex.dims == 3 and ex.projection == "pca"
    _json_ok(ex.figure())
    assert page(Ctx(store, {"run": 1234})).run == rid                           # a stale link opens the newest run
