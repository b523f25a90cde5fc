"""Per-sample logit weights (gpw.logits): autograd cross-checks, closed forms and the known shapes of the weight curves."""
import math
import pytest
import torch
import torch.nn.functional as F

from lossviz import gpw, losses

NAMES = losses.names("classification")
PER_SAMPLE = [n for n in NAMES if losses.spec(n).per_sample]


def batch(n=6, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=torch.float64), torch.randint(0, c, (n,), generator=g)


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_logit_weights_are_each_samples_own_gradient(name):
    z, y = batch()
    w = gpw.logit_weights(name, z, y)
    loss = losses.get(name)
    for i in range(len(y)):  # reference: autograd on one sample at a time
        zi = z[i:i + 1].clone().requires_grad_()
        (g,) = torch.autograd.grad(loss(zi, y[i:i + 1]), zi)
        torch.testing.assert_close(w[i], g[0])


@pytest.mark.parametrize("name", sorted(set(NAMES) - set(PER_SAMPLE)))
def test_logit_weights_set_level_is_gradient_of_batch_value(name):
    z, y = batch(10, 3)
    zz = z.clone().requires_grad_()
    (g,) = torch.autograd.grad(losses.get(name)(zz, y), zz)
    torch.testing.assert_close(gpw.logit_weights(name, z, y), g)


def test_logit_weights_under_no_grad_and_detached():
    z, y = batch()
    z.requires_grad_()
    with torch.no_grad(): w = gpw.logit_weights("focal", z, y)
    assert not w.requires_grad and z.grad is None


@pytest.mark.parametrize("tau", [0.0, 0.3, 1.0, 1.5, 2.0, 2.7])
def test_comp_sum_closed_form(tau):
    z, y = batch(20, 7, seed=2)
    torch.testing.assert_close(gpw.comp_sum_weights(z, y, tau), gpw.logit_weights(losses.get("comp_sum", tau=tau), z, y))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("x", ["margin", "p_y"])
def test_weight_curve_matches_autograd_pointwise(name, x):
    c = gpw.weight_curve(name, x=x, num_classes=4, points=7, spread=1.0)
    assert c.x.shape == c.loss.shape == c.weight.shape == (7,) and c.grad.shape == (7, 4)
    assert torch.isfinite(c.loss).all() and torch.isfinite(c.weight).all()
    loss = losses.get(name)
    for i in (0, 3, 6):
        zi = c.logits[i:i + 1].clone().requires_grad_()
        v = loss(zi, torch.zeros(1, dtype=torch.long))
        (g,) = torch.autograd.grad(v, zi)
        torch.testing.assert_close(c.loss[i], v.detach())
        torch.testing.assert_close(c.weight[i], g[0, 0].abs())


def test_curve_construction():
    z = gpw.curve_logits("p_y", torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64), num_classes=5, spread=2.0)
    torch.testing.assert_close(torch.softmax(z, 1)[:, 0], torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    torch.testing.assert_close(z[:, 1:].amax(1), torch.zeros(3, dtype=torch.float64))  # margin = z_y
    torch.testing.assert_close(z[0, 1:], torch.linspace(-2, 0, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="p_y must lie strictly between 0 and 1"): gpw.curve_logits("p_y", torch.tensor([1.0]))
    with pytest.raises(ValueError, match="lim: expected low < high"): gpw.weight_curve("mae", lim=(1, 0))


def test_focal_down_weights_easy_samples():
    ce, fl = gpw.weight_curve("cross_entropy"), gpw.weight_curve(losses.get("focal", gamma=2.0))
    ratio = fl.weight / ce.weight
    assert (ratio[ce.margin > 4] < 0.1).all()
    assert (ratio[ce.margin > 0].diff() < 0).all()
    g0 = gpw.weight_curve(losses.get("focal", gamma=0.0))
    torch.testing.assert_close(g0.weight, ce.weight)


@pytest.mark.parametrize("robust", ["gce", "mae", "comp_sum"])
def test_bounded_losses_cap_the_weight_of_confidently_wrong_samples(robust):
    kw = {"comp_sum": {"tau": 2.0}}.get(robust, {})
    ce, rb = gpw.weight_curve("cross_entropy", x="p_y"), gpw.weight_curve(losses.get(robust, **kw), x="p_y")
    wrong = ce.p_y < 0.01
    assert (ce.weight[wrong] > 0.99).all()                   # CE: weight -> 1 as p_y -> 0
    assert (rb.weight[wrong] < 0.1).all()                    # bounded loss: weight -> 0
    assert rb.weight[wrong].max() < rb.weight.max() / 5      # its weight peaks on moderately confident samples
    # the loss itself is bounded (CE is not)
    assert rb.loss.max() <= 2.0 + 1e-9 and ce.loss.max() > 6


def test_sum_exponential_amplifies_wrong_samples():
    ce, se = gpw.weight_curve("cross_entropy"), gpw.weight_curve(losses.get("comp_sum", tau=0.0))
    wrong = ce.margin < -3
    assert (se.weight[wrong] > 10 * ce.weight[wrong]).all()


def test_simplex_map():
    for t in (0, 1, 2):
        m = gpw.simplex_map("cross_entropy", target=t, resolution=24)
        inside = ~m.loss.isnan()
        torch.testing.assert_close(m.loss[inside], -torch.log(m.probs[..., t][inside]))
        torch.testing.assert_close(m.weight[inside], 1 - m.probs[..., t][inside])
        assert torch.equal(inside, ~m.weight.isnan())
    # the cell nearest a vertex has the lowest CE for that vertex's class
    m = gpw.simplex_map("cross_entropy", target=2, resolution=30)
    i = torch.nan_to_num(m.loss, nan=float("inf")).argmin()
    vi, ui = divmod(int(i), 30)
    assert m.v[vi] > 0.7  # near the top vertex (class 2)
    with pytest.raises(ValueError, match="resolution: expected a value in"): gpw.simplex_map("mae", resolution=1)


def test_pair_loss_is_refused():
    pair = losses.names("pair")
    assert pair, "the pair losses (nbs/11_losses_pairs) register themselves on import"
    with pytest.raises(ValueError, match="expected a classification loss"):
        gpw.logit_weights(pair[0], *batch())
