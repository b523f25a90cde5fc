"""LossExplorer: its figure data are the science's, its cache recomputes only what changed, every registered
classification loss can be explored, and bad settings name themselves."""
import numpy as np
import pytest
import torch
from lossviz import losses as L
from lossviz.gpw import weight_curve, simplex_map
from lossviz.explorers.losses import LossExplorer
from lossviz.plots.style import loss_color


def test_figure_matches_science():
    ex = LossExplorer(["cross_entropy", "focal"], hparams={"focal": {"gamma": 1.5}}, points=31, resolution=10, target=1)
    fig = ex.figure()
    want = weight_curve(L.get("focal", gamma=1.5), "margin", 10, 31)
    np.testing.assert_allclose(np.asarray(fig.data[3].y, dtype=float), want.weight.numpy(), rtol=1e-12)
    sm = simplex_map(L.get("cross_entropy"), 1, 10)
    np.testing.assert_allclose(np.asarray(fig.data[4].z, dtype=float), sm.loss.numpy(), rtol=1e-12, equal_nan=True)
    assert fig.data[0].line.color == loss_color("cross_entropy") and fig.data[2].line.color == loss_color("focal")


def test_cache_recomputes_only_what_changed():
    ex = LossExplorer(["cross_entropy", "focal"], points=21, resolution=8)
    ce, fo = ex.curves()
    ex.set(**{"focal.gamma": 0.5})
    ce2, fo2 = ex.curves()
    assert ce2 is ce and fo2 is not fo


@pytest.mark.parametrize("name", L.names("classification"))
def test_every_loss_can_be_explored(name):
    ex = LossExplorer([name], points=11, resolution=6)
    fig = ex.figure()
    assert len(fig.data) == 2 + 3
    assert [c.name for c in ex.extra_controls()] == [f"{name}.{k}" for k in L.spec(name).hparams]


def test_errors_name_the_setting():
    ex = LossExplorer(points=11, resolution=6)
    with pytest.raises(ValueError, match="focal.gamma: expected a value in"): ex.set(**{"focal.gamma": 99})
    with pytest.raises(ValueError, match="focal.beta: focal takes gamma"): ex.set(**{"focal.beta": 1})
    with pytest.raises(ValueError, match="unknown classification loss 'nope'"): LossExplorer(["nope"])
    with pytest.raises(ValueError, match="num_classes"): ex.set(num_classes=1)


def test_picking_losses_updates_simplex_choices_and_hparam_controls():
    ex = LossExplorer(["mae"], points=11, resolution=6)
    assert ex.simplex_loss == "mae" and ex.extra_controls() == []
    ex.set(losses=["focal", "gce"])
    assert ex.simplex_loss == "focal"
    assert [c.group for c in ex.extra_controls()] == ["focal"] + ["gce"] * len(L.spec("gce").hparams)
    sl = next(c for c in ex.controls() if c.name == "simplex_loss")
    assert sl.options == ["focal", "gce"]


def test_jupyter_view_one_figure_per_change_and_hparam_sliders():
    from lossviz.widgets.jupyter import JupyterView
    ex = LossExplorer(["cross_entropy", "focal"], points=11, resolution=6)
    v = JupyterView(ex)
    sent = lambda: v.plot.figures_sent # whole figures or patches sent since the view opened
    v.controls["focal.gamma"].value = 3.0
    assert sent() == 1 and v.plot.figure["data"][2]["name"] == "focal (gamma=3)"
    v.controls["losses"].value = ["mae", "focal"]
    assert sent() == 2 and "focal.gamma" in v.controls and v.controls["focal.gamma"].value == 3.0
    v.controls["focal.gamma"].value = 99.0 # refused: shown, nothing changed
    assert "focal.gamma" in v.error and v.controls["focal.gamma"].value == 3.0
    v.controls["x"].value = "p_y"
    assert ex.x == "p_y" and "p_y" in v.plot.figure["layout"]["xaxis"]["title"]["text"]


def test_panel_view_shows_errors_instead_of_raising():
    from lossviz.app.adapter import PanelView
    ex = LossExplorer(points=11, resolution=6)
    p = PanelView(ex)
    p._on_control("focal.gamma", type("E", (), {"obj": type("W", (), {"value": 1e9})()})())
    assert p.error.visible and "focal.gamma" in p.error.object
    assert ex.values["focal"]["gamma"] == 2.0


def test_plain_json_figure_is_plotlys_in_random_states():
    "The Jupyter view's figure (plain dicts, no plotly objects) equals the JSON of the figure plotly builds and validates."
    import json, random
    from lossviz.plots.losses import _build_explorer_figure
    from lossviz.plots.style import figure_json
    rng = random.Random(8)
    ex = LossExplorer(points=21, resolution=8)
    names = L.names("classification")
    for _ in range(12):
        ex.set(losses=rng.sample(names, rng.randint(1, 4)))
        ex.set(x=rng.choice(["margin", "p_y"]), num_classes=rng.randint(2, 30), target=rng.choice([0, 1, 2]),
               simplex_what=rng.choice(["loss", "weight"]), simplex_loss=rng.choice(ex.losses))
        for c in ex.extra_controls():
            if c.kind in ("float", "int") and rng.random() < 0.7:
                v = rng.uniform(c.low, c.high) if c.kind == "float" else rng.randint(c.low, c.high)
                ex.set(**{c.name: round(v, 3) if c.kind == "float" else v})
        want = figure_json(_build_explorer_figure(ex.curves(), ex.simplex(), [ex.label(n) for n in ex.losses], ex.simplex_what, ex.height))
        got = ex.figure_json()
        assert json.dumps(got, sort_keys=True, allow_nan=False) == json.dumps(want, sort_keys=True, allow_nan=False), ex.losses
        assert figure_json(ex.figure()) == want # the plotly figure for Panel and static images: the same
