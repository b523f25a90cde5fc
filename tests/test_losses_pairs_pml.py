"""Pair and proxy losses against pytorch-metric-learning (PML) under the same conventions: values to 1e-9 and gradients,
and the documented places where lossviz and PML differ on purpose. Skips as a whole without PML; the hand-loop
references are in test_losses_pairs.py and never skip."""
import math
import pytest
import torch
from lossviz import losses
from lossviz.losses import pairs as P
from lossviz.losses.registry import cosine_similarity_matrix as csm

pml = pytest.importorskip("pytorch_metric_learning", reason="pytorch-metric-learning is a test-only peer (dev extra)")
from pytorch_metric_learning import losses as PL, miners as PM, distances as PD  # noqa: E402


def batch(seed, n=12, d=5, classes=4, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.randint(0, classes, (n,), generator=g)
    return e, y





def pml_cases():
    cos = PD.CosineSimilarity
    return [
        ("contrastive(euclidean 0/1) = ContrastiveLoss()", lambda S, y: P.contrastive(S, y, 0.0, 1.0, "euclidean"), lambda e, y: PL.ContrastiveLoss()(e, y)),
        ("contrastive(cosine 1/0.3) = ContrastiveLoss(cosine)", lambda S, y: P.contrastive(S, y, 1.0, 0.3), lambda e, y: PL.ContrastiveLoss(pos_margin=1, neg_margin=0.3, distance=cos())(e, y)),
        ("triplet all euclidean", lambda S, y: P.triplet(S, y, 0.2, "all", "euclidean"), lambda e, y: PL.TripletMarginLoss(margin=0.2)(e, y)),
        ("triplet all cosine", lambda S, y: P.triplet(S, y, 0.2), lambda e, y: PL.TripletMarginLoss(margin=0.2, distance=cos())(e, y)),
        *[(f"triplet {m} (TripletMarginMiner)", (lambda m: lambda S, y: P.triplet(S, y, 0.2, m, "euclidean"))(m),
           (lambda m: lambda e, y: PL.TripletMarginLoss(margin=0.2)(e, y, PM.TripletMarginMiner(margin=0.2, type_of_triplets=m)(e, y)))(m))
          for m in ("semihard", "hard")],
        ("triplet batch_hard (BatchHardMiner)", lambda S, y: P.triplet(S, y, 0.2, "batch_hard", "euclidean"), lambda e, y: PL.TripletMarginLoss(margin=0.2)(e, y, PM.BatchHardMiner()(e, y))),
        ("lifted euclidean", lambda S, y: P.lifted_structure(S, y, 0.0, 1.0, "euclidean"), lambda e, y: PL.LiftedStructureLoss()(e, y)),
        ("lifted cosine", lambda S, y: P.lifted_structure(S, y), lambda e, y: PL.LiftedStructureLoss(neg_margin=0.5, pos_margin=1.0, distance=cos())(e, y)),
        ("multi_similarity pml preset", lambda S, y: P.multi_similarity(S, y, **P.MS_PRESETS["pml"]), lambda e, y: PL.MultiSimilarityLoss()(e, y)),
        ("multi_similarity mined", lambda S, y: P.multi_similarity(S, y), lambda e, y: PL.MultiSimilarityLoss()(e, y, PM.MultiSimilarityMiner(0.1)(e, y))),
        ("multi_similarity paper preset", lambda S, y: P.multi_similarity(S, y, **P.MS_PRESETS["paper"]), lambda e, y: PL.MultiSimilarityLoss(base=1.0)(e, y, PM.MultiSimilarityMiner(0.1)(e, y))),
        ("circle", lambda S, y: P.circle(S, y), lambda e, y: PL.CircleLoss()(e, y)),
        ("ntxent", lambda S, y: P.ntxent(S, y), lambda e, y: PL.NTXentLoss()(e, y)),
        ("supcon", lambda S, y: P.supcon(S, y), lambda e, y: PL.SupConLoss()(e, y)),
        ("tcm", lambda S, y: P.tcm(S, y), lambda e, y: PL.ThresholdConsistentMarginLoss()(e, y)),
    ]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", pml_cases(), ids=lambda c: c[0])
def test_matches_pytorch_metric_learning(case, seed):
    _, ours, theirs = case
    e, y = batch(seed, n=24, d=8, classes=5)
    e1 = e.clone().requires_grad_(True); e2 = e.clone().requires_grad_(True)
    a, b = ours(csm(e1), y), theirs(e2, y)
    assert a.item() == pytest.approx(b.item(), rel=1e-9, abs=1e-12)
    a.backward(); b.backward()
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name,cls", [("proxy_anchor", "ProxyAnchorLoss"), ("proxy_nca", "ProxyNCALoss"), ("normalized_softmax", "NormalizedSoftmaxLoss")])
def test_proxy_losses_match_pml(name, cls):
    e, y = batch(7, n=20, d=6, classes=5)
    ours = losses.get(name, num_classes=5, dim=6).double()
    theirs = getattr(PL, cls)(num_classes=5, embedding_size=6).double()
    with torch.no_grad():
        if name == "normalized_softmax": theirs.W.copy_(ours.proxies.T)
        else: theirs.proxies.copy_(ours.proxies)
    e1 = e.clone().requires_grad_(True); e2 = e.clone().requires_grad_(True)
    a, b = ours(e1, y), theirs(e2, y)
    assert a.item() == pytest.approx(b.item(), rel=1e-9)
    a.backward(); b.backward()
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-6, atol=1e-9)
    pg = theirs.W.grad.T if name == "normalized_softmax" else theirs.proxies.grad
    torch.testing.assert_close(ours.proxies.grad, pg, rtol=1e-6, atol=1e-9)


def test_supcon_one_class_batch_differs_from_pml_on_purpose():
    e, _ = batch(40, n=9, d=4); y = torch.zeros(9, dtype=torch.long)
    assert PL.SupConLoss()(e, y).item() == 0.0                 # PML: no negative pair -> 0
    assert P.supcon(csm(e), y).item() >= math.log(8)          # lossviz: the formula (test_losses_pairs checks the value)


def test_zero_norm_embedding_differs_from_pml_on_purpose():
    e = torch.tensor([[0., 0.], [1., 0.], [0., 1.]], dtype=torch.float64); y = torch.tensor([0, 0, 1])
    assert PL.ContrastiveLoss()(e, y).item() == pytest.approx(1.0)                      # PML: |0 - e_1| = 1
    assert P.contrastive(csm(e), y, 0.0, 1.0, "euclidean").item() == pytest.approx(math.sqrt(2))  # lossviz: S = 0
    ours = losses.get("proxy_nca", num_classes=2, dim=2).double()
    theirs = PL.ProxyNCALoss(num_classes=2, embedding_size=2).double()
    with torch.no_grad(): theirs.proxies.copy_(ours.proxies)
    # proxy_nca agrees with PML here: the zero row is equally far from every (unit) proxy in both conventions
    # (d² = 2 here, |p̂|² = 1 in PML), so its loss is log C and it gives the proxies no gradient either way
    a, b = ours(e, y), theirs(e, y)
    assert a.item() == pytest.approx(b.item(), rel=1e-9)
    a.backward(); b.backward()
    torch.testing.assert_close(ours.proxies.grad, theirs.proxies.grad, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("alpha,delta", [(32.0, 0.1), (128.0, 0.3)])
def test_proxy_anchor_both_paths_match_pml(alpha, delta):
    "float64 takes the unshifted path at both settings; float32 at alpha=128 needs the max-shifted one (e^140 overflows)."
    e, y = batch(11, n=24, d=6, classes=5)
    ours = losses.get("proxy_anchor", num_classes=5, dim=6, alpha=alpha, delta=delta).double()
    theirs = PL.ProxyAnchorLoss(num_classes=5, embedding_size=6, alpha=alpha, margin=delta).double()
    with torch.no_grad(): theirs.proxies.copy_(ours.proxies)
    e1 = e.clone().requires_grad_(True); e2 = e.clone().requires_grad_(True)
    a, b = ours(e1, y), theirs(e2, y)
    assert a.item() == pytest.approx(b.item(), rel=1e-9)
    a.backward(); b.backward()
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-6, atol=1e-9)
    o32 = losses.get("proxy_anchor", num_classes=5, dim=6, alpha=alpha, delta=delta)
    with torch.no_grad(): o32.proxies.copy_(ours.proxies.float())
    assert o32(e.float(), y).item() == pytest.approx(b.item(), rel=1e-5)
