"""lossviz.curvature against the dense Hessian (torch.autograd.functional.hessian + eigvalsh) and against PyHessian."""
import copy
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lossviz.curvature import (HVP, dense_hessian, density, hessian_trace, hvp, sharpness, top_eigenvalues)


@pytest.fixture(scope="module")
def tiny():
    g = torch.Generator().manual_seed(0)
    torch_state = torch.get_rng_state()
    torch.manual_seed(3)
    m = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    torch.set_rng_state(torch_state)
    x = torch.randn(64, 5, generator=g)
    y = torch.randint(0, 3, (64,), generator=g)
    H = dense_hessian(m, F.cross_entropy, (x, y)).double()
    return m, x, y, H, torch.linalg.eigvalsh(H).flip(0).numpy()


def test_hvp_matches_dense(tiny):
    m, x, y, H, _ = tiny
    v = torch.randn(H.shape[0], generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(hvp(m, F.cross_entropy, (x, y), v).numpy(), (H.float() @ v).numpy(), rtol=1e-4, atol=1e-6)
    # several batches: the sample-weighted mean of the per-batch Hessians
    batches = [(x[:20], y[:20]), (x[20:], y[20:])]
    for keep in (True, False):
        hv = HVP(m, F.cross_entropy, batches, keep_graph=keep)(v)
        np.testing.assert_allclose(hv.numpy(), (H.float() @ v).numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvalues_match_eigvalsh(tiny, method):
    m, x, y, H, ev = tiny
    k = 3 if method == "lanczos" else 2
    kw = dict(tol=1e-9, max_iter=2000) if method == "power" else {}
    e = top_eigenvalues(m, F.cross_entropy, (x, y), k=k, method=method, **kw)
    np.testing.assert_allclose(e.values, ev[:k], rtol=1e-4, atol=1e-4 * abs(ev[0]))
    for lam, v in zip(e.values, e.vectors.double()):
        np.testing.assert_allclose((H @ v).numpy(), (lam * v).numpy(), atol=2e-3 * abs(ev[0]))
        assert abs(float(v.norm()) - 1) < 1e-5


def test_trace_exact_and_hutchinson(tiny):
    m, x, y, H, _ = tiny
    tr = float(torch.trace(H))
    ex = hessian_trace(m, F.cross_entropy, (x, y), method="exact")
    assert ex.value == pytest.approx(tr, rel=1e-4) and ex.stderr == 0
    h = hessian_trace(m, F.cross_entropy, (x, y), samples=300, seed=1)
    assert abs(h.value - tr) < 4 * h.stderr and h.samples == 300
    early = hessian_trace(m, F.cross_entropy, (x, y), samples=500, tol=0.05)
    assert early.samples < 500 and early.stderr <= 0.05 * abs(early.value) + 1e-12


def test_sharpness_first_order_and_restores_weights(tiny):
    m, x, y, H, _ = tiny
    before = [p.detach().clone() for p in m.parameters()]
    rho = 1e-3
    s = sharpness(m, F.cross_entropy, (x, y), rho=rho)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    assert all(p.grad is None for p in m.parameters())
    _, g = HVP(m, F.cross_entropy, (x, y)).loss_and_grad()
    gh = (g / g.norm()).double()
    assert s.value == pytest.approx(rho * float(g.norm()) + 0.5 * rho ** 2 * float(gh @ H @ gh), rel=1e-3)
    # direct check of the perturbed loss
    mm = copy.deepcopy(m)
    with torch.no_grad():
        i = 0
        for p in mm.parameters(): p.add_((rho * g / g.norm())[i:i + p.numel()].view_as(p)); i += p.numel()
    assert s.worst_loss == pytest.approx(float(F.cross_entropy(mm(x), y)), rel=1e-5)
    many = sharpness(m, F.cross_entropy, (x, y), rho=0.2, steps=8)
    assert many.value >= sharpness(m, F.cross_entropy, (x, y), rho=0.2).value - 1e-6


def test_density_recovers_spectrum(tiny):
    m, x, y, H, ev = tiny
    d = density(m, F.cross_entropy, (x, y), steps=H.shape[0])
    np.testing.assert_allclose(np.sort(d.nodes[0]), np.sort(ev), atol=1e-4 * abs(ev[0]))
    g, dens = d.smooth()
    assert np.trapezoid(dens, g) == pytest.approx(1.0, abs=0.02)


def test_global_rng_untouched_and_mode_restored(tiny):
    m, x, y, _, _ = tiny
    m.train()
    s = torch.get_rng_state()
    top_eigenvalues(m, F.cross_entropy, (x, y), k=1); hessian_trace(m, F.cross_entropy, (x, y), samples=5)
    assert torch.equal(s, torch.get_rng_state()) and m.training


def test_batchnorm_model_uses_running_stats(tiny):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
    m[1].running_mean.uniform_(-1, 1); m[1].running_var.uniform_(0.5, 2)
    x, y = tiny[1], tiny[2]
    H = dense_hessian(m, F.cross_entropy, (x, y)).double()
    e = top_eigenvalues(m, F.cross_entropy, (x, y), k=2)
    np.testing.assert_allclose(e.values, torch.linalg.eigvalsh(H).flip(0).numpy()[:2], rtol=1e-4, atol=1e-6)
    assert m.training  # left in training mode, as it was


def test_bad_input(tiny):
    m, x, y, _, _ = tiny
    with pytest.raises(ValueError, match="model:"): top_eigenvalues(nn.ReLU(), F.cross_entropy, (x, y))
    with pytest.raises(ValueError, match="loss_fn:"):
        top_eigenvalues(m, lambda o, t: F.cross_entropy(o, t, reduction="none"), (x, y))
    with pytest.raises(ValueError, match="rho:"): sharpness(m, F.cross_entropy, (x, y), rho=-1)
    with pytest.raises(ValueError, match="k:"): top_eigenvalues(m, F.cross_entropy, (x, y), k=0)
    with pytest.raises(ValueError, match="data:"): hessian_trace(m, F.cross_entropy, x)
    with pytest.raises(ValueError, match="data:"): hessian_trace(m, F.cross_entropy, (x.to("meta"), y.to("meta")))
    with pytest.raises(ValueError, match="v:"): HVP(m, F.cross_entropy, (x, y))(torch.zeros(3))


def test_against_pyhessian(tiny):
    pyhessian = pytest.importorskip("pyhessian")
    m, x, y, H, ev = tiny
    mm = copy.deepcopy(m)
    state = torch.get_rng_state()
    torch.manual_seed(0)
    try:
        hc = pyhessian.hessian(mm, F.cross_entropy, data=(x, y), cuda=False)
        vals, _ = hc.eigenvalues(top_n=2, maxIter=2000, tol=1e-8)
        tr = np.mean(hc.trace(maxIter=300, tol=0.0))
    finally:
        torch.set_rng_state(state)
    ours = top_eigenvalues(m, F.cross_entropy, (x, y), k=2)
    np.testing.assert_allclose(ours.values, vals, rtol=1e-3)
    np.testing.assert_allclose(ours.values, ev[:2], rtol=1e-4)
    exact = hessian_trace(m, F.cross_entropy, (x, y), method="exact").value
    assert tr == pytest.approx(exact, rel=0.15)  # PyHessian's Hutchinson estimate (no standard error given)
