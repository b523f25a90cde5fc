"""CalibrationExplorer (model only, no UI) and the calibration figure: state -> figure data, readouts equal the
science functions, runs from the store, bad input; the /calibration page."""
import json
import numpy as np
import pytest
import torch

from lossviz import calibration as cal
from lossviz.explorers.calibration import CalibrationExplorer
from lossviz.plots.calibration import calibration_figure
from lossviz.plots.style import figure_json
from lossviz.train import Run


def _series(n=800, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 5, (n,), generator=g)
    x = torch.randn(n, 5, generator=g) + 1.5 * torch.nn.functional.one_hot(y, 5)
    return {"cross_entropy": (4 * x, y), "label_smoothing": (x, y)}, x, y


def test_readouts_follow_temperature_and_equal_science():
    s, x, y = _series()
    ex = CalibrationExplorer(series=s)
    ex.set(temperature=2.5, n_bins=10, strategy="quantile")
    r = ex.series_data()[0]
    z = 4 * x / 2.5
    assert r["readouts"]["ECE"] == pytest.approx(cal.ece(z, y, n_bins=10, strategy="quantile", from_logits=True), abs=1e-12)
    assert r["readouts"]["NLL"] == pytest.approx(cal.nll(z, y, from_logits=True), abs=1e-9)
    assert r["readouts"]["Brier"] == pytest.approx(cal.brier(z, y, from_logits=True), abs=1e-9)
    assert r["t_star"] == pytest.approx(cal.fit_temperature(4 * x, y), abs=1e-12)
    assert len(r["edges"]) == 11
    ex.set(fitted=True)
    d = ex.series_data()
    assert d[0]["temperature"] == pytest.approx(d[0]["t_star"]) and d[1]["temperature"] == pytest.approx(d[1]["t_star"])
    assert d[0]["t_star"] > 1 > d[1]["t_star"]        # 4x logits overconfident, 1x underconfident here
    assert "T* =" in ex.note()


def test_figure_has_gap_bars_histogram_curve_and_no_nan_json():
    ex = CalibrationExplorer.example()
    fig = ex.figure()
    names = {t.name for t in fig.data}
    assert {"accuracy", "gap to confidence", "share of samples", "NLL(T)", "T* (NLL-optimal)", "T drawn"} <= names
    stars = [t for t in fig.data if t.name == "T* (NLL-optimal)"]
    assert len(stars) == 4                               # one T* per series, side by side
    js = json.dumps(figure_json(fig), allow_nan=False)   # empty bins are gaps, never NaN
    assert "NaN" not in js
    for case in CalibrationExplorer.edge_cases():
        ex.set(**case); json.dumps(figure_json(ex.figure()), allow_nan=False)


def test_from_store_epochs_and_stored_table_without_logits(tmp_path):
    path = tmp_path / "runs.sqlite"
    a = Run("mlp", "blobs", epochs=2, store=path, monitors=["calibration"], name="a").run_sync()
    b = Run("mlp", "blobs", epochs=2, store=path, monitors=["calibration"], loss="focal", name="b").run_sync()
    ex = CalibrationExplorer(store=path, runs=[a.id, b.id])
    assert ex.param.runs.objects == [a.id, b.id] and ex.param.epoch.bounds == (0, 2)
    assert len(ex.series_data()) == 2
    ex.set(epoch=1)
    assert "epoch 1" in ex.series_data()[0]["name"]
    # the last table equals the monitor's logged ECE
    ex.set(epoch=0, temperature=1.0)
    assert ex.series_data()[0]["readouts"]["ECE"] == pytest.approx(a.scalars()["calibration/ece"][1][-1], abs=1e-6)
    with pytest.raises(ValueError, match="runs: expected runs with calibration tables"):
        CalibrationExplorer(store=path, runs=[999])


def test_stored_table_only(tmp_path):
    from lossviz.monitors.calibration import CalibrationMonitor
    path = tmp_path / "runs.sqlite"
    r = Run("mlp", "blobs", epochs=1, store=path, monitors=[CalibrationMonitor(max_logits=0)]).run_sync()
    ex = CalibrationExplorer(store=path)
    d = ex.series_data()[0]
    assert "stored table" in d["name"] and d.get("curve_t") is None
    assert d["readouts"]["ECE"] == pytest.approx(r.scalars()["calibration/ece"][1][-1], abs=1e-9)
    json.dumps(figure_json(ex.figure()), allow_nan=False)


def test_empty_store_and_bad_input(tmp_path):
    ex = CalibrationExplorer(store=tmp_path / "empty.sqlite")
    assert ex.series_data() == [] and "no calibration tables" in ex.figure().layout.title.text
    with pytest.raises(ValueError, match="series: expected"): CalibrationExplorer(series={})
    with pytest.raises(ValueError, match="logits: expected finite"):
        CalibrationExplorer(series={"a": (torch.tensor([[float("nan"), 0.0]]), torch.tensor([0]))})
    with pytest.raises(ValueError, match="labels: expected values in"):
        CalibrationExplorer(series={"a": (torch.zeros(2, 2), torch.tensor([0, 3]))})
    with pytest.raises(ValueError): CalibrationExplorer.example().set(n_bins=0)
    with pytest.raises(ValueError, match="series: expected at most"):
        calibration_figure([dict(name="x", edges=[0, 1], confidence=[0.5], accuracy=[0.5], count=[1])] * 7)


def test_hostile_series_name_is_escaped():
    s, x, y = _series(n=200)
    ex = CalibrationExplorer(series={"<b onmouseover=alert(1)>x</b>": s["cross_entropy"]})
    js = json.dumps(figure_json(ex.figure()))
    assert "<b onmouseover" not in js


def test_page_builds_with_url_state(tmp_path):
    from types import SimpleNamespace
    from lossviz.app.calibration import page
    from lossviz.store import RunStore
    path = tmp_path / "runs.sqlite"
    r = Run("mlp", "blobs", epochs=1, store=path, monitors=["calibration"]).run_sync()
    ex = page(SimpleNamespace(store=RunStore(path), explorer_state=lambda cls: {"runs": [r.id], "strategy": "quantile"}))
    assert ex.runs == [r.id] and ex.strategy == "quantile"
    assert page(SimpleNamespace(store=RunStore(path), explorer_state=lambda cls: {"runs": [42]})).runs == [r.id]
