"""LossExplorer: the model's state → figure data, the ipywidgets front end updating in place, the Panel front end."""
import numpy as np
import pytest
import torch

from lossviz import gpw, losses
from lossviz.widgets.losses import LossExplorerModel, LossExplorer, LossExplorerPanel

SMALL = dict(points=21, resolution=10)


def test_model_figure_matches_science():
    m = LossExplorerModel(["cross_entropy", "gce"], **SMALL)
    fig = m.figure()
    c = gpw.weight_curve(losses.get("gce", q=0.7), points=21)
    np.testing.assert_allclose(fig.data[2].y, c.loss.numpy())
    np.testing.assert_allclose(fig.data[3].y, c.weight.numpy())
    s = gpw.simplex_map("cross_entropy", target=0, resolution=10)
    np.testing.assert_allclose(np.asarray(fig.data[4].z, dtype=float), s.loss.numpy())


def test_model_cache_recomputes_only_what_changed():
    m = LossExplorerModel(["cross_entropy", "focal"], **SMALL)
    a = m.curves()
    m.set_hparam("focal", "gamma", 1.0)
    b = m.curves()
    assert b[0] is a[0] and b[1] is not a[1]
    m.set_hparam("focal", "gamma", 2.0)
    assert m.curves()[1] is a[1]  # back to a cached setting


@pytest.mark.parametrize("name", losses.names("classification"))
def test_every_loss_can_be_explored(name):
    m = LossExplorerModel([name], simplex_what="weight", **SMALL)
    fig = m.figure()
    assert len(fig.data) == 5
    assert np.isfinite(np.asarray(fig.data[0].y, dtype=float)).all() and np.isfinite(np.asarray(fig.data[1].y, dtype=float)).all()
    for k, hp in losses.spec(name).hparams.items():  # every slider end works
        for v in (hp.choices or ((True, False) if isinstance(hp.default, bool) else (hp.low, hp.high))):
            m.set_hparam(name, k, v)
            assert np.isfinite(np.asarray(m.figure().data[1].y, dtype=float)).all(), (k, v)
        m.set_hparam(name, k, hp.default)


def test_model_errors():
    with pytest.raises(ValueError, match="unknown classification loss 'nope'"): LossExplorerModel(["nope"])
    with pytest.raises(ValueError, match="x: expected one of"): LossExplorerModel(x="logit")
    m = LossExplorerModel(["focal"], **SMALL)
    with pytest.raises(ValueError, match=r"gamma: expected a value in \[0.0, 10.0\]"): m.set_hparam("focal", "gamma", -1)
    with pytest.raises(ValueError, match="focal takes gamma; got 'q'"): m.set_hparam("focal", "q", 0.5)
    m.target = 3
    with pytest.raises(ValueError, match=r"target: expected a value in \[0, 2\]"): m.figure()


def test_jupyter_slider_updates_figure_in_place():
    ex = LossExplorer(["cross_entropy", "focal", "comp_sum"], **SMALL)
    fw = ex.fig
    uids = [t.uid for t in fw.data]
    before = np.asarray(fw.data[3].y).copy()
    ex.controls["focal"]["gamma"].value = 0.0
    assert ex.fig is fw and [t.uid for t in fw.data] == uids           # same widget, same traces
    np.testing.assert_allclose(np.asarray(fw.data[3].y), np.asarray(fw.data[1].y))  # focal γ=0 = CE
    assert not np.allclose(np.asarray(fw.data[3].y), before)
    ex.controls["comp_sum"]["tau"].value = 2.0
    c = gpw.weight_curve(losses.get("comp_sum", tau=2.0), points=21)
    np.testing.assert_allclose(np.asarray(fw.data[4].y), c.loss.numpy())


def test_jupyter_selection_and_settings():
    ex = LossExplorer(["cross_entropy"], **SMALL)
    ex.pick.value = ("cross_entropy", "ldr_kl", "dice")
    assert len(ex.fig.data) == 3 * 2 + 3 and set(ex.controls) == {"ldr_kl", "dice"}
    assert list(ex.shown.options) == ["cross_entropy", "ldr_kl", "dice"]
    ex.shown.value = "dice"; ex.what.value = "weight"; ex.target.value = 2
    assert "dice: weight" in ex.fig.layout.annotations[2].text
    ex.classes.value = 3
    assert ex.model.num_classes == 3
    ex.pick.value = ("ldr_kl",)
    assert len(ex.fig.data) == 2 + 3 and ex.shown.value == "ldr_kl"


def test_panel_front_end_shares_the_model():
    ex = LossExplorer(["focal", "mae"], **SMALL)
    view = ex.panel()
    assert view is not None
    p = LossExplorerPanel(ex.model)
    p.controls["focal"]["gamma"].value = 0.5
    assert ex.model.values["focal"]["gamma"] == 0.5
    np.testing.assert_allclose(np.asarray(p.pane.object.data[1].y),
                               gpw.weight_curve(losses.get("focal", gamma=0.5), points=21).weight.numpy())
    p.xaxis.value = "p_y"
    assert max(p.pane.object.data[0].x) < 1
    assert p.error.visible is False


def test_panel_shows_errors_instead_of_raising():
    p = LossExplorerPanel(LossExplorerModel(["focal"], **SMALL))
    p.model.resolution = 1  # an invalid state reached outside the controls
    p.xaxis.value = "p_y"
    assert p.error.visible is True and "resolution" in p.error.object


def test_fast_path_after_rebuild():
    "After the losses change (a rebuild), slider moves go back to in-place data updates, for both front ends."
    ex = LossExplorer(["focal"], **SMALL)
    ex.pick.value = ("focal", "gce")
    assert ex.fig.layout.meta["losses"] == ["focal", "gce"]
    uids = [t.uid for t in ex.fig.data]
    ex.controls["gce"]["q"].value = 0.3
    assert [t.uid for t in ex.fig.data] == uids and ex.fig.data[2].name == "gce (q=0.3)"
    np.testing.assert_allclose(np.asarray(ex.fig.data[2].y), gpw.weight_curve(losses.get("gce", q=0.3), points=21).loss.numpy())
    p = LossExplorerPanel(LossExplorerModel(["focal"], **SMALL))
    fig = p.fig
    p.controls["focal"]["gamma"].value = 3.0
    assert p.pane.object is fig and p.fig is fig
    p.pick.value = ["focal", "mae"]
    assert p.pane.object is p.fig and p.fig is not fig and len(p.fig.data) == 2 * 2 + 3
