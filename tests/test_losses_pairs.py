"""Pair, proxy and feature losses: hand-written per-anchor loops, gradcheck, vmap-safety, degenerate batches, documented
conventions and bad input. (The cross-checks against pytorch-metric-learning are in test_losses_pairs_pml.py, which skips
as a whole when PML is not installed; nothing here needs it.)"""
import math
import pytest
import torch
import torch.nn.functional as F
from lossviz import losses
from lossviz.losses import pairs as P
from lossviz.losses.registry import cosine_similarity_matrix as csm

PAIR = losses.names("pair")


def batch(seed, n=12, d=5, classes=4, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.randint(0, classes, (n,), generator=g)
    return e, y


# ---------------------------------------------------------------- reference loops (independent of lossviz's code)

def sets(y, a):
    n = len(y)
    return [k for k in range(n) if k != a and y[k] == y[a]], [k for k in range(n) if y[k] != y[a]]


def ref_contrastive(S, y, pm, nm, dist, red):
    z = [[math.sqrt(max(2 - 2 * s, 0)) for s in r] for r in S] if dist == "euclidean" else S
    lp, ln = [], []
    for a in range(len(y)):
        Pa, Na = sets(y, a)
        lp += [max(z[a][p] - pm, 0) if dist == "euclidean" else max(pm - z[a][p], 0) for p in Pa]
        ln += [max(nm - z[a][k], 0) if dist == "euclidean" else max(z[a][k] - nm, 0) for k in Na]
    m = (lambda v: sum(x for x in v if x > 0) / max(1, sum(1 for x in v if x > 0))) if red == "nonzero" else (lambda v: sum(v) / max(1, len(v)))
    return m(lp) + m(ln)


def ref_triplet(S, y, m, mining, dist, red):
    z = [[-math.sqrt(max(2 - 2 * s, 0)) for s in r] for r in S] if dist == "euclidean" else S
    ls = []
    for a in range(len(y)):
        Pa, Na = sets(y, a)
        if mining == "batch_hard":
            if Pa and Na: ls.append(max(max(z[a][k] for k in Na) - min(z[a][p] for p in Pa) + m, 0))
            continue
        for p in Pa:
            for k in Na:
                d = z[a][p] - z[a][k]
                if mining == "semihard" and not (0 < d <= m): continue
                if mining == "hard" and not (d <= 0): continue
                ls.append(max(z[a][k] - z[a][p] + m, 0))
    if red == "nonzero": ls = [v for v in ls if v > 0]
    return sum(ls) / max(len(ls), 1)


def ref_lifted(S, y, pm, nm, dist):
    z = [[-math.sqrt(max(2 - 2 * s, 0)) for s in r] for r in S] if dist == "euclidean" else S
    cn, cp = (nm, pm) if dist == "cosine" else (-nm, -pm)
    tot, cnt = 0.0, 0
    for i in range(len(y)):
        for j in sets(y, i)[0]:
            negs = [math.exp(z[i][k] - cn) for k in sets(y, i)[1]] + [math.exp(z[j][k] - cn) for k in sets(y, j)[1]]
            J = math.log(sum(negs)) + cp - z[i][j] if negs else -math.inf
            tot += max(J, 0) ** 2 / 2; cnt += 1
    return tot / max(cnt, 1)


def ref_binomial(S, y, a, b, lam):
    lp, ln = [], []
    for i in range(len(y)):
        Pa, Na = sets(y, i)
        lp += [math.log1p(math.exp(-a * (S[i][k] - lam))) for k in Pa]
        ln += [math.log1p(math.exp(b * (S[i][k] - lam))) for k in Na]
    return (sum(lp) / len(lp) if lp else 0) + (sum(ln) / len(ln) if ln else 0)


def ref_ms(S, y, a, b, lam, eps, mining):
    tot = 0.0
    for i in range(len(y)):
        Pa, Na = sets(y, i)
        ps, ns = [S[i][k] for k in Pa], [S[i][k] for k in Na]
        if mining:
            ps2 = [s for s in ps if ns and s - eps < max(ns)]
            ns = [s for s in ns if ps and s + eps > min(ps)]
            ps = ps2
        tot += math.log1p(sum(math.exp(-a * (s - lam)) for s in ps)) / a + math.log1p(sum(math.exp(b * (s - lam)) for s in ns)) / b
    return tot / len(y)


def ref_circle(S, y, m, g, self_paced):
    ls = []
    for i in range(len(y)):
        Pa, Na = sets(y, i)
        if not Pa or not Na: continue
        if self_paced:
            sn = sum(math.exp(g * max(S[i][k] + m, 0) * (S[i][k] - m)) for k in Na)
            sp = sum(math.exp(-g * max(1 + m - S[i][k], 0) * (S[i][k] - 1 + m)) for k in Pa)
        else:
            sn = sum(math.exp(g * (S[i][k] + m)) for k in Na); sp = sum(math.exp(-g * S[i][k]) for k in Pa)
        ls.append(math.log1p(sn * sp))
    return sum(ls) / max(len(ls), 1)


def ref_nce(S, y, t, which):
    n, terms = len(y), []
    for a in range(n):
        Pa, Na = sets(y, a)
        den = sum(math.exp(S[a][k] / t) for k in range(n) if k != a)
        per = []
        for p in Pa:
            num = math.exp(S[a][p] / t)
            if which == "ntxent": per.append(-math.log(num / (num + sum(math.exp(S[a][k] / t) for k in Na))))
            else: per.append(-math.log(num / den))
        if which == "supcon":
            if per: terms.append(sum(per) / len(per))
        else: terms += per
    return sum(terms) / max(len(terms), 1)


def ref_mw(S, y, t):
    v = [math.log1p(math.exp((S[a][k] - S[a][p]) / t)) for a in range(len(y)) for p in sets(y, a)[0] for k in sets(y, a)[1]]
    return sum(v) / max(len(v), 1)


def ref_tcm(S, y, lp, lm, mp, mm):
    P_, N_ = [], []
    for a in range(len(y)):
        Pa, Na = sets(y, a)
        P_ += [mp - S[a][k] for k in Pa if S[a][k] <= mp]; N_ += [S[a][k] - mm for k in Na if S[a][k] >= mm]
    return lp * (sum(P_) / len(P_) if P_ else 0) + lm * (sum(N_) / len(N_) if N_ else 0)


CASES = [
    ("contrastive", {}, lambda S, y: ref_contrastive(S, y, 1.0, 0.5, "cosine", "nonzero")),
    ("contrastive", dict(pos_margin=0.0, neg_margin=1.0, distance="euclidean"), lambda S, y: ref_contrastive(S, y, 0.0, 1.0, "euclidean", "nonzero")),
    ("contrastive", dict(reduction="mean", neg_margin=0.1), lambda S, y: ref_contrastive(S, y, 1.0, 0.1, "cosine", "mean")),
    *[("triplet", dict(margin=0.3, mining=m, distance=d, reduction=r), (lambda m, d, r: lambda S, y: ref_triplet(S, y, 0.3, m, d, r))(m, d, r))
      for m in ("all", "semihard", "hard", "batch_hard") for d in ("cosine", "euclidean") for r in ("nonzero", "mean")],
    ("triplet", dict(margin=0.0, mining="hard"), lambda S, y: ref_triplet(S, y, 0.0, "hard", "cosine", "nonzero")),
    ("lifted_structure", {}, lambda S, y: ref_lifted(S, y, 1.0, 0.5, "cosine")),
    ("lifted_structure", dict(pos_margin=0.0, neg_margin=1.0, distance="euclidean"), lambda S, y: ref_lifted(S, y, 0.0, 1.0, "euclidean")),
    ("binomial_deviance", {}, lambda S, y: ref_binomial(S, y, 2.0, 50.0, 0.5)),
    ("multi_similarity", {}, lambda S, y: ref_ms(S, y, 2.0, 50.0, 0.5, 0.1, True)),
    ("multi_similarity", dict(mining=False, base=1.0, beta=20.0), lambda S, y: ref_ms(S, y, 2.0, 20.0, 1.0, 0.1, False)),
    ("multi_similarity", dict(epsilon=0.5), lambda S, y: ref_ms(S, y, 2.0, 50.0, 0.5, 0.5, True)),
    ("circle", dict(gamma=10.0), lambda S, y: ref_circle(S, y, 0.4, 10.0, True)),
    ("circle", dict(gamma=10.0, m=0.25, self_paced=False), lambda S, y: ref_circle(S, y, 0.25, 10.0, False)),
    ("infonce", dict(temperature=0.3), lambda S, y: ref_nce(S, y, 0.3, "infonce")),
    ("ntxent", dict(temperature=0.3), lambda S, y: ref_nce(S, y, 0.3, "ntxent")),
    ("supcon", dict(temperature=0.3), lambda S, y: ref_nce(S, y, 0.3, "supcon")),
    ("mw_auc", dict(temperature=0.5), lambda S, y: ref_mw(S, y, 0.5)),
    ("tcm", {}, lambda S, y: ref_tcm(S, y, 1.0, 1.0, 0.9, 0.5)),
    ("tcm", dict(margin_plus=0.2, margin_minus=-0.2, lambda_minus=2.0), lambda S, y: ref_tcm(S, y, 1.0, 2.0, 0.2, -0.2)),
]


def test_every_pair_loss_has_a_reference_case():
    assert set(PAIR) == {c[0] for c in CASES}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name,kw,ref", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_hand_loop(name, kw, ref, seed):
    e, y = batch(seed)
    S = csm(e)
    got = losses.get(name, **kw).on_similarity(S, y)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(ref(S.tolist(), y.tolist()), rel=1e-9, abs=1e-12)
    # the embedding form is the similarity form on the cosine matrix
    assert losses.get(name, **kw)(e, y).item() == pytest.approx(got.item(), rel=1e-12, abs=1e-14)


def test_mw_auc_gathered_path_matches_cube():
    e, y = batch(3, n=80, classes=6)
    S = csm(e)
    got = P.mw_auc(S, y, temperature=0.5)  # N > 64: gathered blocks
    d = (S[:, None, :] - S[:, :, None]) / 0.5
    pos, neg = P.pair_masks(y)
    valid = pos[:, :, None] & neg[:, None, :]
    assert got.item() == pytest.approx(F.softplus(d)[valid].mean().item(), rel=1e-12)


def test_triplet_large_batch_float32_matches_float64():
    e, y = batch(4, n=300, d=16, classes=10)
    for mining in ("all", "semihard", "hard"):
        a = P.triplet(csm(e.float()), y, margin=0.2, mining=mining)
        b = P.triplet(csm(e), y, margin=0.2, mining=mining)
        assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_triplet_gradient_is_plus_minus_one_per_active_triplet():
    # each active triplet adds +1/n to its negative's weight and -1/n to its positive's (GPW of the hinge)
    e, y = batch(5, n=9, classes=3)
    S = csm(e).requires_grad_(True)
    P.triplet(S, y, margin=0.4, mining="all", reduction="mean").backward()
    want = torch.zeros_like(S); count = 0
    for a in range(9):
        Pa, Na = sets(y.tolist(), a)
        for p in Pa:
            for k in Na:
                count += 1
                if S[a, k] - S[a, p] + 0.4 > 0: want[a, k] += 1; want[a, p] -= 1
    torch.testing.assert_close(S.grad, want / count)


def test_proxy_nca_negatives_denominator_is_the_paper_form():
    e, y = batch(8, n=10, d=4, classes=3)
    loss = losses.get("proxy_nca", num_classes=3, dim=4, denominator="negatives", scale=2.0).double()
    S = loss.similarity(e).detach()
    ref = 0.0
    for i in range(10):
        l = [-2.0 * (2 - 2 * S[i, c].item()) for c in range(3)]
        ref += -l[y[i]] + math.log(sum(math.exp(l[c]) for c in range(3) if c != y[i]))
    assert loss.on_similarity(S, y).item() == pytest.approx(ref / 10, rel=1e-10)




# ---------------------------------------------------------------- gradients, vmap, limits

@pytest.mark.parametrize("name", PAIR)
def test_gradcheck_float64(name):
    # circle detaches its self-paced weights by design (as the paper and PML do): check the unified form here; its
    # self-paced gradient is checked against PML above
    kw = {"circle": dict(gamma=4.0, self_paced=False), "multi_similarity": dict(beta=5.0)}.get(name, {})
    e, y = batch(11, n=8, d=4, classes=3)
    S = csm(e).requires_grad_(True)
    fn = losses.get(name, **kw).on_similarity
    assert torch.autograd.gradcheck(lambda s: fn(s, y), (S,), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("name", PAIR)
def test_safe_under_vmap(name):
    # lossviz.gpw draws weight curves with vmap(grad(...)): the same values as a loop
    e, y = batch(12, n=7, d=3, classes=3)
    S0 = csm(e)
    fn = losses.get(name).on_similarity
    grid = torch.linspace(-0.5, 0.9, 5, dtype=torch.float64)
    def f(s):
        S = S0.clone(); S = S.index_put((torch.tensor(0), torch.tensor(1)), s)
        return fn(S, y)
    vm = torch.func.vmap(torch.func.grad(f))(grid)
    loop = torch.stack([torch.func.grad(f)(g) for g in grid])
    torch.testing.assert_close(vm, loop)


def test_circle_unified_tends_to_batch_hard_triplet():
    e, y = batch(13, n=10, classes=3)
    S = csm(e)
    # per anchor L/γ -> [max s_n - min s_p + m]_+ ; compare on anchors that all violate (large margin)
    big_m = 2.5
    lim = P.triplet(S, y, margin=big_m, mining="batch_hard", reduction="mean")
    for g, tol in [(1e2, 5e-2), (1e4, 5e-4)]:
        got = P.circle(S, y, m=big_m, gamma=g, self_paced=False) / g
        assert got.item() == pytest.approx(lim.item(), abs=tol)


def test_ms_base_and_presets():
    assert P.MS_PRESETS["paper"]["base"] == 1.0 and P.MS_PRESETS["official"] == dict(alpha=2.0, beta=40.0, base=0.5, epsilon=0.1, mining=True)
    for p in P.MS_PRESETS.values(): losses.get("multi_similarity", **p)  # every preset lies inside the HParam bounds


def test_ntxent_batch_1024_is_memory_lean():
    # PML's supervised NTXentLoss builds (positive pairs x negative pairs) masks at this size; lossviz stays O(N^2)
    g = torch.Generator().manual_seed(0)
    e = torch.randn(1024, 128, generator=g, requires_grad=True); y = torch.arange(32).repeat_interleave(32)
    l = losses.get("ntxent")(e, y); l.backward()
    assert torch.isfinite(l) and torch.isfinite(e.grad).all()


# ---------------------------------------------------------------- degenerate batches and bad input

NEEDS_POS = ["triplet", "lifted_structure", "multi_similarity", "circle", "infonce", "ntxent", "supcon", "mw_auc"]


@pytest.mark.parametrize("name", NEEDS_POS)
@pytest.mark.parametrize("labels", [torch.arange(6), torch.tensor([3])], ids=["distinct", "single"])
def test_no_positive_pair_gives_a_differentiable_zero(name, labels):
    e = torch.randn(len(labels), 4, requires_grad=True)
    l = losses.get(name)(e, labels)
    assert l.item() == 0.0 and l.requires_grad
    l.backward()
    assert torch.isfinite(e.grad).all() and e.grad.abs().sum() == 0


@pytest.mark.parametrize("name", PAIR)
def test_one_class_batch_is_finite(name):
    e = torch.randn(6, 4, requires_grad=True)
    l = losses.get(name)(e, torch.zeros(6, dtype=torch.long)); l.backward()
    assert torch.isfinite(l) and torch.isfinite(e.grad).all()


@pytest.mark.parametrize("name", PAIR)
def test_identical_embeddings_are_finite(name):
    # zero distances: the Euclidean variants' sqrt must not produce inf/NaN gradients
    kw = {"contrastive": dict(distance="euclidean"), "triplet": dict(distance="euclidean"), "lifted_structure": dict(distance="euclidean")}.get(name, {})
    e = torch.ones(6, 4, requires_grad=True)
    l = losses.get(name, **kw)(e, torch.tensor([0, 0, 1, 1, 2, 2])); l.backward()
    assert torch.isfinite(l) and torch.isfinite(e.grad).all()


@pytest.mark.parametrize("name", PAIR)
def test_bad_input_messages(name):
    fn = losses.get(name)
    with pytest.raises(ValueError, match="labels: expected an integer dtype"): fn(torch.randn(4, 3), torch.tensor([0., 1., 0., 1.]))
    with pytest.raises(ValueError, match="labels: expected an integer dtype"): fn(torch.randn(4, 3), torch.tensor([True, False, True, False]))
    with pytest.raises(ValueError, match="labels: expected 4 labels"): fn(torch.randn(4, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="embeddings: expected a 2-D tensor"): fn(torch.randn(4), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"sim: expected a square \[N, N\]"): fn.on_similarity(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(TypeError, match="embeddings: expected a torch.Tensor"): fn([[0.0, 1.0]], torch.tensor([0]))


def test_proxy_bad_input():
    loss = losses.get("proxy_anchor", num_classes=3, dim=4)
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 2\] for 3 classes"): loss(torch.randn(2, 4), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="embeddings: expected 4 features per sample"): loss(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="num_classes: expected a value in"): losses.get("proxy_anchor", num_classes=0, dim=4)
    with pytest.raises(ValueError, match="got unknown margin"): losses.get("proxy_anchor", num_classes=3, dim=4, margin=0.1)
    # a proxy batch with no positive (labels absent) is still finite
    e = torch.randn(3, 4, requires_grad=True); l = loss(e, torch.tensor([1, 1, 1])); l.backward()
    assert torch.isfinite(e.grad).all()


# ---------------------------------------------------------------- feature terms

def test_feature_terms_reference():
    e, y = batch(21, n=10, d=4, classes=3)
    f = F.normalize(e, dim=1)
    Sf = (f @ f.T).tolist(); yl = y.tolist()
    pos = [Sf[i][j] for i in range(10) for j in range(10) if i != j and yl[i] == yl[j]]
    neg = [Sf[i][j] for i in range(10) for j in range(10) if yl[i] != yl[j]]
    assert losses.get("opl")(e, y).item() == pytest.approx((1 - sum(pos) / len(pos)) + 0.5 * sum(neg) / len(neg), rel=1e-12)
    assert losses.get("opl", absolute=True, gamma=1.0)(e, y).item() == pytest.approx((1 - sum(pos) / len(pos)) + sum(abs(v) for v in neg) / len(neg), rel=1e-12)
    al = [sum((f[i] - f[j]) ** 2).item() for i in range(10) for j in range(10) if i != j and yl[i] == yl[j]]
    assert losses.get("alignment")(e, y).item() == pytest.approx(sum(al) / len(al), rel=1e-10)
    un = [math.exp(-2 * sum((f[i] - f[j]) ** 2).item()) for i in range(10) for j in range(10) if i != j]
    assert losses.get("uniformity")(e, y).item() == pytest.approx(math.log(sum(un) / len(un)), rel=1e-10)


def test_center_loss_learns_class_means():
    torch.manual_seed(0)
    x = torch.randn(30, 3); y = torch.arange(3).repeat(10)
    cl = losses.get("center", num_classes=3, dim=3)
    opt = torch.optim.SGD(cl.parameters(), lr=3.0)  # lr * (count/N) = 1: one step lands on the means
    l = cl(x, y); opt.zero_grad(); l.backward(); opt.step()
    means = torch.stack([x[y == c].mean(0) for c in range(3)])
    torch.testing.assert_close(cl.centers.detach(), means, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- documented conventions (issue 14)

def test_supcon_and_infonce_keep_the_formula_on_a_one_class_batch():
    e, _ = batch(30, n=9, d=4)
    y = torch.zeros(9, dtype=torch.long)
    S = csm(e)
    for name in ("supcon", "infonce"):
        got = losses.get(name, temperature=0.3).on_similarity(S, y).item()
        assert got == pytest.approx(ref_nce(S.tolist(), y.tolist(), 0.3, name), rel=1e-12) and got >= math.log(8)
        assert any("one-class batch" in n for n in losses.spec(name).notes)
    assert losses.get("ntxent").on_similarity(S, y).item() == 0.0  # negatives only in its denominator


def test_zero_norm_embedding_is_orthogonal_to_everyone():
    # lossviz works in similarity space: a zero row has S = 0 (distance sqrt 2) with every sample and every proxy
    e = torch.tensor([[0., 0.], [1., 0.], [0., 1.]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 1])
    S = csm(e)
    assert S[0].tolist() == [0.0, 0.0, 0.0] and S[1, 1].item() == 1.0
    l = losses.get("contrastive", pos_margin=0.0, neg_margin=1.0, distance="euclidean")(e, y)
    assert l.item() == pytest.approx(math.sqrt(2), rel=1e-14)
    l.backward(); assert torch.isfinite(e.grad).all()
    assert any("zero-norm" in n for n in losses.spec("contrastive").notes)
    pn = losses.get("proxy_nca", num_classes=2, dim=2).double()
    with torch.no_grad(): pn.proxies.copy_(torch.tensor([[1., 0.], [0., 1.]]))
    # the zero row: d² = 2 to both proxies -> log 2; rows 1 and 2 as usual (d² 0 to their own, 2 to the other)
    want = (math.log(2) + 2 * (math.log(1 + math.exp(-2)))) / 3
    assert pn(e.detach(), torch.tensor([0, 0, 1])).item() == pytest.approx(want, rel=1e-12)
    assert any("zero-norm" in n for n in losses.spec("proxy_nca").notes)  # (and it agrees with PML there: test_losses_pairs_pml)


@pytest.mark.parametrize("name,kw", [("multi_similarity", dict(beta=200.0, base=-1.0, mining=False)),
                                     ("multi_similarity", dict(beta=200.0, base=-1.0)),
                                     ("circle", dict(gamma=1024.0)), ("contrastive", {})])
def test_float32_extremes_match_float64(name, kw):
    # entries outside a set whose exp overflows float32 must leave no inf * 0 = NaN behind (additive log-masks)
    e, y = batch(31, n=40, d=6, classes=4)
    e64 = e.clone().requires_grad_(True); e32 = e.float().requires_grad_(True)
    fn = losses.get(name, **kw)
    a, b = fn(e64, y), fn(e32, y)
    a.backward(); b.backward()
    assert torch.isfinite(b) and torch.isfinite(e32.grad).all()
    assert b.item() == pytest.approx(a.item(), rel=2e-4, abs=1e-5)
    torch.testing.assert_close(e32.grad.double(), e64.grad, rtol=5e-3, atol=5e-4)


def test_log_masks_match_boolean_masks():
    from lossviz.losses._ops import log_pair_masks, masked_lse, pair_masks, masked_logsumexp
    e, y = batch(32, n=15, classes=4)
    S = csm(e).requires_grad_(True)
    lpos, lneg = log_pair_masks(y, S.dtype)
    pos, neg = pair_masks(y)
    assert torch.equal(lpos == 0, pos) and torch.equal(lneg == 0, neg)
    for lm, bm in ((lpos, pos), (lneg, neg)):
        x = 7 * S
        got, has = masked_lse(x + lm, add_one=True)
        torch.testing.assert_close(got, masked_logsumexp(x, bm, add_one=True), rtol=1e-12, atol=1e-14)
        assert torch.equal(has, bm.any(1))
        g1 = torch.autograd.grad(got.sum(), S, retain_graph=True)[0]; g2 = torch.autograd.grad(masked_logsumexp(x, bm, add_one=True).sum(), S)[0]
        torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-14)


def test_pair_losses_are_twice_differentiable():
    # curvature tools take Hessian-vector products of a loss; the custom autograd functions support a second backward
    e, y = batch(33, n=8, d=3, classes=3)
    for name, kw in (("multi_similarity", dict(beta=5.0)), ("circle", dict(gamma=4.0, self_paced=False)),
                     ("lifted_structure", {})):  # (the distance's own second derivative is checked in nbs/11_losses_pairs)
        S = csm(e).requires_grad_(True)
        fn = losses.get(name, **kw).on_similarity
        assert torch.autograd.gradgradcheck(lambda s: fn(s, y), (S,), eps=1e-6, atol=1e-5)


def test_old_import_paths_still_work():
    # helpers moved down (issue 14): lossviz.core and lossviz.losses._ops are their homes; the old paths re-export them
    from lossviz import core
    from lossviz.losses import _ops, pairs, classification, registry
    assert registry.trusted_inputs is core.trusted_inputs and registry.inputs_trusted is core.inputs_trusted
    assert classification.check_logits is core.check_logits and classification.finish is core.finish and classification.reduce is core.reduce
    for n in ("pair_masks", "softplus", "masked_logsumexp", "nonzero_mean", "masked_mean"):
        assert getattr(pairs, n) is getattr(_ops, n)
    from lossviz.losses.features import opl  # noqa: F401


# ---------------------------------------------------------------- fused forwards with closed-form gradients (issue 14 speed)

def _plain(name, S, y, kw):
    "The same loss by plain differentiable ops (the path vmap and second derivatives take)."
    if name == "ntxent": return P._ntxent_plain(S, y, kw.get("temperature", 0.07))
    if name == "contrastive":
        h = {**losses.spec("contrastive").defaults(), **kw}
        return P._contrastive_plain(S, y, h["pos_margin"], h["neg_margin"], h["distance"], h["reduction"])
    h = {**losses.spec("multi_similarity").defaults(), **kw}
    return P._ms_plain(S, y, h["alpha"], h["beta"], h["base"], h["epsilon"], h["mining"])


FUSED = [("multi_similarity", {}), ("multi_similarity", dict(mining=False)), ("multi_similarity", dict(epsilon=0.5, base=1.0)),
         ("multi_similarity", dict(mining=False, beta=200.0, base=-1.0)), ("ntxent", {}), ("ntxent", dict(temperature=0.01)),
         ("contrastive", {}), ("contrastive", dict(pos_margin=0.0, neg_margin=1.0, distance="euclidean")),
         ("contrastive", dict(reduction="mean", neg_margin=0.1)), ("contrastive", dict(pos_margin=0.3, neg_margin=1.2, distance="euclidean", reduction="mean"))]


@pytest.mark.parametrize("labels", ["random", "distinct", "one-class", "single", "zero-norm"])
@pytest.mark.parametrize("name,kw", FUSED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(FUSED)])
def test_fused_path_equals_plain_ops(name, kw, labels):
    # the fused forward (value and gradient in one pass, closed-form backward) against the plain ops, float64
    e, y = batch(41, n=30, d=6, classes=5)
    if labels == "distinct": y = torch.arange(30)
    elif labels == "one-class": y = torch.zeros(30, dtype=torch.long)
    elif labels == "single": e, y = e[:1], y[:1]
    elif labels == "zero-norm": e[[3, 7]] = 0.0
    S1 = csm(e).requires_grad_(True); S2 = S1.detach().clone().requires_grad_(True)
    a = losses.get(name, **kw).on_similarity(S1, y); b = _plain(name, S2, y, kw)
    assert type(a.grad_fn).__name__ == "_ClosedFormBackward"  # the fused path ran
    a.backward(); b.backward()
    assert a.item() == pytest.approx(b.item(), rel=1e-14, abs=1e-15)
    # absolute: float64 rounding of the largest weight (the plain path's ntxent positives are e^(x - out) - 1, which
    # cancels where σ(u) is tiny; the closed form takes σ(u) itself)
    tol = 1e-14 * float(S2.grad.abs().max()) + 1e-300
    torch.testing.assert_close(S1.grad, S2.grad, rtol=1e-12, atol=tol)
    # and the backward scales with the incoming gradient
    S3 = S1.detach().clone().requires_grad_(True)
    (3 * losses.get(name, **kw).on_similarity(S3, y)).backward()
    torch.testing.assert_close(S3.grad, 3 * S1.grad, rtol=1e-15, atol=0)


def test_ms_fused_falls_back_where_exp_overflows():
    # float32, β(S - λ) up to 400: e^400 overflows, so the max-shifted plain path gives the (finite) answer
    e, y = batch(42, n=40, d=6, classes=4)
    S = csm(e.float()).requires_grad_(True)
    l = P.multi_similarity(S, y, beta=200.0, base=-1.0, mining=False)
    assert type(l.grad_fn).__name__ != "_ClosedFormBackward" and torch.isfinite(l)
    assert P._ms_fused(S, y, 2.0, 200.0, -1.0, 0.1, False) is None
    S64 = csm(e).requires_grad_(True)
    assert l.item() == pytest.approx(P.multi_similarity(S64, y, beta=200.0, base=-1.0, mining=False).item(), rel=1e-5)


@pytest.mark.parametrize("name,kw", [("multi_similarity", dict(beta=5.0)), ("multi_similarity", dict(beta=5.0, mining=False)), ("ntxent", dict(temperature=0.5)),
                                     ("contrastive", dict(pos_margin=0.9, neg_margin=0.2)), ("contrastive", dict(pos_margin=0.5, neg_margin=1.3, distance="euclidean"))])
def test_fused_closed_form_gradcheck(name, kw):
    # the closed-form backward against finite differences, and its second derivative (which differentiates the plain ops)
    e, y = batch(43, n=9, d=4, classes=3)
    S = csm(e).requires_grad_(True)
    fn = lambda s: losses.get(name, **kw).on_similarity(s, y)
    assert type(fn(S).grad_fn).__name__ == "_ClosedFormBackward"
    assert torch.autograd.gradcheck(fn, (S,), eps=1e-7, atol=1e-6)
    assert torch.autograd.gradgradcheck(fn, (S,), eps=1e-6, atol=1e-5)


def _proxy_anchor_plain(m, e, y):
    from lossviz.losses.proxy import ProxyLoss
    return ProxyLoss.forward(m, e, y)  # similarity by autograd, then on_similarity


@pytest.mark.parametrize("case", ["random", "zero-norm", "absent-classes", "float32-proxies", "alpha128"])
def test_proxy_anchor_fused_equals_plain_ops(case):
    e, y = batch(44, n=25, d=6, classes=5)
    kw = dict(alpha=128.0, delta=0.3) if case == "alpha128" else {}
    m = losses.get("proxy_anchor", num_classes=5 if case != "absent-classes" else 9, dim=6, **kw)
    if case != "float32-proxies": m = m.double()
    if case == "zero-norm": e[[2, 5]] = 0.0
    x1, x2 = e.clone().requires_grad_(True), e.clone().requires_grad_(True)
    a = m(x1, y); a.backward(); pg = m.proxies.grad.clone(); m.proxies.grad = None
    b = _proxy_anchor_plain(m, x2, y); b.backward()
    assert type(a.grad_fn).__name__ == "_ClosedFormBackward"
    assert a.item() == pytest.approx(b.item(), rel=1e-13)
    scale = x2.grad.abs().amax(1, keepdim=True).clamp_min(1e-300)  # zero-norm rows get g/eps (~1e12): compare per row
    torch.testing.assert_close(x1.grad / scale, x2.grad / scale, rtol=0, atol=1e-13)
    assert pg.dtype == m.proxies.dtype
    torch.testing.assert_close(pg, m.proxies.grad, rtol=1e-6 if case == "float32-proxies" else 1e-12, atol=1e-13)


def test_proxy_anchor_fused_gradcheck():
    m = losses.get("proxy_anchor", num_classes=3, dim=4).double()
    e = torch.randn(7, 4, dtype=torch.float64, requires_grad=True); y = torch.tensor([0, 0, 1, 1, 1, 0, 0])
    p = m.proxies.detach().clone().requires_grad_(True)
    f = lambda x, q: torch.func.functional_call(m, {"proxies": q}, (x, y))
    assert type(f(e, p).grad_fn).__name__ == "_ClosedFormBackward"
    assert torch.autograd.gradcheck(f, (e, p)) and torch.autograd.gradgradcheck(f, (e, p))
    # under torch.func transforms the plain ops run (vmap/grad-safe)
    torch.testing.assert_close(torch.func.grad(lambda x: m(x, y))(e.detach()), torch.autograd.grad(m(e, y), e)[0])
