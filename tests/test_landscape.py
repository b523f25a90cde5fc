"""lossviz.landscape: directions, centred grids, equality with a naive per-point loop, restoration, resume, NaN gaps, bad input."""
import copy
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lossviz import data as ldata, models
from lossviz.landscape import (Directions, Evaluator, flatten, grid, hessian_directions, interpolate, iter_surface, levels,
                               line, project, random_directions, surface, trajectory_directions)
from lossviz.store import RunStore


@pytest.fixture(scope="module")
def digits():
    ds = ldata.load("digits")
    return ds.x_train[:200], ds.y_train[:200], ds


def _model(name, ds, seed=0):
    kw = dict(width=4, feature_dim=16) if name == "cnn" else dict(hidden=(32, 32))
    m = models.get(name, data=ds, seed=seed, **kw)
    if name == "cnn":  # non-trivial BatchNorm state
        g = torch.Generator().manual_seed(seed)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
                mod.bias.data.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
    return m


def naive(model, d, xs, ys, x, y, loss_fn=F.cross_entropy):
    "The reference: a deep copy per point, weights set to origin + a d0 + b d1, evaluated in eval mode."
    L, A = np.zeros((len(ys), len(xs))), np.zeros((len(ys), len(xs)))
    for i, b in enumerate(ys):
        for j, a in enumerate(xs):
            m = copy.deepcopy(model).eval()
            w = d.origin + a * d.vectors[0] + b * d.vectors[1]
            k = 0
            with torch.no_grad():
                for p in m.parameters(): p.copy_(w[k:k + p.numel()].view_as(p)); k += p.numel()
                out = m(x)
                L[i, j] = float(loss_fn(out, y)); A[i, j] = float((out.argmax(1) == y).float().mean())
    return L, A


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("strategy,reuse", [("loop", True), ("loop", False), ("vmap", False)])
def test_surface_equals_naive_loop(digits, name, strategy, reuse):
    x, y, ds = digits
    m = _model(name, ds)
    d = random_directions(m, seed=1)
    s = surface(m, F.cross_entropy, (x, y), d, span=0.8, steps=5, strategy=strategy, reuse=reuse, progress=False)
    L, A = naive(m, d, s.x, s.y, x, y)
    np.testing.assert_allclose(s.loss, L, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s.acc, A, atol=1e-9)
    assert s.complete and s.meta["strategy"] == strategy


def test_float64_model_matches_to_1e_10(digits):
    x, y, ds = digits
    m = _model("mlp", ds).double()
    d = random_directions(m, seed=0)
    s = surface(m, F.cross_entropy, (x.double(), y), d, steps=3, progress=False)
    L, _ = naive(m, d, s.x, s.y, x.double(), y)
    np.testing.assert_allclose(s.loss, L, rtol=1e-10)


@pytest.mark.parametrize("bn", ["eval", "batch"])
def test_weights_buffers_and_modes_restored_bit_for_bit(digits, bn):
    x, y, ds = digits
    m = _model("cnn", ds).train()
    m.body[1].eval()  # a mixed mode must come back as it was
    state = {k: v.clone() for k, v in m.state_dict().items()}
    ptrs = [p.data_ptr() for p in m.parameters()]
    modes = [mod.training for mod in m.modules()]
    tracks = [mod.track_running_stats for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)]
    rng = torch.get_rng_state()
    surface(m, F.cross_entropy, (x, y), steps=3, bn=bn, progress=False)
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    assert ptrs == [p.data_ptr() for p in m.parameters()]
    assert modes == [mod.training for mod in m.modules()]
    assert tracks == [mod.track_running_stats for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)]
    assert torch.equal(rng, torch.get_rng_state())  # the directions' own generator; the global one untouched


def test_bn_batch_mode_uses_batch_statistics(digits):
    x, y, ds = digits
    m = _model("cnn", ds)
    s = surface(m, F.cross_entropy, (x, y), steps=3, bn="batch", progress=False)
    mm = copy.deepcopy(m).train()
    for mod in mm.modules():
        if isinstance(mod, nn.BatchNorm2d): mod.track_running_stats = False
    with torch.no_grad(): ref = float(F.cross_entropy(mm(x), y))
    assert s.origin_loss == pytest.approx(ref, rel=1e-6)
    assert s.origin_loss != pytest.approx(surface(m, F.cross_entropy, (x, y), steps=3, progress=False).origin_loss, rel=1e-4)


@pytest.mark.parametrize("norm", ["filter", "layer", "model"])
def test_direction_norms(digits, norm):
    _, _, ds = digits
    m = _model("cnn", ds)
    d = random_directions(m, n=2, norm=norm, seed=3)
    for k in range(2):
        parts = d.split(k)
        for name, p in m.named_parameters():
            dk = parts[name]
            if p.dim() <= 1:
                assert float(dk.abs().max()) == 0, name  # ignore="biasbn"
            elif norm == "filter":
                np.testing.assert_allclose(dk.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1), rtol=1e-5)
            elif norm == "layer":
                assert float(dk.norm()) == pytest.approx(float(p.detach().norm()), rel=1e-5)
        if norm == "model":
            w = torch.cat([p.detach().reshape(-1) for p in m.parameters() if p.dim() > 1])
            assert float(d.vectors[k].norm()) == pytest.approx(float(w.norm()), rel=1e-5)
    both = random_directions(m, norm="filter", ignore=None, seed=3)
    b = both.split(0)["body.1.bias"]
    assert float(b.abs().min()) > 0 and float(b.norm()) == pytest.approx(float(m.body[1].bias.detach().norm()), rel=1e-5)
    # directions take both signs (loss-landscapes' uniform noise gives direction 1 all >= 0)
    assert float(d.vectors[0].min()) < 0 < float(d.vectors[0].max())


def test_grid_centred_with_origin_in_row_order(digits):
    x, y, ds = digits
    m = _model("mlp", ds)
    g = grid(1.5, 7)
    assert g[3] == 0 and np.array_equal(g, -g[::-1]) and g[0] == -1.5
    assert len(grid(1.0, 8)) == 9
    d = random_directions(m, seed=0)
    s = surface(m, F.cross_entropy, (x, y), d, span=(1.0, 0.5), steps=5, progress=False)
    assert s.x[-1] == 1.0 and s.y[-1] == 0.5
    with torch.no_grad(): centre = float(F.cross_entropy(m.eval()(x), y))
    assert s.origin_loss == pytest.approx(centre, rel=1e-6)
    # loss[i, j] is at (x[j], y[i]): check an off-diagonal point directly
    L, _ = naive(m, d, [s.x[4]], [s.y[1]], x, y)
    assert s.loss[1, 4] == pytest.approx(L[0, 0], rel=1e-6)


def test_progressive_coarse_first(digits):
    x, y, ds = digits
    m = _model("mlp", ds)
    seen = []
    parts = list(iter_surface(m, F.cross_entropy, (x, y), steps=41, span=0.5, progress=False, callback=seen.append))
    first = parts[0]
    assert first.fraction_done <= 0.10 and first.done[20, 20] and first.done[0, 0] and first.done[::4, ::4].all()
    assert parts[-1].complete and len(seen) == len(parts)
    assert [p.fraction_done for p in parts] == sorted(p.fraction_done for p in parts)
    lv = levels(41)
    assert sum(map(len, lv)) == 41 * 41 and len(lv[0]) == 121


def test_resume_from_store_after_kill(digits, tmp_path):
    x, y, ds = digits
    m = _model("mlp", ds)
    store = RunStore(tmp_path / "runs.sqlite")
    rid = store.create_run("landscape")
    d = random_directions(m, seed=0)
    calls = {"n": 0}
    def counting(o, t):
        calls["n"] += 1
        return F.cross_entropy(o, t)
    with pytest.raises(KeyboardInterrupt):
        for i, s in enumerate(iter_surface(m, counting, (x, y), d, steps=11, store=store, run_id=rid, save_every=0,
                                           chunk_points=20, progress=False)):
            if i == 2: raise KeyboardInterrupt  # killed after three chunks
    art = store.artifact(rid, "landscape_surface")
    done_before = int(art["done"].sum())
    assert 0 < done_before < 121 and not art.meta["complete"]
    calls["n"] = 0
    s = surface(m, counting, (x, y), d, steps=11, store=store, run_id=rid, save_every=0, progress=False)
    assert calls["n"] == 121 - done_before + 1  # only the missing points were computed (+1: the check at the centre)
    full = surface(m, F.cross_entropy, (x, y), d, steps=11, progress=False)
    np.testing.assert_array_equal(s.loss, full.loss)
    calls["n"] = 0  # a complete one comes back from the store at once
    again = surface(m, counting, (x, y), d, steps=11, store=store, run_id=rid, progress=False)
    assert calls["n"] == 1 and again.complete  # just the check at the centre
    # another computation (other directions) does not pick it up
    calls["n"] = 0
    surface(m, counting, (x, y), random_directions(m, seed=5), steps=11, store=store, run_id=rid, progress=False)
    assert calls["n"] == 121 + 1


def test_non_finite_points_are_gaps(digits):
    x, y, ds = digits
    m = _model("mlp", ds)
    def fragile(o, t):
        if float(o.abs().max()) > 40: raise ValueError("logits: too large")
        return F.cross_entropy(o, t)
    s = surface(m, fragile, (x, y), steps=9, span=30.0, progress=False)
    assert np.isnan(s.loss).any() and np.isfinite(s.loss).any() and np.isfinite(s.origin_loss)
    assert np.array_equal(np.isnan(s.loss), np.isnan(s.acc))
    huge = surface(m, F.cross_entropy, (x, y), steps=5, span=1e38, progress=False)
    assert np.isnan(huge.loss[0, 0]) and np.isfinite(huge.origin_loss)


def test_trajectory_pca_projects_end_to_origin(digits):
    x, y, ds = digits
    m = _model("mlp", ds)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    ckpts = [copy.deepcopy(m.state_dict())]
    for i in range(12):
        opt.zero_grad(); F.cross_entropy(m(x), y).backward(); opt.step()
        ckpts.append(copy.deepcopy(m.state_dict()))
    d = trajectory_directions(ckpts, model=m)
    xy = project(ckpts, d)
    np.testing.assert_allclose(xy[-1], 0, atol=1e-6)
    assert 0 < d.explained_variance.sum() <= 1 + 1e-9 and d.explained_variance[0] >= d.explained_variance[1]
    np.testing.assert_allclose(d.vectors.double() @ d.vectors.double().T, np.eye(2), atol=1e-5)
    assert xy[0, 0] >= 0 and xy[0, 1] >= 0
    # centred PCA equals sklearn's (Li et al.'s plot_trajectory.py)
    from sklearn.decomposition import PCA
    W = torch.stack([flatten(c, [n for n, _ in m.named_parameters()]) for c in ckpts]).double()
    M = (W[:-1] - W[-1]).numpy()
    pca = PCA(n_components=2).fit(M)
    dc = trajectory_directions(ckpts, model=m, center=True)
    np.testing.assert_allclose(np.abs((dc.vectors.double().numpy() * pca.components_).sum(1)), 1, atol=1e-5)
    np.testing.assert_allclose(dc.explained_variance, pca.explained_variance_ratio_, rtol=1e-5)
    # a surface on the PCA plane is centred on the final weights
    s = surface(m, F.cross_entropy, (x, y), d, span=1.0, steps=3, progress=False)
    with torch.no_grad(): assert s.origin_loss == pytest.approx(float(F.cross_entropy(m.eval()(x), y)), rel=1e-6)


def test_hessian_directions(digits):
    x, y, ds = digits
    m = models.get("mlp", data=ds, seed=0, hidden=(8,), activation="tanh").double()  # smooth: no ReLU kinks between grid points
    x = x.double()
    d = hessian_directions(m, F.cross_entropy, (x, y), n=2)
    assert d.kind == "hessian" and d.eigenvalues[0] >= d.eigenvalues[1]
    np.testing.assert_allclose(d.vectors.norm(dim=1), 1, rtol=1e-5)
    l = line(m, F.cross_entropy, (x, y), d.vectors[0], span=0.05, steps=11, progress=False)
    # the curvature along the top eigenvector matches its eigenvalue (finite differences at the centre)
    h = l.x[1] - l.x[0]
    fd = (l.loss[6] - 2 * l.loss[5] + l.loss[4]) / h ** 2
    assert fd == pytest.approx(d.eigenvalues[0], rel=0.02)


def test_line_and_interpolate(digits):
    x, y, ds = digits
    a, b = _model("cnn", ds, seed=0), _model("cnn", ds, seed=1)
    l = line(a, F.cross_entropy, (x, y), steps=9, progress=False)
    assert l.x[4] == 0 and l.complete and len(l.loss) == 9
    it = interpolate(a, b, F.cross_entropy, (x, y), steps=41)
    with torch.no_grad():
        la, lb = float(F.cross_entropy(a.eval()(x), y)), float(F.cross_entropy(b.eval()(x), y))
    i0, i1 = list(it.x).index(0.0), list(it.x).index(1.0)
    assert it.loss[i0] == pytest.approx(la, rel=1e-6) and it.loss[i1] == pytest.approx(lb, rel=1e-5)
    assert torch.equal(a.body[1].running_mean, _model("cnn", ds, seed=0).body[1].running_mean)  # buffers restored


def test_bad_input(digits):
    x, y, ds = digits
    m = _model("mlp", ds)
    other = models.get("mlp", data=ds, hidden=(8,))
    with pytest.raises(ValueError, match="directions:"):
        surface(m, F.cross_entropy, (x, y), random_directions(other), progress=False)
    with pytest.raises(ValueError, match="directions:"):
        surface(m, F.cross_entropy, (x, y), torch.zeros(2, 7), progress=False)
    with pytest.raises(ValueError, match="model:"): surface(nn.ReLU(), F.cross_entropy, (x, y))
    with pytest.raises(ValueError, match="model:"): random_directions(nn.Sequential())
    with pytest.raises(ValueError, match="loss_fn:"):
        surface(m, lambda o, t: F.cross_entropy(o, t, reduction="none"), (x, y), steps=3, progress=False)
    with pytest.raises(ValueError, match="span:"): surface(m, F.cross_entropy, (x, y), span=0)
    with pytest.raises(ValueError, match="span:"): surface(m, F.cross_entropy, (x, y), span=-1.0)
    with pytest.raises(ValueError, match="steps:"): surface(m, F.cross_entropy, (x, y), steps=1)
    with pytest.raises(ValueError, match="data:"): surface(m, F.cross_entropy, (x.to("meta"), y.to("meta")))
    with pytest.raises(ValueError, match="norm:"): random_directions(m, norm="weird")
    with pytest.raises(ValueError, match="checkpoints:"): trajectory_directions([m.state_dict()], model=m)
    with pytest.raises(ValueError, match="model_b:"): interpolate(m, other, F.cross_entropy, (x, y))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_cuda_vmap_equals_cpu_loop(digits, name):
    x, y, ds = digits
    m = _model(name, ds)
    d = random_directions(m, seed=1)
    cpu = surface(m, F.cross_entropy, (x, y), d, steps=7, progress=False)
    mc = copy.deepcopy(m).cuda()
    gpu = surface(mc, F.cross_entropy, (x.cuda(), y.cuda()), d.to("cuda"), steps=7, progress=False)
    assert gpu.meta["strategy"] == "vmap"
    np.testing.assert_allclose(gpu.loss, cpu.loss, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(gpu.acc, cpu.acc, atol=1e-2)
