"""GPW for pair and proxy losses: weights = autograd dL/dS, closed forms, limits, summaries, WDFS statistics, curves."""
import math
import pytest
import torch
from lossviz import losses
from lossviz.gpw import pair_weights, ms_weights, softmax_weights, wdfs_stats, weight_curves
from lossviz.losses import pairs as P
from lossviz.losses.registry import cosine_similarity_matrix as csm

PAIR, PROXY = losses.names("pair"), losses.names("proxy")


def batch(seed, n=12, d=5, classes=4, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("name", PAIR)
def test_weights_reproduce_the_embedding_gradient(name):
    e, y = batch(0)
    pw = pair_weights(name, e, y)
    e1 = e.clone().requires_grad_(True); losses.get(name)(e1, y).backward()
    e2 = e.clone().requires_grad_(True); (csm(e2) * pw.weight).sum().backward()
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-9, atol=1e-12)
    assert pw.weight.diagonal().abs().sum() == 0  # self-pairs carry no weight
    assert pw.loss == pytest.approx(losses.get(name)(e, y).item(), rel=1e-12)


@pytest.mark.parametrize("name", PROXY)
def test_proxy_weights_reproduce_the_gradient(name):
    e, y = batch(1, classes=4)
    loss = losses.get(name, num_classes=4, dim=5).double()
    pw = pair_weights(loss, e, y)
    assert pw.sim.shape == (12, 4) and pw.pos_mask.sum() == 12
    e1 = e.clone().requires_grad_(True); loss(e1, y).backward()
    e2 = e.clone().requires_grad_(True); (loss.similarity(e2) * pw.weight).sum().backward()
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("preset", list(P.MS_PRESETS))
def test_ms_closed_form_equals_autograd(seed, preset):
    e, y = batch(seed, n=16, classes=4)
    kw = P.MS_PRESETS[preset]
    torch.testing.assert_close(ms_weights(csm(e), y, **kw), pair_weights("multi_similarity", e, y, **kw).weight, rtol=1e-10, atol=1e-14)


def test_ms_closed_form_float32():
    e, y = batch(9, n=32, classes=6, dtype=torch.float32)
    torch.testing.assert_close(ms_weights(csm(e), y), pair_weights("multi_similarity", e, y).weight, rtol=1e-4, atol=1e-7)


def test_ms_mining_zeroes_exactly_the_discarded_pairs():
    e, y = batch(3, n=16, classes=4)
    S = csm(e); pos, neg = P.pair_masks(y)
    mp, mn = P.ms_mining(S, pos, neg, 0.1)
    w = pair_weights("multi_similarity", e, y).weight
    assert ((w != 0) == (mp | mn)).all()
    # the mining rule, written out per anchor
    for i in range(16):
        ps = [S[i, k].item() for k in range(16) if pos[i, k]]; ns = [S[i, k].item() for k in range(16) if neg[i, k]]
        for k in range(16):
            if neg[i, k]: assert bool(mn[i, k]) == (bool(ps) and S[i, k].item() + 0.1 > min(ps))
            if pos[i, k]: assert bool(mp[i, k]) == (bool(ns) and S[i, k].item() - 0.1 < max(ns))


@pytest.mark.parametrize("t", [0.05, 0.2, 1.0])
def test_infonce_weights_are_softmax_over_temperature(t):
    e, y = batch(4, n=14, classes=3)
    pw = pair_weights("infonce", e, y, temperature=t)
    torch.testing.assert_close(pw.weight, softmax_weights(csm(e), y, t), rtol=1e-10, atol=1e-14)
    # on the negatives of one anchor the weights are proportional to exp(S/τ)
    i = 0; neg = pw.neg_mask[i]
    r = pw.weight[i, neg] / torch.exp(pw.sim[i, neg] / t)
    torch.testing.assert_close(r, r[0].expand_as(r), rtol=1e-9, atol=0)


def test_infonce_is_hardness_aware_as_temperature_falls():
    e, y = batch(5, n=20, classes=4)
    ent = []
    for t in (1.0, 0.3, 0.1, 0.03):
        w = pair_weights("infonce", e, y, temperature=t)
        wn = torch.where(w.neg_mask, w.weight, 0); p = wn / wn.sum(1, keepdim=True)
        ent.append(float(-(p * p.clamp_min(1e-300).log()).sum(1).mean()))
    assert ent == sorted(ent, reverse=True) and ent[-1] < 0.5 * ent[0]


def test_batch_hard_is_the_one_hot_limit():
    e, _ = batch(6, n=12)
    y = torch.arange(4).repeat_interleave(3)
    pw = pair_weights("triplet", e, y, mining="batch_hard", margin=2.0)
    a = pw.anchor_summary()
    want = torch.zeros(12, 12, dtype=torch.float64)
    want[torch.arange(12), a.hardest_neg] += 1 / 12; want[torch.arange(12), a.hardest_pos] -= 1 / 12
    torch.testing.assert_close(pw.weight, want)
    # and circle's unified loss approaches it as γ grows: its normalised weights concentrate on the same two pairs
    w = pair_weights(lambda s, yy: P.circle(s, yy, m=2.0, gamma=1e4, self_paced=False), e, y).weight
    torch.testing.assert_close(w / 1e4, want, atol=1e-3, rtol=0)


def test_anchor_summary_matches_loops():
    e, y = batch(7, n=15, classes=5)
    pw = pair_weights("contrastive", e, y, neg_margin=0.2)
    a = pw.anchor_summary()
    S, W = pw.sim, pw.weight
    for i in range(15):
        P_ = [k for k in range(15) if k != i and y[k] == y[i]]; N_ = [k for k in range(15) if y[k] != y[i]]
        assert a.n_pos[i] == len(P_) and a.n_neg[i] == len(N_)
        assert a.n_active_pos[i] == sum(W[i, k] != 0 for k in P_) and a.n_active_neg[i] == sum(W[i, k] != 0 for k in N_)
        assert a.pos_mass[i].item() == pytest.approx(sum(abs(W[i, k].item()) for k in P_))
        assert a.neg_mass[i].item() == pytest.approx(sum(abs(W[i, k].item()) for k in N_))
        if P_:
            assert a.hardest_pos[i] == min(P_, key=lambda k: S[i, k]) and a.hardest_pos_sim[i] == S[i, a.hardest_pos[i]]
        else:
            assert a.hardest_pos[i] == -1 and math.isnan(a.hardest_pos_sim[i])
        assert a.hardest_neg[i] == max(N_, key=lambda k: S[i, k])
    d = pw.anchor(3)
    assert (d["sim"].diff() >= 0).all() and len(d["index"]) == 14


def test_wdfs_matches_brute_force_and_sklearn():
    from sklearn.metrics import roc_auc_score
    e, y = batch(8, n=30, classes=5)
    S = csm(e); pos, neg = P.pair_masks(y)
    w = wdfs_stats(S, pos, neg, bins=10)
    sp, sn = S[pos], S[neg]
    assert w.overlap == pytest.approx(float((sn[None, :] >= sp[:, None]).double().mean()), rel=1e-12)
    scores = torch.cat([sp, sn]).numpy(); truth = [1] * len(sp) + [0] * len(sn)
    assert w.auc == pytest.approx(roc_auc_score(truth, scores), rel=1e-12)
    assert w.margin == pytest.approx(float(sp.min() - sn.max()))
    assert w.pos_hist.sum() == len(sp) and w.neg_hist.sum() == len(sn) and len(w.edges) == 11
    inside = ((torch.cat([sp, sn]) >= sp.min()) & (torch.cat([sp, sn]) <= sn.max())).double().mean()
    assert w.in_overlap_region == pytest.approx(float(inside))
    # ties count one half in the AUC
    Sx = torch.tensor([[1.0, 0.5, 0.5], [0.5, 1.0, 0.2], [0.5, 0.2, 1.0]])
    wx = wdfs_stats(Sx, *P.pair_masks(torch.tensor([0, 0, 1])))
    assert wx.auc == pytest.approx(roc_auc_score([1, 1, 0, 0, 0, 0], [0.5, 0.5, 0.5, 0.2, 0.5, 0.2]))


@pytest.mark.parametrize("name", ["triplet", "multi_similarity", "circle", "ntxent", "supcon", "lifted_structure", "mw_auc", "infonce"])
def test_no_positive_pair_is_flagged_not_nan(name):
    e = torch.randn(6, 4)
    s = pair_weights(name, e, torch.arange(6)).summary()
    assert s["no_positive_pair"] and not s["nonfinite"] and s["loss"] == 0.0
    assert s["n_pos_pairs"] == 0 and s["pos_mass"] == 0.0 and s["anchors_with_pos_frac"] == 0.0
    assert math.isnan(s["margin"]) and math.isnan(s["overlap"])
    assert not pair_weights(name, e, torch.tensor([0, 0, 1, 1, 2, 2])).summary()["no_positive_pair"]


def test_summary_numbers():
    e, y = batch(10, n=16, classes=4)
    pw = pair_weights("multi_similarity", e, y)
    s = pw.summary()
    act = (pw.weight != 0)
    assert s["active_neg_frac"] == pytest.approx(float((act & pw.neg_mask).sum() / pw.neg_mask.sum()))
    assert s["pos_mass"] == pytest.approx(float(pw.weight[pw.pos_mask].abs().sum()))
    smp = pw.sample(20, seed=1)
    assert len(smp["sim"]) == 20 and (pw.sim[smp["anchor"], smp["index"]] == smp["sim"]).all()
    assert (pw.weight[smp["anchor"], smp["index"]] == smp["weight"]).all()
    assert len(pw.sample(10_000)["sim"]) == int((pw.pos_mask | pw.neg_mask).sum())


def _curve_loop(loss, s, kind, n_pos=3, n_neg=8, s_pos=0.5, s_neg=0.1):
    from lossviz.gpw.pairs import _episode
    out = {"pos": [], "neg": []}
    k_neg = loss.num_classes - 1 if kind == "proxy" else n_neg
    S0, y, ip, ineg = _episode(kind, n_pos, k_neg, s_pos, s_neg, torch.float64)
    for v in s:
        for probe, key in ((ip, "pos"), (ineg, "neg")):
            S = S0.clone().requires_grad_(True)
            with torch.no_grad(): S[probe] = v
            loss.on_similarity(S, y).backward()
            out[key].append(S.grad[probe].item())
    return out


@pytest.mark.parametrize("name", PAIR + PROXY)
def test_weight_curves_match_a_loop(name):
    s = torch.linspace(-0.9, 0.95, 9, dtype=torch.float64)
    kind = losses.spec(name).kind
    loss = losses.get(name, num_classes=9, dim=8).double() if kind == "proxy" else losses.get(name)
    wc = weight_curves([(name, loss)], s=s)
    ref = _curve_loop(loss, s, kind)
    torch.testing.assert_close(wc.pos[name], torch.tensor(ref["pos"], dtype=torch.float64))
    torch.testing.assert_close(wc.neg[name], torch.tensor(ref["neg"], dtype=torch.float64))


def test_bad_input():
    e, y = batch(0)
    with pytest.raises(TypeError, match="pair_weights needs a pair or proxy loss"): pair_weights("cross_entropy", e, y)
    with pytest.raises(ValueError, match="embeddings: expected finite values"): pair_weights("triplet", e * float("nan"), y)
    with pytest.raises(ValueError, match="labels: expected 12 labels"): pair_weights("triplet", e, y[:3])
    with pytest.raises(ValueError, match="hparams: pass hyperparameters with a loss name"): pair_weights(losses.get("triplet"), e, y, margin=0.2)
    with pytest.raises(ValueError, match="unknown loss 'nope'"): pair_weights("nope", e, y)
    with pytest.raises(ValueError, match=r"i: expected an anchor index in \[0, 11\]"): pair_weights("triplet", e, y).anchor(12)
