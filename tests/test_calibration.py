"""lossviz.calibration against torchmetrics, netcal and scikit-learn; each peer's convention on ties; temperature
scaling against a fine 1-D search (including where netcal's MLE fit fails); streaming statistics; bad input."""
import math, sys, types
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lossviz import calibration
from lossviz.calibration import (ece, mce, ace, classwise_ece, brier, nll, reliability, bin_edges, top_label,
                                 fit_temperature, temperature_nll, fit_vector_scaling, CalibrationStats,
                                 ReliabilityTable)

sk_cal = pytest.importorskip("sklearn.calibration")
from sklearn.metrics import brier_score_loss, log_loss


def _data(n=20000, c=10, scale=2.0, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    z = (torch.randn(n, c, generator=g, dtype=torch.float64) + 1.5 * F.one_hot(y, c)) * scale
    return z.to(dtype), y


def _netcal_metrics():
    return pytest.importorskip("netcal.metrics")


def _netcal_ts():
    """netcal's TemperatureScaling (needs pyro); torch.utils.tensorboard is imported at import time but never used by
    the MLE fit, so a placeholder stands in when the tensorboard package is absent."""
    pytest.importorskip("pyro")
    try: import torch.utils.tensorboard  # noqa: F401
    except ImportError: sys.modules["torch.utils.tensorboard"] = types.SimpleNamespace(SummaryWriter=None)
    return pytest.importorskip("netcal.scaling").TemperatureScaling


# ---------------------------------------------------------------- peers on continuous data

@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_equals_torchmetrics(norm, from_logits):
    tmf = pytest.importorskip("torchmetrics.functional.classification")
    z, y = _data()
    p = z.softmax(1)
    x = z if from_logits else p
    ref = float(tmf.multiclass_calibration_error(p, y, num_classes=10, n_bins=15, norm=norm))
    assert ece(x, y, norm=norm, from_logits=from_logits) == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("n_bins", [1, 7, 15, 40])
def test_equals_torchmetrics_bins(n_bins):
    """torchmetrics casts the confidences to float32 (`confidences.float()`, even for float64 input) and sums each bin
    in float32, so its own rounding grows with the samples per bin: 1e-6 holds up to a few thousand samples per bin (a
    single bin of 20,000 is 1.4e-6 off; 1,000,000 samples in 15 bins, benchmarks/calibration.py, 1.4e-5). Its binning
    and formula run in float64 equal lossviz to 1e-12 at any size (test_equals_torchmetrics_binning_in_float64)."""
    tmf = pytest.importorskip("torchmetrics.functional.classification")
    z, y = _data(n=3000 if n_bins == 1 else 20000, seed=n_bins, scale=1.0)
    p = z.softmax(1)
    ref = float(tmf.multiclass_calibration_error(p, y, num_classes=10, n_bins=n_bins))
    assert ece(p, y, n_bins=n_bins) == pytest.approx(ref, abs=1e-6)


def test_equals_torchmetrics_binning_in_float64():
    "torchmetrics' own binning and formula, fed float64 confidences: lossviz's value to 1e-12 (200,000 samples, 15 bins)."
    cal = pytest.importorskip("torchmetrics.functional.classification.calibration_error")
    z, y = _data(n=200_000, seed=11, scale=2.5)
    p = z.softmax(1)
    conf, correct = top_label(p, y)
    for norm in ("l1", "l2", "max"):
        ref = float(cal._ce_compute(conf.double(), correct.double(), 15, norm=norm))
        assert ece(p, y, norm=norm) == pytest.approx(ref, abs=1e-12)


def test_equals_netcal_uniform():
    nm = _netcal_metrics()
    z, y = _data()
    p = z.double().softmax(1)
    pn, yn = p.numpy(), y.numpy()
    assert ece(p, y) == pytest.approx(float(nm.ECE(15).measure(pn, yn)), abs=1e-6)
    assert mce(p, y) == pytest.approx(float(nm.MCE(15).measure(pn, yn)), abs=1e-6)


def test_equals_netcal_equal_mass():
    "netcal's equal-mass ECE is ECE(equal_intervals=False); N - 1 coprime to n_bins keeps samples off the edges."
    nm = _netcal_metrics()
    z, y = _data(n=10002)      # 10001 = 73 * 137: no k/15 quantile falls exactly on a sample
    p = z.double().softmax(1)
    ref = float(nm.ECE(15, equal_intervals=False).measure(p.numpy(), y.numpy()))
    assert ace(p, y) == pytest.approx(ref, abs=1e-6)
    assert ece(p, y, strategy="quantile") == ace(p, y)


def test_netcal_ace_is_another_quantity():
    "netcal's ACE is the unweighted mean of the bin gaps (Neumann et al.), not an equal-mass ECE: documented, checked."
    nm = _netcal_metrics()
    z, y = _data(n=5000)
    p = z.double().softmax(1)
    t = reliability(p, y)
    full = t.count > 0
    unweighted = float(t.gap[full].abs().mean())
    assert float(nm.ACE(15).measure(p.numpy(), y.numpy())) == pytest.approx(unweighted, abs=1e-9)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_equals_sklearn_curve(strategy):
    z, y = _data(n=7001)
    p = z.double().softmax(1)
    conf, correct = top_label(p, y)
    prob_true, prob_pred = sk_cal.calibration_curve(correct.numpy(), conf.numpy(), n_bins=15, strategy=strategy)
    t = reliability(p, y, strategy=strategy)
    full = t.count > 0
    np.testing.assert_allclose(t.accuracy[full].numpy(), prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(t.confidence[full].numpy(), prob_pred, rtol=0, atol=1e-12)
    assert t.n == len(y) and t.edges[0] == 0 and t.edges[-1] == 1


def test_brier_nll_equal_sklearn():
    z, y = _data(n=5000)
    p = z.double().softmax(1)
    assert brier(p, y) == pytest.approx(brier_score_loss(y.numpy(), p.numpy(), labels=list(range(10))), abs=1e-12)
    assert nll(p, y) == pytest.approx(log_loss(y.numpy(), p.numpy(), labels=list(range(10))), abs=1e-9)
    assert nll(z, y, from_logits=True) == pytest.approx(nll(p, y), abs=1e-6)      # z is float32
    assert brier(z, y, from_logits=True) == pytest.approx(brier(p, y), abs=1e-6)


def test_classwise_ece_by_hand():
    "Classwise ECE: for each class, sklearn's curve of p_c against [y = c], weighted by bin mass; mean over classes."
    z, y = _data(n=3000, c=5)
    p = z.double().softmax(1)
    per = []
    edges = np.linspace(0, 1, 16)
    for c in range(5):
        pc, yc = p[:, c].numpy(), (y == c).numpy().astype(float)
        prob_true, prob_pred = sk_cal.calibration_curve(yc, pc, n_bins=15)
        ids = np.searchsorted(edges[1:-1], pc)
        counts = np.bincount(ids, minlength=15)
        w = counts[counts > 0] / len(pc)
        per.append(np.sum(w * np.abs(prob_true - prob_pred)))
    assert classwise_ece(p, y) == pytest.approx(float(np.mean(per)), abs=1e-12)
    assert classwise_ece(z, y, from_logits=True) == pytest.approx(classwise_ece(p, y), abs=1e-6)


# ---------------------------------------------------------------- ties: each library's convention

def _tie_data():
    "Confidences exactly on the edges of 4 uniform bins (0.5, 0.75, 1.0) and one inside (0.6)."
    p = torch.tensor([[0.5, 0.5, 0.0], [0.75, 0.25, 0.0], [1.0, 0.0, 0.0], [0.6, 0.4, 0.0],
                      [0.25, 0.5, 0.25], [0.0, 0.25, 0.75]], dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 0, 2, 2])   # correct: yes, no, yes, yes, no, yes
    return p, y


def _ece_by_hand(conf, correct, bin_of, n_bins):
    conf, correct = np.asarray(conf, float), np.asarray(correct, float)
    ids = np.array([bin_of(c) for c in conf])
    e = 0.0
    for b in set(ids.tolist()):
        m = ids == b
        e += m.sum() / len(conf) * abs(correct[m].mean() - conf[m].mean())
    return e


def test_ties_lossviz_and_sklearn_lo_hi_closed():
    "lossviz and sklearn: (lo, hi]; 0.5 belongs to (0.25, 0.5], 0.75 to (0.5, 0.75], 1.0 to (0.75, 1]."
    p, y = _tie_data()
    conf, correct = top_label(p, y)
    t = reliability(p, y, n_bins=4)
    assert t.count.tolist() == [0, 2, 3, 1]     # 0.5, 0.5 | 0.75, 0.6, 0.75 | 1.0
    prob_true, prob_pred = sk_cal.calibration_curve(correct.numpy(), conf.numpy(), n_bins=4)
    np.testing.assert_allclose(t.accuracy[t.count > 0].numpy(), prob_true, atol=1e-15)
    np.testing.assert_allclose(t.confidence[t.count > 0].numpy(), prob_pred, atol=1e-15)
    mine = _ece_by_hand(conf, correct, lambda c: max(math.ceil(c * 4) - 1, 0), 4)
    assert ece(p, y, n_bins=4) == pytest.approx(mine, abs=1e-15)


def test_ties_torchmetrics_lo_closed_and_extra_bin():
    "torchmetrics: [lo, hi) on float32 edges, and 1.0 in an extra bin of its own; so it differs from lossviz on ties."
    tmf = pytest.importorskip("torchmetrics.functional.classification")
    p, y = _tie_data()
    conf, correct = top_label(p, y)
    tm = float(tmf.multiclass_calibration_error(p.float(), y, num_classes=3, n_bins=4))
    theirs = _ece_by_hand(conf, correct, lambda c: int(math.floor(c * 4)), 4)   # 1.0 -> bin 4, the extra one
    assert tm == pytest.approx(theirs, abs=1e-6)
    assert abs(tm - ece(p, y, n_bins=4)) > 1e-3                                # the ties move: a documented difference


def test_ties_netcal_lo_closed_clipped():
    "netcal: [lo, hi) (numpy.histogramdd, last bin closed) after clipping to [eps, 1 - eps]."
    nm = _netcal_metrics()
    p, y = _tie_data()
    conf, correct = top_label(p, y)
    ref = float(nm.ECE(4).measure(p.numpy(), y.numpy()))
    eps = np.finfo(np.float64).eps
    theirs = _ece_by_hand(np.clip(conf.numpy(), eps, 1 - eps), correct, lambda c: min(int(math.floor(c * 4)), 3), 4)
    assert ref == pytest.approx(theirs, abs=1e-12)
    assert abs(ref - ece(p, y, n_bins=4)) > 1e-3


def test_ties_equal_mass_edges_on_samples():
    "When (N - 1) k / n_bins is whole, a quantile edge is a sample: lossviz puts it below the edge, netcal above."
    nm = _netcal_metrics()
    z, y = _data(n=10001)     # 10000 k / 15 is whole for k = 3, 6, 9, 12: four samples sit on edges
    p = z.double().softmax(1)
    ref = float(nm.ECE(15, equal_intervals=False).measure(p.numpy(), y.numpy()))
    mine = ace(p, y)
    conf, _ = top_label(p, y)
    edges = bin_edges(conf, 15, "quantile")
    on_edge = int(torch.isin(conf.double(), edges[1:-1]).sum())
    assert on_edge == 4
    assert 0 < abs(ref - mine) < 4 * 2 / len(y)      # each moved sample changes the ECE by at most 2 / N


def test_float32_edges_compare_at_exact_value():
    "A float32 confidence is compared with the float64 edges at its exact value, as numpy (sklearn) compares it."
    p = torch.tensor([[0.9, 0.1], [0.6, 0.4]], dtype=torch.float32)
    assert float(p[0, 0]) < 0.9 < float(np.float32(0.9)) + 1 and float(p[1, 0]) > 0.6   # 0.89999998, 0.60000002
    t = reliability(p, torch.tensor([0, 0]), n_bins=10)
    assert t.count.tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 1, 0]   # 0.6f in (0.6, 0.7], 0.9f in (0.8, 0.9]
    conf, correct = top_label(p, torch.tensor([0, 0]))
    prob_true, prob_pred = sk_cal.calibration_curve(correct.numpy(), conf.numpy(), n_bins=10)
    np.testing.assert_allclose(t.confidence[t.count > 0].numpy(), prob_pred, atol=0)


# ---------------------------------------------------------------- temperature scaling

def _fine_search(z, y, T0, halfwidth, steps=2001):
    grid = torch.linspace(max(T0 - halfwidth, 1e-3), T0 + halfwidth, steps, dtype=torch.float64)
    return float(grid[temperature_nll(z, y, grid).argmin()])


def _coarse_then_fine(z, y):
    "The minimiser of the NLL over T by grid search: log grid, then steps of 5e-4 T, then of 2e-5 T."
    coarse = torch.logspace(-2, 3, 101, dtype=torch.float64)
    T0 = float(coarse[temperature_nll(z, y, coarse).argmin()])
    T1 = _fine_search(z, y, T0, 0.06 * T0, 241)
    return _fine_search(z, y, T1, 0.001 * T1, 101)


@pytest.mark.parametrize("scale", [0.3, 3.0, 30.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("warm", [None, 64])
def test_fit_temperature_matches_fine_search(scale, dtype, warm, monkeypatch):
    "warm=64: the path of large inputs (a strided subsample's optimum, then Newton on all the samples) on 2000 samples."
    if warm: monkeypatch.setattr(calibration, "_TEMP_WARM", warm)
    g = torch.Generator().manual_seed(int(scale * 10))
    y = torch.randint(0, 10, (2000,), generator=g)
    z = (2 * (torch.randn(2000, 10, generator=g, dtype=torch.float64) + 2 * F.one_hot(y, 10)) * scale).to(dtype)
    T = fit_temperature(z, y)
    assert T == pytest.approx(_coarse_then_fine(z, y), abs=1e-3)
    # the derivative of the NLL in T is zero there
    h = 1e-5 * T
    d = temperature_nll(z, y, [T - h, T + h])
    assert abs(float(d[1] - d[0])) / (2 * h) < 1e-5


def test_fit_temperature_imbalanced_and_noisy():
    "Imbalanced classes and 30 % label noise: still the minimiser."
    g = torch.Generator().manual_seed(5)
    y = torch.multinomial(torch.tensor([0.6, 0.2, 0.1, 0.05, 0.05]), 4000, replacement=True, generator=g)
    y = y[:2000]
    z = 5 * (torch.randn(2000, 5, generator=g) + 2 * F.one_hot(y, 5))
    noisy = torch.where(torch.rand(2000, generator=g) < 0.3, torch.randint(0, 5, (2000,), generator=g), y)
    T = fit_temperature(z, noisy)
    assert T > 5 and T == pytest.approx(_coarse_then_fine(z, noisy), abs=1e-3)


def test_netcal_mle_fails_where_fit_temperature_does_not():
    "netcal #61/#48: float32 input returns T = 1; saturated float64 probabilities stop short. lossviz: the optimum."
    TS = _netcal_ts()
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (2000,), generator=g)
    z = 2 * (torch.randn(2000, 10, generator=g, dtype=torch.float64) + 2 * F.one_hot(y, 10)) * 30
    def netcal_T(dtype):
        ts = TS(method="mle")
        ts.fit(z.softmax(1).numpy().astype(dtype), y.numpy(), tensorboard=False)
        return 1 / float(ts._sites["weights"]["values"][0])
    best = _coarse_then_fine(z, y)
    assert netcal_T(np.float32) == 1.0
    assert abs(netcal_T(np.float64) - best) > 1.0
    assert fit_temperature(z, y) == pytest.approx(best, abs=1e-3)
    assert fit_temperature(z.float(), y) == pytest.approx(best, abs=1e-3)


def test_fit_temperature_needs_few_passes_over_all_the_samples(monkeypatch):
    """Large inputs: Newton from the optimum of a strided subsample reaches the tolerance in two or three evaluations
    over all the samples (each one pass), and equals the answer without the warm start to 1e-9."""
    z, y = _data(n=6000, scale=2.5, dtype=torch.float32)
    cold = fit_temperature(z, y)
    calls = []
    grad = calibration._temp_grad
    def counting(zz, *a, **k):
        calls.append(zz.shape[0]); return grad(zz, *a, **k)
    monkeypatch.setattr(calibration, "_temp_grad", counting)
    monkeypatch.setattr(calibration, "_TEMP_WARM", 256)
    T = fit_temperature(z, y)
    assert T == pytest.approx(cold, rel=1e-9)
    assert 1 <= calls.count(6000) <= 3 and all(n < 300 for n in calls if n != 6000), calls
    assert T == pytest.approx(_coarse_then_fine(z, y), abs=1e-3)


def test_fit_temperature_init_and_check():
    "init= (e.g. the last epoch's T*) starts Newton there: the same optimum, fewer steps from nearby; check=False skips validation."
    z, y = _data(n=3000, scale=2.5, dtype=torch.float64)
    T = fit_temperature(z, y)
    for init in (0.05, T * 1.01, 50.0):
        assert fit_temperature(z, y, init=init) == pytest.approx(T, rel=1e-9)
    assert fit_temperature(z, y, init=T * 1.01, check=False) == pytest.approx(T, rel=1e-9)
    with pytest.raises(ValueError, match="init"): fit_temperature(z, y, init=0.0)


def test_fit_temperature_limits():
    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, 4, (300,), generator=g)
    assert fit_temperature(-10 * F.one_hot(y, 4).float(), y) == 100.0
    assert fit_temperature(10 * F.one_hot(y, 4).float(), y) == 0.01
    assert fit_temperature(10 * F.one_hot(y, 4).float(), y, t_min=1e-3) == 1e-3
    assert fit_temperature(torch.zeros(5, 3), torch.tensor([0, 1, 2, 0, 1])) == 1.0
    # rows of huge logits (softmax one-hot at T = 1): Newton's curvature is 0 there, bisection carries on
    z, yy = _data(n=2000, scale=200.0, dtype=torch.float64)
    assert fit_temperature(z, yy, t_max=1e3) == pytest.approx(_coarse_then_fine(z, yy), abs=1e-3)


def test_vector_scaling_converges():
    z, y = _data(n=1500, c=5, scale=4.0, dtype=torch.float64)
    vs = fit_vector_scaling(z, y)
    w = vs.w.clone().requires_grad_(True); b = vs.b.clone().requires_grad_(True)
    loss = F.cross_entropy(z * w + b, y)
    gw, gb = torch.autograd.grad(loss, (w, b))
    assert float(torch.cat([gw, gb]).abs().max()) < 1e-6
    T = fit_temperature(z, y)
    assert nll(vs(z), y, from_logits=True) <= nll(z / T, y, from_logits=True) + 1e-12


# ---------------------------------------------------------------- streaming

@pytest.mark.parametrize("from_logits", [False, True])
def test_stats_equal_one_shot(from_logits):
    z, y = _data(n=10000)
    x = z if from_logits else z.softmax(1)
    st = CalibrationStats(15)
    for i in range(0, len(y), 777): st.update(x[i:i + 777], y[i:i + 777], from_logits=from_logits)
    one = reliability(x, y, from_logits=from_logits)
    assert torch.equal(st.reliability().count, one.count)
    for norm in ("l1", "l2", "max"):
        assert st.ece(norm) == pytest.approx(ece(x, y, norm=norm, from_logits=from_logits), abs=1e-12)
    assert st.nll() == pytest.approx(nll(x, y, from_logits=from_logits), abs=1e-9)
    assert st.brier() == pytest.approx(brier(x, y, from_logits=from_logits), abs=1e-7)
    assert st.accuracy == pytest.approx(float((x.argmax(1) == y).double().mean()), abs=1e-15)
    assert st.n == len(y) and st.state.numel() == 3 * 15 + 3      # O(bins), whatever N


def test_stats_merge_and_empty():
    z, y = _data(n=4000)
    a = CalibrationStats().update(z[:1500], y[:1500], from_logits=True)
    b = CalibrationStats().update(z[1500:], y[1500:], from_logits=True)
    assert a.merge(b).ece() == pytest.approx(ece(z, y, from_logits=True), abs=1e-12)
    e = CalibrationStats()
    assert e.n == 0 and math.isnan(e.ece()) and math.isnan(e.nll())
    assert e.merge(a).n == 4000
    with pytest.raises(ValueError, match="other: expected CalibrationStats with n_bins=15"):
        a.merge(CalibrationStats(10))
    assert e.all_reduce() is e        # outside DDP: a no-op


def test_stats_half_precision():
    z, y = _data(n=2000)
    st = CalibrationStats().update(z.half(), y, from_logits=True)
    assert st.ece() == pytest.approx(ece(z.half().float(), y, from_logits=True), abs=1e-12)


def test_table_round_trip():
    z, y = _data(n=500)
    t = reliability(z, y, n_bins=30, from_logits=True)   # some bins empty
    assert bool((t.count == 0).any())
    d = t.to_dict()
    import json
    t2 = ReliabilityTable.from_dict(json.loads(json.dumps(d)))
    assert t2.ece() == t.ece() and torch.equal(t2.count, t.count)


# ---------------------------------------------------------------- properties

@pytest.mark.parametrize("seed", range(5))
def test_norm_order_and_range(seed):
    z, y = _data(n=1000, seed=seed, scale=0.5 + seed)
    p = z.softmax(1)
    l1, l2, mx = (ece(p, y, norm=n) for n in ("l1", "l2", "max"))
    assert 0 <= l1 <= l2 + 1e-12 <= mx + 2e-12 <= 1 + 2e-12
    assert 0 <= brier(p, y) <= 2 and nll(p, y) >= 0
    # a perfectly calibrated one-bin table: confidence equals accuracy
    assert ece(torch.full((4, 2), 0.5), torch.tensor([0, 1, 1, 0])) == 0.0


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("fn", [ece, mce, ace, classwise_ece, brier, nll, reliability])
def test_bad_input_names_the_argument(fn):
    p = torch.tensor([[0.7, 0.3], [0.2, 0.8]]); y = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="probs: expected rows that sum to 1"): fn(torch.tensor([[0.7, 0.2], [0.2, 0.8]]), y)
    with pytest.raises(ValueError, match="probs: expected finite values"): fn(torch.tensor([[float("nan"), 0.3], [0.2, 0.8]]), y)
    with pytest.raises(ValueError, match="probs: expected finite values"): fn(torch.tensor([[float("inf"), 0.3], [0.2, 0.8]]), y, from_logits=True)
    with pytest.raises(ValueError, match="probs: expected probabilities in"): fn(torch.tensor([[1.5, -0.5], [0.2, 0.8]]), y)
    with pytest.raises(ValueError, match="probs: expected a 2-D tensor"): fn(p[0], y)
    with pytest.raises(ValueError, match="probs: expected .N, C. with C >= 2"): fn(p[:, :1] * 0 + 1, y)
    with pytest.raises(ValueError, match="labels: expected values in .0, 1."): fn(p, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="labels: expected values in .0, 1."): fn(p, torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="labels: expected 2 labels"): fn(p, torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="labels: expected an integer dtype"): fn(p, torch.tensor([0., 1.]))
    if fn not in (brier, nll):
        with pytest.raises(ValueError, match="n_bins: expected a value in .1, inf"): fn(p, y, n_bins=0)
        with pytest.raises(ValueError, match="n_bins: expected an integer"): fn(p, y, n_bins=2.5)


def test_bad_input_other_arguments():
    p = torch.tensor([[0.7, 0.3], [0.2, 0.8]]); y = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="strategy: expected one of 'uniform', 'quantile'"): ece(p, y, strategy="equal")
    with pytest.raises(ValueError, match="norm: expected one of 'l1', 'l2', 'max'"): ece(p, y, norm="l3")
    with pytest.raises(ValueError, match="n_bins"): CalibrationStats(0)
    with pytest.raises(ValueError, match="probs: expected rows that sum to 1"): CalibrationStats().update(p * 2, y)
    with pytest.raises(ValueError, match="logits: expected finite values"): fit_temperature(torch.tensor([[float("nan"), 0.]]), y[:1])
    with pytest.raises(ValueError, match="labels: expected values in"): fit_temperature(p, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="t_max"): fit_temperature(p, y, t_min=2.0, t_max=1.0)
    with pytest.raises(ValueError, match="temperatures: expected positive"): temperature_nll(p, y, [0.0, 1.0])
    with pytest.raises(ValueError, match="probs: expected at least one sample"): ece(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(TypeError, match="probs: expected a torch.Tensor"): ece(np.array([[0.5, 0.5]]), y[:1])


# ---------------------------------------------------------------- CUDA

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    z, y = _data(n=50000)
    zc, yc = z.cuda(), y.cuda()
    for norm in ("l1", "l2", "max"):
        assert ece(zc, yc, norm=norm, from_logits=True) == pytest.approx(ece(z, y, norm=norm, from_logits=True), abs=1e-6)
    assert ace(zc.softmax(1), yc) == pytest.approx(ace(z.softmax(1), y), abs=1e-6)
    assert fit_temperature(zc, yc) == pytest.approx(fit_temperature(z, y), abs=1e-6)
    st = CalibrationStats().update(zc, yc, from_logits=True)
    assert st.state.is_cuda and st.ece() == pytest.approx(ece(z, y, from_logits=True), abs=1e-6)


def test_bins_in_float32_equal_exact_comparison():
    """Both float32 binning paths (the arithmetic one for uniform bins, n_bins <= 1024; the binary search against
    float32 edges rounded down) equal comparing the exact value with the float64 edges: checked on every float32 within
    3 ulps of every edge, for every n_bins up to 1024 (numpy's linspace puts a few edges an ulp below k / B: 98, 196, ...),
    and for quantile edges."""
    from lossviz.calibration import _bin_index, _bin_sums
    for B in range(1, 1025):
        edges = bin_edges(n_bins=B)
        near = [torch.tensor(edges.tolist(), dtype=torch.float32)]
        for _ in range(3): near.append(torch.nextafter(near[-1], torch.tensor(2.0)))
        down = [near[0]]
        for _ in range(3): down.append(torch.nextafter(down[-1], torch.tensor(-1.0)))
        c = torch.cat(near + down).clamp(0, 1)
        ref = torch.bucketize(c.double(), edges[1:-1], right=False)
        assert torch.equal(_bin_index(c, c.double(), edges, True), ref), B
        if B <= 64 or B % 97 == 0:
            assert torch.equal(_bin_index(c, c.double(), edges, False), ref), B
    # the per-bin sums of the arithmetic path (2 (B + 1) slots: bin, correct or not, 0 apart) equal the binary search's
    g = torch.Generator().manual_seed(1)
    for B in (1, 2, 7, 15, 98, 1024):
        edges = bin_edges(n_bins=B)
        e32 = torch.tensor(edges.tolist(), dtype=torch.float32)
        c = torch.cat([torch.rand(3000, generator=g), e32, torch.nextafter(e32, torch.tensor(2.0)).clamp(0, 1),
                       torch.zeros(5), torch.ones(5)])
        correct = torch.rand(len(c), generator=g) < 0.6
        fast, slow = _bin_sums(c, correct, edges, uniform=True), _bin_sums(c, correct, edges, uniform=False)
        for a, b in zip(fast, slow): assert torch.equal(a, b), B
    z, y = _data(n=5001)
    conf, correct = top_label(z.softmax(1), y)
    edges = bin_edges(conf, 15, "quantile")
    count, _, _ = _bin_sums(conf, correct, edges)
    assert torch.equal(count.long(), torch.bincount(torch.bucketize(conf.double(), edges[1:-1]), minlength=15))
