"""Contract, reference and property tests for every registered classification loss (nbs/10b, 10c, 10d)."""
import math
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from sklearn.metrics import f1_score

from lossviz import losses
from lossviz.core import HParam
from lossviz.losses.classification import cross_entropy, comp_sum, gce, focal, dco, squentropy, mae
from lossviz.losses.classification_alt import z_loss, ldr_kl, stablemax_ce, harmonic_distance_loss
from lossviz.losses.classification_set import dice, tversky, anyloss

NAMES = losses.names("classification")
EXPECTED = {"cross_entropy", "label_smoothing", "focal", "comp_sum", "gce", "mae", "mse", "squentropy", "z_loss",
            "logit_penalty", "ldr_kl", "stablemax_ce", "harmonic", "anyloss", "dice", "tversky", "dco"}


def batch(n=6, c=4, dtype=torch.float64, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, dtype=dtype)
    y = torch.randint(0, c, (n,), generator=g)
    return z.to(device), y.to(device)


def test_zoo_is_complete():
    assert EXPECTED <= set(NAMES), EXPECTED - set(NAMES)


# ---------------------------------------------------------------- contract, over the registry
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_scalar_and_backprop(name, dtype):
    loss = losses.get(name)
    z, y = batch(dtype=dtype)
    z.requires_grad_()
    v = loss(z, y)
    assert v.shape == () and v.dtype == dtype and torch.isfinite(v)
    v.backward()
    assert z.grad is not None and z.grad.shape == z.shape and torch.isfinite(z.grad).all()
    assert z.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_reductions(name):
    loss = losses.get(name)
    z, y = batch()
    mean, total = loss(z, y, reduction="mean"), loss(z, y, reduction="sum")
    if losses.spec(name).per_sample:
        per = loss(z, y, reduction="none")
        assert per.shape == (6,)
        torch.testing.assert_close(mean, per.mean()); torch.testing.assert_close(total, per.sum())
        # per-sample: each value depends on its own row only
        torch.testing.assert_close(loss(z[:3], y[:3], reduction="none"), per[:3])
    else:
        torch.testing.assert_close(mean, total)  # a single set: both are the set's value
        with pytest.raises(ValueError, match="set-level loss"): loss(z, y, reduction="none")
        zs, ys = torch.stack([z, z.flip(0)]), torch.stack([y, y.flip(0)])
        torch.testing.assert_close(loss(zs, ys, reduction="none"), torch.stack([loss(z, y), loss(z.flip(0), y.flip(0))]))
    with pytest.raises(ValueError, match="reduction: expected one of"): loss(z, y, reduction="avg")


@pytest.mark.parametrize("name", NAMES)
def test_float32_matches_float64(name):
    loss = losses.get(name)
    z, y = batch(n=16, c=5, seed=3)
    torch.testing.assert_close(loss(z.float(), y).double(), loss(z, y), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name):
    loss = losses.get(name)
    z, y = batch(n=5, c=4, seed=7)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (z.requires_grad_(),), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_hparams_documented_and_bounded(name):
    s = losses.spec(name)
    assert s.kind == "classification" and s.paper and s.equation and s.url.startswith("https://") and s.doc
    for k, hp in s.hparams.items():
        assert isinstance(hp, HParam) and hp.doc, k
        if hp.choices is not None: assert hp.default in hp.choices
        elif isinstance(hp.default, bool): pass
        else:
            assert hp.low is not None and hp.high is not None and hp.low <= hp.default <= hp.high, (k, hp)
            losses.get(name, **{k: hp.low}); losses.get(name, **{k: hp.high})  # the bounds themselves are valid
    for k in s.hparams: assert k.isidentifier()


@pytest.mark.parametrize("name", NAMES)
def test_works_at_every_hparam_extreme(name):
    "Every loss is finite with a finite gradient at each bound of each hyperparameter (what a slider can reach)."
    s = losses.spec(name)
    z, y = batch(n=8, c=3, seed=11)
    for k, hp in s.hparams.items():
        vals = hp.choices or ((True, False) if isinstance(hp.default, bool) else (hp.low, hp.high))
        for v in vals:
            zz = z.clone().requires_grad_()
            out = losses.get(name, **{k: v})(zz, y)
            out.backward()
            assert torch.isfinite(out) and torch.isfinite(zz.grad).all(), (k, v)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs(name):
    loss = losses.get(name)
    z, y = batch()
    with pytest.raises(ValueError, match="targets: expected an integer dtype"): loss(z, y.float())
    with pytest.raises(ValueError, match=r"targets: expected values in \[0, 3\]"): loss(z, y + 4)
    with pytest.raises(ValueError, match="targets: expected"): loss(z, y[:5])  # mismatched N
    with pytest.raises(ValueError, match="logits: expected at least 2 classes"): loss(z[:, :1], torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="logits: expected finite values"): loss(z.index_fill(0, torch.tensor([2]), float("nan")), y)
    with pytest.raises(ValueError, match="logits: expected a floating dtype"): loss(z.long(), y)
    with pytest.raises(TypeError, match="logits: expected a torch.Tensor"): loss(z.numpy(), y)
    for k, hp in losses.spec(name).hparams.items():
        if hp.high is not None and hp.choices is None and not isinstance(hp.default, bool):
            with pytest.raises(ValueError, match=rf"{k}: expected a value in \[{hp.low}, {hp.high}\]"):
                losses.get(name, **{k: hp.high + 1})
    with pytest.raises(ValueError, match="got unknown"): losses.get(name, not_a_param=1)


def test_unknown_name_lists_names():
    with pytest.raises(ValueError, match="unknown loss 'focall'; registered losses are: .*focal"):
        losses.get("focall")


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_is_a_differentiable_zero(name):
    z = torch.zeros(0, 3, requires_grad=True)
    v = losses.get(name)(z, torch.zeros(0, dtype=torch.long))
    v.backward()
    assert v.item() == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_module_moves_and_binds(name):
    loss = losses.get(name)
    assert isinstance(loss, torch.nn.Module) and loss.name == name and loss.per_sample == losses.spec(name).per_sample
    assert name in repr(loss)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    loss = losses.get(name)
    z, y = batch(n=32, c=7)
    torch.testing.assert_close(loss(z.cuda(), y.cuda()).cpu(), loss(z, y))


# ---------------------------------------------------------------- literature properties
@settings(max_examples=30, deadline=None)
@given(st.integers(2, 8), st.integers(1, 6), st.floats(0.05, 0.95), st.integers(0, 10_000))
def test_comp_sum_special_cases(c, n, q, seed):
    z, y = batch(n, c, seed=seed)
    py = torch.softmax(z, 1).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(comp_sum(z, y, "none", tau=1.0), F.cross_entropy(z, y, reduction="none"))
    torch.testing.assert_close(comp_sum(z, y, "none", tau=1 + q), gce(z, y, "none", q=q))
    torch.testing.assert_close(comp_sum(z, y, "none", tau=2.0), 1 - py)
    u = torch.exp(z - z.gather(1, y[:, None])).sum(1) - 1
    torch.testing.assert_close(comp_sum(z, y, "none", tau=0.0), u)


def test_ldr_kl_limits():
    z, y = batch(10, 6, seed=4)
    torch.testing.assert_close(ldr_kl(z, y, "none", lam=1.0, margin=0.0), cross_entropy(z, y, "none") - math.log(6))
    for c in (0.0, 1.0, 2.5):
        hinge = (c + z - z.gather(1, y[:, None])).scatter(1, y[:, None], 0.0).amax(1).clamp_min(0)
        gap = (ldr_kl(z, y, "none", lam=1e-3, margin=c) - hinge).abs().max().item()
        assert gap <= 1e-3 * math.log(6) + 1e-9  # |λ log-mean-exp - max| <= λ log C


@settings(max_examples=30, deadline=None)
@given(st.floats(1e-3, 1e3), st.floats(-50, 50), st.integers(0, 10_000))
def test_z_loss_invariances(scale, shift, seed):
    z, y = batch(8, 5, seed=seed)
    torch.testing.assert_close(z_loss(scale * z + shift, y, "none", a=2.0, b=0.5), z_loss(z, y, "none", a=2.0, b=0.5))


def test_squentropy_is_ce_when_wrong_logits_are_zero():
    y = torch.tensor([0, 3, 2, 2, 1])
    z = torch.zeros(5, 4, dtype=torch.float64).scatter(1, y[:, None], torch.tensor([[5.0], [-2.0], [0.3], [9.0], [1.0]], dtype=torch.float64))
    torch.testing.assert_close(squentropy(z, y, "none"), cross_entropy(z, y, "none"))


def test_dice_on_hard_predictions_is_macro_f1():
    g = torch.Generator().manual_seed(5)
    y, pred = torch.randint(0, 6, (200,), generator=g), torch.randint(0, 6, (200,), generator=g)
    hard = 60.0 * F.one_hot(pred, 6).double()
    expect = 1 - f1_score(y, pred, average="macro")
    torch.testing.assert_close(dice(hard, y, smooth=0.0).item(), expect)
    torch.testing.assert_close(tversky(hard, y, alpha=0.5, beta=0.5, smooth=0.0).item(), expect)
    torch.testing.assert_close(anyloss(hard, y, metric="f1").item(), expect)


def test_harmonic_scale_invariance():
    g = torch.Generator().manual_seed(6)
    d = torch.rand(7, 5, generator=g, dtype=torch.float64) + 0.1
    y = torch.randint(0, 5, (7,), generator=g)
    for s in (1e-3, 0.5, 30.0):
        torch.testing.assert_close(harmonic_distance_loss(s * d, y, n=2.0, reduction="none"), harmonic_distance_loss(d, y, n=2.0, reduction="none"))


def test_dco_n1_is_ce_and_caps_confidence():
    z, y = batch(12, 5, seed=8)
    torch.testing.assert_close(dco(z, y, "none", N=1), cross_entropy(z, y, "none"))
    # DCO's gradient on z_y relative to CE's shrinks to 0 as p_y -> 1
    m = torch.tensor([0.0, 2.0, 5.0, 10.0], dtype=torch.float64)
    zz = torch.zeros(4, 3, dtype=torch.float64); zz[:, 0] = m; zz.requires_grad_()
    t = torch.zeros(4, dtype=torch.long)
    g_dco = torch.autograd.grad(dco(zz, t, "sum", N=8), zz)[0][:, 0]
    g_ce = torch.autograd.grad(cross_entropy(zz, t, "sum"), zz)[0][:, 0]
    ratio = (g_dco / g_ce).tolist()
    assert all(a > b for a, b in zip(ratio, ratio[1:])) and ratio[-1] < 1e-2


def test_stablemax_gradient_survives_float32_collapse():
    y = torch.tensor([0])
    for scale in (30.0, 50.0, 200.0):
        z = (torch.tensor([[1.0, 0.0, -1.0]]) * scale).requires_grad_()
        ce_grad = torch.autograd.grad(F.cross_entropy(z, y), z)[0]
        sm_grad = torch.autograd.grad(stablemax_ce(z, y), z)[0]
        assert ce_grad[0, 0].item() == 0.0          # float32 CE: the true class's gradient is exactly 0
        assert sm_grad[0, 0].item() < 0.0           # StableMax still pushes the true logit up


def test_focal_down_weights_easy_samples():
    z = torch.tensor([[4.0, 0.0, 0.0], [0.5, 0.0, 0.0]], dtype=torch.float64)
    y = torch.zeros(2, dtype=torch.long)
    ratio = focal(z, y, "none", gamma=2.0) / cross_entropy(z, y, "none")
    assert ratio[0] < ratio[1] < 1  # the easy sample (large margin) loses more


def test_mae_is_twice_one_minus_py():
    z, y = batch(9, 4, seed=9)
    torch.testing.assert_close(mae(z, y, "none"), (torch.softmax(z, 1) - F.one_hot(y, 4)).abs().sum(1))


# ---------------------------------------------------------------- edges found by the independent checks (issue 14)
def test_ldr_kl_normalize_survives_underflowing_rows():
    # softplus of every logit underflows in float32; exact value -0.85906752244613548783 (mpmath, 50 digits)
    z = torch.tensor([[-120., -200., -150.]]); y = torch.tensor([0])
    for dt in (torch.float32, torch.float64):
        zz = z.detach().to(dt).requires_grad_()
        v = ldr_kl(zz, y, normalize=True)
        assert v.item() == pytest.approx(-0.85906752244613548783, rel=1e-6)
        v.backward(); assert torch.isfinite(zz.grad).all()
    # and the normalisation is still softplus / row mean where nothing underflows
    g = torch.Generator().manual_seed(3); z2 = torch.randn(6, 4, generator=g, dtype=torch.float64); y2 = torch.randint(0, 4, (6,), generator=g)
    f = F.softplus(z2); f = f / f.mean(1, keepdim=True)
    torch.testing.assert_close(ldr_kl(z2, y2, "none", normalize=True), ldr_kl(f, y2, "none"), rtol=1e-12, atol=1e-12)


def test_squentropy_does_not_cancel_when_the_true_logit_dominates():
    z = torch.tensor([[1e4, 1.25, -1.25]], requires_grad=True)
    v = squentropy(z, torch.tensor([0]))
    assert v.item() == 1.5625  # CE = 0 to float32; (1.25² + 1.25²) / 2
    v.backward()
    torch.testing.assert_close(z.grad, torch.tensor([[0.0, 1.25, -1.25]]))  # the softmax part is 0 here


def test_comp_sum_overflow_is_an_error_not_inf():
    z = torch.tensor([[0.0, 100.0, 0.0]]); y = torch.tensor([0])  # CE ~ 100
    assert torch.isfinite(comp_sum(z, y, tau=0.5))  # e^(0.5 * 100) fits float32
    with pytest.raises(ValueError, match=r"comp_sum: with tau=0.0 .* overflows torch.float32 .*largest cross-entropy here 100"):
        comp_sum(z, y, tau=0.0)
    assert torch.isfinite(comp_sum(z.double(), y, tau=0.0))  # float64 holds e^100
    from lossviz.core import trusted_inputs
    with trusted_inputs(): assert comp_sum(z, y, tau=0.0).item() == float("inf")  # a Run's divergence check takes over
    assert losses.spec("comp_sum").notes


def test_tversky_and_dice_with_an_absent_class():
    g = torch.Generator().manual_seed(12)
    z = torch.randn(10, 4, generator=g, dtype=torch.float64); y = torch.tensor([0, 1, 2] * 3 + [0])  # class 3 absent
    p = torch.softmax(z, 1); oh = F.one_hot(y, 4).double()
    tp, fp, fn = (p * oh).sum(0), (p * (1 - oh)).sum(0), ((1 - p) * oh).sum(0)
    assert fn[3] == 0 and tp[3] == 0
    for s in (1.0, 0.0):
        idx = (tp + s) / (tp + 0.3 * fp + 0.7 * fn + s) if s else torch.cat([tp[:3] / (tp[:3] + 0.3 * fp[:3] + 0.7 * fn[:3]), torch.zeros(1, dtype=torch.float64)])
        assert tversky(z, y, smooth=s).item() == pytest.approx(1 - idx.mean().item(), rel=1e-12)
        dc = (2 * tp + s) / (2 * tp + fp + fn + s) if s else torch.cat([2 * tp[:3] / (2 * tp[:3] + fp[:3] + fn[:3]), torch.zeros(1, dtype=torch.float64)])
        assert dice(z, y, smooth=s).item() == pytest.approx(1 - dc.mean().item(), rel=1e-12)
    # γ = 0: the absent class is the full 1/C whatever the predictions; γ = 1: about α·FP/C
    assert tversky(z, y, smooth=1.0).item() < tversky(z, y, smooth=0.0).item()
    assert any("absent" in n for n in losses.spec("tversky").notes) and any("absent" in n for n in losses.spec("dice").notes)
