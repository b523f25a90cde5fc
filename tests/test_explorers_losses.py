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
    sent = []
    v.plot.observe(lambda ch: sent.append(1), names="figure")
    v.controls["focal.gamma"].value = 3.0
    assert len(sent) == 1 and v.plot.figure["data"][2]["name"] == "focal (gamma=3)"
    v.controls["losses"].value = ["mae", "focal"]
    assert len(sent) == 2 and "focal.gamma" in v.controls and v.controls["focal.gamma"].value == 3.0
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
