"""lossviz.collapse: NC1–NC4 and CDNV against an independent float64 numpy reference, the exact simplex ETF,
known magnitudes of random features, streaming/merging, geometry, degenerate and bad input."""
import math, warnings
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from lossviz.collapse import metrics, ClassStats, geometry, simplex_etf, CollapseMetrics

KEYS = ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_equiangular_max", "nc3", "nc4", "cdnv", "w_equinorm", "w_equiangular")


def reference(h, y, W=None, b=None):
    "Straight from the definitions, numpy float64, one class at a time (independent of lossviz)."
    h = np.asarray(h, dtype=np.float64); y = np.asarray(y)
    classes = np.unique(y); K = len(classes); N = len(y)
    mu = np.stack([h[y == c].mean(0) for c in classes])
    mG = mu.mean(0); M = mu - mG
    pos = {c: k for k, c in enumerate(classes)}
    idx = np.array([pos[c] for c in y])
    R = h - mu[idx]
    Sw = R.T @ R / N
    Sb = M.T @ M / K
    out = {"nc1": np.trace(Sw @ np.linalg.pinv(Sb, rcond=1e-10, hermitian=True)) / K}
    norms = np.linalg.norm(M, axis=1)
    out["nc2_equinorm"] = norms.std() / norms.mean()
    cos = (M @ M.T) / np.outer(norms, norms)
    dev = np.abs(cos + 1 / (K - 1))[~np.eye(K, dtype=bool)]
    out["nc2_equiangular"], out["nc2_equiangular_max"] = dev.mean(), dev.max()
    var = np.array([((h[y == c] - mu[k]) ** 2).sum(1).mean() for k, c in enumerate(classes)])
    out["cdnv"] = np.mean([(var[i] + var[j]) / (2 * ((mu[i] - mu[j]) ** 2).sum()) for i in range(K) for j in range(i + 1, K)])
    if W is not None:
        W = np.asarray(W, dtype=np.float64)
        Wp = W[classes]
        out["nc3"] = ((Wp / np.linalg.norm(Wp) - M / np.linalg.norm(M)) ** 2).sum()
        logits = h @ W.T + (0 if b is None else np.asarray(b, dtype=np.float64))
        ncc = classes[cdist(h, mu).argmin(1)]
        out["nc4"] = float(np.mean(logits.argmax(1) != ncc))
        wn = np.linalg.norm(Wp, axis=1)
        out["w_equinorm"] = wn.std() / wn.mean()
        wc = (Wp @ Wp.T) / np.outer(wn, wn)
        out["w_equiangular"] = np.abs(wc + 1 / (K - 1))[~np.eye(K, dtype=bool)].mean()
    return out


def blobs(C, D, n, sep=3.0, noise=1.0, offset=0.0, seed=0, imbalance=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    counts = np.maximum(2, np.round(n * imbalance ** (-np.arange(C) / max(C - 1, 1)))).astype(int)
    y = torch.repeat_interleave(torch.arange(C), torch.as_tensor(counts))
    y = y[torch.randperm(len(y), generator=g)]
    centres = sep * torch.randn(C, D, generator=g, dtype=torch.float64)
    h = centres[y] + noise * torch.randn(len(y), D, generator=g, dtype=torch.float64) + offset
    W = centres + 0.7 * torch.randn(C, D, generator=g, dtype=torch.float64)
    b = torch.randn(C, generator=g, dtype=torch.float64)
    return h.to(dtype), y, W.to(dtype), b.to(dtype)


def close(m, ref, rtol, keys=KEYS):
    for k in keys:
        if k in ref:
            got, want = getattr(m, k), ref[k]
            assert got == pytest.approx(want, rel=rtol, abs=1e-12), (k, got, want)


# --- the collapsed geometry ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("C", [2, 3, 4, 7, 10, 25])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exact_simplex_etf_is_fully_collapsed(C, dtype):
    D, n = C + 3, 6
    E = simplex_etf(C, D)
    y = torch.arange(C).repeat(n)
    m = metrics((E[y] + 0.25).to(dtype), y, weight=E.to(dtype), bias=torch.zeros(C, dtype=dtype))
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    for k in ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_equiangular_max", "nc3", "nc4", "cdnv", "w_equinorm", "w_equiangular"):
        assert abs(getattr(m, k)) < tol, (k, getattr(m, k))
    assert m.rank == C - 1 and m.num_classes == C and m.num_samples == C * n


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotated_scaled_etf_is_collapsed_too(seed):
    C, D, n = 8, 40, 5
    E = simplex_etf(C, D, scale=17.0, seed=seed)            # random rotation into R^40, norm 17
    y = torch.arange(C).repeat_interleave(n)
    shift = torch.randn(D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 5
    for W in (E, 0.01 * E):                                 # any positive multiple of the means is self-dual
        m = metrics(E[y] + shift, y, weight=W, bias=-W @ shift)   # the bias cancels the global mean (as in a collapsed net)
        for k in ("nc1", "nc2_equinorm", "nc2_equiangular", "nc3", "nc4", "cdnv"):
            assert abs(getattr(m, k)) < 1e-10, (k, getattr(m, k))


def test_etf_with_imbalanced_counts_still_scores_nc2_zero():
    "μ_G is the mean of the class means, so an exact ETF is an ETF whatever the class sizes."
    C, D = 5, 9
    E = simplex_etf(C, D, seed=4)
    y = torch.repeat_interleave(torch.arange(C), torch.tensor([50, 20, 9, 3, 1]))
    m = metrics(E[y], y, weight=E)
    assert m.nc2_equinorm < 1e-12 and m.nc2_equiangular < 1e-12 and m.nc3 < 1e-12 and m.nc1 < 1e-12 and m.nc4 == 0


def test_collapse_with_small_noise_is_small_and_ordered():
    C, D = 6, 20
    E = simplex_etf(C, D, scale=5.0, seed=1)
    y = torch.arange(C).repeat(50)
    g = torch.Generator().manual_seed(0)
    vals = [metrics(E[y] + s * torch.randn(len(y), D, generator=g, dtype=torch.float64), y, weight=E).nc1 for s in (1.0, 0.1, 0.01)]
    assert vals[0] > vals[1] > vals[2] > 0
    assert vals[1] / vals[2] == pytest.approx(100, rel=0.3)            # NC1 scales with the noise variance


# --- random features: known magnitudes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("C,D,n", [(5, 128, 100), (10, 256, 200), (20, 512, 50)])
def test_random_features_have_their_known_magnitudes(C, D, n):
    vals = {k: [] for k in ("nc1", "cdnv", "nc3", "nc4", "nc2_equinorm", "nc2_equiangular")}
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        h = torch.randn(C * n, D, generator=g)
        y = torch.arange(C).repeat_interleave(n)
        m = metrics(h, y, weight=torch.randn(C, D, generator=g))
        for k in vals: vals[k].append(getattr(m, k))
    v = {k: np.mean(x) for k, x in vals.items()}
    # centred means: a (C-1)-dim Wishart with D degrees of freedom and scale 1/n  =>  E tr(W^-1) = n (C-1) / (D - C)
    assert v["nc1"] == pytest.approx((1 - 1 / n) * n * (C - 1) / (D - C), rel=0.1)
    assert v["cdnv"] == pytest.approx((1 - 1 / n) * n / 2, rel=0.05)      # Var_c ≈ D(1-1/n), ‖μ_c-μ_c'‖² ≈ 2D/n
    assert v["nc3"] == pytest.approx(2.0, abs=0.15)                        # two unrelated unit-norm matrices
    assert v["nc4"] == pytest.approx(1 - 1 / C, abs=0.05)                  # chance agreement
    assert v["nc2_equinorm"] == pytest.approx(1 / math.sqrt(2 * D), rel=0.5)          # chi with D dof
    assert v["nc2_equiangular"] == pytest.approx(math.sqrt(2 / math.pi / D), rel=0.3)  # cos fluctuates ~ 1/sqrt(D)


# --- against the independent reference -----------------------------------------------------------------------------------

@pytest.mark.parametrize("C", [2, 3, 5, 10, 31, 64, 100])
def test_matches_float64_numpy_reference(C):
    h, y, W, b = blobs(C, 128, 20, seed=C, offset=4.0, imbalance=3.0)
    ref = reference(h, y, W, b)
    close(metrics(h, y, W, b), ref, 1e-6)
    close(metrics(h, y, W, b, chunk=97), ref, 1e-6)                      # blocks change nothing
    close(metrics(h, y, W, logits=h @ W.T + b), ref, 1e-6)               # precomputed logits
    close(metrics(h, y), ref, 1e-6, keys=("nc1", "nc2_equinorm", "nc2_equiangular", "cdnv"))


@pytest.mark.parametrize("C", [2, 10, 100])
def test_float32_features_match_the_reference_on_the_same_values(C):
    h, y, W, b = blobs(C, 128, 20, seed=C + 1, offset=50.0, dtype=torch.float32)   # a large offset: the cancellation case
    ref = reference(h.double(), y, W.double(), b.double())
    close(metrics(h, y, W, b), ref, 1e-6)


def test_float32_precision_holds_near_collapse():
    "Within-class spread 1e-4 of the between-class spread, features offset by 100: NC1 ~ 1e-8, still to 1e-4 relative."
    h, y, W, b = blobs(10, 64, 50, sep=1.0, noise=1e-4, offset=100.0, seed=3, dtype=torch.float64)
    h32 = h.float()
    ref = reference(h32.double(), y)
    m = metrics(h32, y)
    assert 1e-10 < ref["nc1"] < 1e-6
    assert m.nc1 == pytest.approx(ref["nc1"], rel=1e-4)
    assert m.cdnv == pytest.approx(ref["cdnv"], rel=1e-4)
    assert ClassStats(10, 64).update(h32, y).metrics().nc1 == pytest.approx(ref["nc1"], rel=1e-4)


def test_nc4_counts_exact_disagreements():
    E = simplex_etf(4, 4, scale=3.0)
    y = torch.arange(4).repeat(10)
    h = E[y]
    assert metrics(h, y, weight=E).nc4 == 0
    W = E[[1, 0, 2, 3]]                                       # classes 0 and 1 swapped in the classifier
    assert metrics(h, y, weight=W).nc4 == pytest.approx(0.5)
    bias = torch.tensor([100.0, 0, 0, 0], dtype=torch.float64)   # class 0 always wins: 3/4 disagree
    assert metrics(h, y, weight=E, bias=bias).nc4 == pytest.approx(0.75)


def test_classifier_ties_go_to_the_first_class_as_argmax():
    "Duplicate classifier rows tie exactly: the lower class index wins (argmax), certified or not, as in the reference."
    h, y, W, b = blobs(6, 32, 40, seed=13, noise=0.3, dtype=torch.float32)
    W, b = W.clone(), b.clone()
    W[3], b[3] = W[1], b[1]                                   # class 3's row = class 1's: class 3 never wins
    ref = reference(h.double(), y, W.double(), b.double())
    assert ref["nc4"] > 0.1                                   # the samples of class 3 disagree
    close(metrics(h, y, W, b), ref, 1e-6, keys=("nc4",))
    close(metrics(h, y, W, logits=h @ W.T + b), ref, 1e-6, keys=("nc4",))


@pytest.mark.parametrize("own", [True, False])
def test_certified_threaded_and_plain_paths_agree(own, monkeypatch):
    "Tight classes (NC4 decisions certified by the margin bounds) plus far-out samples (computed): every code path, same values."
    import lossviz.collapse as lc
    h, y, W, b = blobs(12, 64, 300, sep=3.0, noise=0.5, offset=5.0, seed=14, imbalance=3.0, dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    far = torch.randperm(len(y), generator=g)[:len(y) // 20]
    h[far] += 6 * torch.randn(len(far), h.shape[1], generator=g)       # 5% outliers: near other classes or nowhere
    ref = reference(h.double(), y, W.double(), b.double())
    kw = dict(weight=W, bias=b) if own else dict(weight=W, logits=h @ W.T + b)
    got = {}
    for name, cert, threads, onednn, chunk in [("certified", True, 3, True, 256), ("plain", False, 3, True, 256),
                                               ("one thread", True, 1, True, None), ("mkl", True, 2, False, 97)]:
        monkeypatch.setattr(lc, "_CERTIFY", cert); monkeypatch.setattr(lc, "_THREADS", threads); monkeypatch.setattr(lc, "_ONEDNN", onednn)
        n0 = torch.get_num_threads()
        got[name] = metrics(h, y, chunk=chunk, **kw)
        assert torch.get_num_threads() == n0                    # the caller's setting is restored
        close(got[name], ref, 1e-6, keys=("nc1", "nc4", "cdnv", "nc2_equinorm", "nc3"))
    assert 0 < ref["nc4"] < 0.2
    assert len({m.nc4 for m in got.values()}) == 1              # NC4 counts are exact on every path


# --- streaming ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [7, 33, 500, 10_000])
def test_classstats_equals_one_call(batch):
    h, y, W, b = blobs(12, 48, 40, seed=5, offset=3.0, imbalance=4.0)
    st = ClassStats(12, 48)
    for i in range(0, len(y), batch): st.update(h[i:i + batch], y[i:i + batch])
    for i in range(0, len(y), batch): st.update_nc4(h[i:i + batch], W, b)
    close(st.metrics(W), reference(h, y, W, b), 1e-9)


def test_merge_in_any_order_and_empty_parts():
    h, y, W, b = blobs(7, 24, 30, seed=6, offset=10.0)
    whole = ClassStats(7, 24).update(h, y)
    parts = [ClassStats(7, 24).update(h[i:i + 50], y[i:i + 50]) for i in range(0, len(y), 50)]
    empty = ClassStats(7, 24).update(h[:0], y[:0])
    acc = ClassStats(7, 24)
    for p in [empty] + parts[::-1]: acc.merge(p)
    np.testing.assert_allclose(acc.scatter, whole.scatter, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(acc.mean, whole.mean, rtol=1e-12, atol=1e-12)
    close(acc.metrics(W), reference(h, y, W), 1e-9, keys=("nc1", "nc2_equinorm", "nc2_equiangular", "nc3", "cdnv"))


def test_update_after_all_reduce_and_stale_nc4():
    h, y, W, b = blobs(4, 8, 20, seed=7)
    st = ClassStats(4, 8).update(h, y).update_nc4(h, W, b)
    assert not math.isnan(st.metrics(W).nc4)
    st.update(h[:5], y[:5])
    assert math.isnan(st.metrics(W).nc4)                      # means moved: NC4 needs a new pass
    st.all_reduce()                                           # single process: a no-op that closes the statistics
    with pytest.raises(ValueError, match="update: these statistics were all-reduced already"):
        st.update(h, y)
    st.update_nc4(h, W, b)
    assert not math.isnan(st.metrics().nc4)


def test_classstats_memory_is_c_d_plus_d_squared():
    st = ClassStats(100, 64)
    n = sum(t.numel() for t in (st.count, st.mean, st.sq, st.scatter))
    assert n == 100 + 100 * 64 + 100 + 64 * 64


def test_classstats_bad_input():
    st = ClassStats(3, 4)
    with pytest.raises(ValueError, match="features: expected 4 columns"): st.update(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 2\]"): st.update(torch.randn(5, 4), torch.full((5,), 3))
    with pytest.raises(ValueError, match="features: expected finite values"): st.update(torch.full((2, 4), float("nan")), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2 classes"): st.metrics()
    st.update(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2]))
    with pytest.raises(ValueError, match=r"weight: expected shape \[3, 4\]"): st.metrics(torch.randn(2, 4))
    with pytest.raises(ValueError, match="weight: expected the classifier's weight"): st.update_nc4(torch.randn(6, 4))
    with pytest.raises(ValueError, match=r"logits: expected 3 columns"): st.update_nc4(torch.randn(6, 4), logits=torch.randn(6, 2))
    with pytest.raises(ValueError, match="num_classes: expected a value"): ClassStats(0, 4)
    with pytest.raises(TypeError, match="other: expected a ClassStats"): st.merge(3)


# --- degenerate and bad input ------------------------------------------------------------------------------------------------

def test_single_class_and_empty_input_raise():
    with pytest.raises(ValueError, match="labels: expected samples from at least 2 classes, got 1"):
        metrics(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="got 0"):
        metrics(torch.randn(0, 3), torch.zeros(0, dtype=torch.long), num_classes=3)


def test_empty_classes_are_left_out():
    h, y, W, b = blobs(6, 16, 15, seed=8)
    keep = (y != 2) & (y != 4)
    m = metrics(h[keep], y[keep], W, b)
    assert m.num_classes == 4 and m.rank == 3
    ref = reference(h[keep], y[keep], W, b)                   # the reference takes W rows of present classes; argmax over all rows
    close(m, ref, 1e-6)


def test_dimension_below_c_minus_1_warns_and_documents_the_floor():
    h, y, W, b = blobs(10, 4, 30, seed=9)
    with pytest.warns(UserWarning, match=r"dimension 4 < C-1 = 9.*cannot form a simplex ETF"):
        m = metrics(h, y, W, b)
    assert m.rank == 4
    close(m, reference(h, y, W, b), 1e-6)                      # still the defined values (pinv in the rank-4 span)
    assert m.nc2_equiangular > 0.05


def test_coincident_means():
    h = torch.tensor([[2., 0], [0, 0], [2, 0], [0, 0]]); y = torch.tensor([0, 0, 1, 1])
    m = metrics(h, y)
    assert m.nc1 == math.inf and m.rank == 0 and math.isnan(m.nc2_equinorm) and m.cdnv == math.inf


@pytest.mark.parametrize("call,match", [
    (lambda h, y: metrics(h[0], y), "features: expected a 2-D tensor"),
    (lambda h, y: metrics(h.numpy(), y), "features: expected a torch.Tensor"),
    (lambda h, y: metrics(h.int(), y), "features: expected a floating dtype"),
    (lambda h, y: metrics(h, y.float()), "labels: expected an integer dtype"),
    (lambda h, y: metrics(h, y[:-1]), "labels: expected 12 labels"),
    (lambda h, y: metrics(h, y + 1, num_classes=3), r"labels: expected values in \[0, 2\]"),
    (lambda h, y: metrics(h, y - 1), "labels: expected values in"),
    (lambda h, y: metrics(h.masked_fill(h == h[3, 2], float("nan")), y), "features: expected finite values"),
    (lambda h, y: metrics(h.masked_fill(h == h[3, 2], float("inf")), y), "features: expected finite values"),
    (lambda h, y: metrics(h, y, weight=torch.randn(3, 4)), r"weight: expected shape \[C, 5\]"),
    (lambda h, y: metrics(h, y, weight=torch.randn(3, 5), num_classes=4), "weight: expected 4 rows"),
    (lambda h, y: metrics(h, y, weight=torch.full((3, 5), float("nan"))), "weight: expected finite values"),
    (lambda h, y: metrics(h, y, weight=torch.randn(3, 5), bias=torch.randn(4)), r"bias: expected shape \[3\]"),
    (lambda h, y: metrics(h, y, bias=torch.randn(3)), "bias: given without weight"),
    (lambda h, y: metrics(h, y, logits=torch.randn(11, 3)), "logits: expected 12 rows"),
    (lambda h, y: metrics(h, y, weight=torch.randn(3, 5), logits=torch.randn(12, 4)), "logits: expected 3 columns"),
    (lambda h, y: metrics(h, y, rtol=2.0), "rtol: expected a value in"),
    (lambda h, y: metrics(h, y, chunk=0), "chunk: expected a value in"),
    (lambda h, y: metrics(h, y, num_classes=0), "num_classes: expected a value in"),
    (lambda h, y: geometry(torch.randn(3, 4), dims=4), "dims: expected one of 2, 3"),
    (lambda h, y: geometry(torch.randn(3, 4), projection="tsne"), "projection: expected one of"),
    (lambda h, y: geometry(torch.randn(3, 4), counts=torch.tensor([1, 0, 0])), "counts: expected at least 2 classes"),
    (lambda h, y: geometry(torch.randn(3, 4), weight=torch.randn(3, 5)), r"weight: expected shape \[3, 4\]"),
])
def test_bad_input_names_the_argument(call, match):
    h = torch.randn(12, 5); y = torch.arange(3).repeat(4)
    with pytest.raises((ValueError, TypeError), match=match):
        call(h, y)


def test_half_precision_and_grad_features():
    h, y, W, b = blobs(5, 16, 20, seed=10, dtype=torch.float32)
    ref = metrics(h.bfloat16().float(), y, W, b)
    m = metrics(h.bfloat16(), y, W.bfloat16(), b.bfloat16())
    assert m.nc1 == pytest.approx(ref.nc1, rel=1e-3)
    hg = h.clone().requires_grad_()
    assert metrics(hg, y).nc1 == pytest.approx(metrics(h, y).nc1)


# --- geometry --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("C", [2, 3, 4, 5, 10])
@pytest.mark.parametrize("dims", [2, 3])
def test_geometry_of_an_etf_is_the_reference(C, dims):
    E = simplex_etf(C, C + 2, scale=4.0, seed=C)
    geo = geometry(E + 3.0, weight=2 * E, dims=dims)
    np.testing.assert_allclose(geo.means, geo.etf, atol=1e-9)
    np.testing.assert_allclose(geo.weights, geo.means, atol=1e-9)
    np.testing.assert_allclose(geo.norms, 4.0); np.testing.assert_allclose(geo.weight_norms, 8.0)
    off = ~np.eye(C, dtype=bool)
    np.testing.assert_allclose(geo.cos[off], -1 / (C - 1), atol=1e-12)
    assert geo.means.shape == (C, dims)
    want = min(dims, C - 1) / (C - 1) if C > 3 or dims == 2 else 1.0
    assert geo.explained == pytest.approx(min(want, 1.0))


def test_geometry_pca_and_low_dimension_and_counts():
    h, y, W, b = blobs(6, 3, 20, seed=11)               # D=3 < C-1: Procrustes on a 3-D set of means still works
    st = ClassStats(6, 3).update(h, y)
    g = st.geometry(W, projection="pca")
    assert g.explained == pytest.approx(2 / 3, abs=0.34) and g.means.shape == (6, 2)
    g3 = st.geometry(W, dims=3, projection="pca")
    assert g3.explained == pytest.approx(1.0)
    counts = torch.tensor([5, 0, 5, 5, 0, 5])
    g = geometry(torch.randn(6, 8), counts=counts)
    np.testing.assert_array_equal(g.classes, [0, 2, 3, 5]); np.testing.assert_array_equal(g.counts, [5, 5, 5, 5])
    assert g.target_cos == pytest.approx(-1 / 3)


def test_minority_collapse_is_visible_in_the_norms():
    "Imbalanced blobs from lossviz.data: minority classes' centred means are measured, counts carried along."
    from lossviz.data import load
    ds = load("blobs", classes=5, imbalance=20.0)
    h, y = torch.as_tensor(ds.x_train).float(), torch.as_tensor(ds.y_train).long()
    g = ClassStats(5, h.shape[1]).update(h, y).geometry()
    assert g.counts[0] > 5 * g.counts[-1]
    assert np.all(np.isfinite(g.means)) and np.all(np.isfinite(g.cos))


# --- GPU ----------------------------------------------------------------------------------------------------------------------

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    h, y, W, b = blobs(20, 64, 30, seed=12, offset=5.0, dtype=torch.float32)
    cpu = metrics(h, y, W, b)
    gpu = metrics(h.cuda(), y.cuda(), W.cuda(), b.cuda())
    close(gpu, {k: getattr(cpu, k) for k in KEYS}, 1e-5)
    st = ClassStats(20, 64, device="cuda").update(h.cuda(), y.cuda()).update_nc4(h.cuda(), W.cuda(), b.cuda())
    close(st.metrics(W.cuda()), {k: getattr(cpu, k) for k in KEYS}, 1e-5)
    with pytest.raises(ValueError, match="labels: expected a tensor on features' device"):
        metrics(h.cuda(), y)
