"""lossviz.plots.runs: the run figure is a pure function of {key: (steps, values)}."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from lossviz.plots.runs import CURVES, Curve, run_curves

KEYS = [c.key for c in CURVES]


@settings(max_examples=30, deadline=None)
@given(present=st.lists(st.sampled_from(KEYS), unique=True), n=st.integers(0, 50), extra=st.booleans())
def test_traces_follow_curves_whatever_is_logged(present, n, extra):
    "Whatever subset of keys has points, trace i plots CURVES[i]'s key with exactly the given arrays."
    rng = np.random.default_rng(n)
    scal = {k: (np.arange(n) * 3, rng.normal(size=n)) for k in present}
    if extra: scal["lr"] = (np.arange(n), np.ones(n)) # keys outside CURVES are ignored
    fig = run_curves(scal, log_loss=False) # (on a log axis, values <= 0 become gaps: test_nonfinite_points_become_gaps)
    assert [t.meta for t in fig.data] == KEYS
    for t, k in zip(fig.data, KEYS):
        if k in scal:
            np.testing.assert_array_equal(np.asarray(t.x), scal[k][0]); np.testing.assert_array_equal(np.asarray(t.y), scal[k][1])
        else: assert len(t.x) == 0 and len(t.y) == 0


def test_nonfinite_points_become_gaps():
    "A diverged run stores NaN and inf; the figure keeps the point as a gap (NaN, JSON null), never inf or a JSON error."
    import json
    from lossviz.plots.style import figure_json
    fig = run_curves({"train/loss": (np.array([1, 2, 3]), np.array([1.0, np.nan, np.inf]))})
    y = np.asarray(fig.data[0].y, dtype=float)
    assert y[0] == 1.0 and np.isnan(y[1]) and np.isnan(y[2])
    assert figure_json(fig)["data"][0]["y"] == [1.0, None, None]
    json.dumps(figure_json(fig), allow_nan=False)
    lin = run_curves({"train/loss": (np.array([1, 2]), np.array([-1.0, 0.0]))}, log_loss=False)
    assert list(lin.data[0].y) == [-1.0, 0.0] # only a log axis drops values <= 0


def test_diverged_step_is_marked_on_every_panel():
    fig = run_curves({"train/loss": (np.arange(5), np.array([1.0, 10, 100, np.inf, np.inf]))}, diverged_at=3)
    assert len(fig.layout.shapes) == 2 and all(s.x0 == 3 for s in fig.layout.shapes)
    assert any("diverged at step 3" in a.text for a in fig.layout.annotations)


def test_no_markers_on_long_curves_and_no_fixed_width():
    fig = run_curves({"test/loss": (np.arange(600), np.linspace(2, 1, 600)), "test/acc": (np.arange(10), np.linspace(0, 1, 10))})
    assert fig.data[1].mode == "lines" and fig.data[3].mode == "lines+markers"
    assert fig.layout.width is None


def test_a_curve_of_one_point_shows_its_marker():
    "A line through one point draws nothing: a live monitor's first logged point would be invisible."
    fig = run_curves({"train/loss": (np.array([10]), np.array([2.3])), "train/acc": (np.arange(1, 3), np.array([0.1, 0.2]))})
    assert fig.data[0].mode == "lines+markers" and fig.data[2].mode == "lines"


def test_panels_and_axes():
    fig = run_curves({}, x="epoch")
    assert [a.text for a in fig.layout.annotations][:2] == ["loss", "accuracy"]
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.xaxis2.title.text == "epoch"
    assert fig.layout.uirevision == "run" # zoom survives appended points


def test_custom_curves_one_panel():
    cs = (Curve("lr", "learning rate", "lr", "#333"),)
    fig = run_curves({"lr": (np.arange(3), np.array([0.1, 0.1, 0.01]))}, curves=cs)
    assert len(fig.data) == 1 and fig.layout.annotations[0].text == "learning rate"


def test_bad_input():
    with pytest.raises(ValueError, match="scalars: expected"): run_curves({"train/loss": np.arange(3)})
    with pytest.raises(ValueError, match="one length"): run_curves({"train/loss": (np.arange(3), np.arange(2))})
    with pytest.raises(ValueError, match="x: expected one of"): run_curves({}, x="wall")
