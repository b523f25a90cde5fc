"""Forward + backward time of lossviz's pair losses against pytorch-metric-learning (PML), side by side in one process.

    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 .venv/bin/python benchmarks/pair_losses.py

Batches of B = 256 and 1024 embeddings (D = 128, 32 classes, B/32 samples per class, as an M-per-class sampler gives),
each loss configured to compute the same value as its PML counterpart (checked before timing). The two sides are
alternated call by call; the table shows median milliseconds and the median of the per-round ratios lossviz / PML
(< 1: lossviz is faster). A PML configuration whose masks would not fit in memory is reported and lossviz timed alone.
"""
import argparse, statistics, time
import torch
from pytorch_metric_learning import losses as PL, miners as PM
from lossviz import losses
from lossviz.losses import pairs as P
from lossviz.losses.registry import cosine_similarity_matrix as csm


def cases(B, D, C):
    "(name, lossviz fn(e, y), PML fn(e, y), PML memory estimate in bytes or 0)."
    npos = B * (B // C - 1); nneg = B * (B - B // C)
    pa_ours = losses.get("proxy_anchor", num_classes=C, dim=D)
    pa_pml = PL.ProxyAnchorLoss(num_classes=C, embedding_size=D)
    with torch.no_grad(): pa_pml.proxies.copy_(pa_ours.proxies)
    ms_pml, ms_miner = PL.MultiSimilarityLoss(), PM.MultiSimilarityMiner(0.1)
    return [
        ("multi_similarity (mined)", lambda e, y: P.multi_similarity(csm(e), y), lambda e, y: ms_pml(e, y, ms_miner(e, y)), 0),
        ("multi_similarity (no mining)", lambda e, y: P.multi_similarity(csm(e), y, mining=False), lambda e, y: ms_pml(e, y), 0),
        ("triplet (all triplets)", lambda e, y: P.triplet(csm(e), y, margin=0.05, distance="euclidean"), lambda e, y: PL.TripletMarginLoss()(e, y),
         B * (B // C - 1) * (B - B // C) * 8 * 6),  # a, p, n index tensors + distances, ~6 int64-sized arrays per triplet
        ("contrastive", lambda e, y: P.contrastive(csm(e), y, 0.0, 1.0, "euclidean"), lambda e, y: PL.ContrastiveLoss()(e, y), 0),
        ("supervised NT-Xent", lambda e, y: P.ntxent(csm(e), y), lambda e, y: PL.NTXentLoss()(e, y), npos * nneg * 4 * 3),
        ("circle", lambda e, y: P.circle(csm(e), y), lambda e, y: PL.CircleLoss()(e, y), 0),
        ("proxy_anchor", lambda e, y: pa_ours(e, y), lambda e, y: pa_pml(e, y), 0),
    ]


def fwd_bwd(fn, e, y):
    x = e.clone().requires_grad_(True)
    t = time.perf_counter()
    loss = fn(x, y); loss.backward()
    return time.perf_counter() - t, loss.item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=0, help="rounds per case (0: 21 at B<=256, 9 above)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (2 matches the 2-core machines)")
    ap.add_argument("--mem-limit-gib", type=float, default=4.0, help="skip a PML case whose estimated memory exceeds this")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, D={a.dim}, {a.classes} classes")
    print(f"{'loss':30s} {'B':>5s} {'lossviz ms':>11s} {'PML ms':>10s} {'ratio':>7s}  value check")
    rows = []
    for B in a.batches:
        g = torch.Generator().manual_seed(B)
        e = torch.randn(B, a.dim, generator=g)
        y = torch.arange(a.classes).repeat_interleave(B // a.classes)[torch.randperm(B, generator=g)]
        rounds = a.rounds or (21 if B <= 256 else 9)
        for name, ours, theirs, mem in cases(B, a.dim, a.classes):
            run_pml = mem <= a.mem_limit_gib * 2**30
            for _ in range(2):  # warm-up
                _, v_ours = fwd_bwd(ours, e, y)
                if run_pml: _, v_pml = fwd_bwd(theirs, e, y)
            t_ours, t_pml, ratios = [], [], []
            for _ in range(rounds):
                to, _ = fwd_bwd(ours, e, y); t_ours.append(to)
                if run_pml:
                    tp, _ = fwd_bwd(theirs, e, y); t_pml.append(tp); ratios.append(to / tp)
            mo = statistics.median(t_ours) * 1e3
            if run_pml:
                mp, r = statistics.median(t_pml) * 1e3, statistics.median(ratios)
                check = f"|diff| = {abs(v_ours - v_pml):.1e} (value {v_ours:.4g})"
                print(f"{name:30s} {B:5d} {mo:11.2f} {mp:10.2f} {r:7.3f}  {check}")
            else:
                r = float("nan")
                print(f"{name:30s} {B:5d} {mo:11.2f} {'skipped':>10s} {'-':>7s}  PML would need ~{mem / 2**30:.0f} GiB of masks (> {a.mem_limit_gib:g} GiB): lossviz alone")
            rows.append((name, B, mo, r))
    done = [r for r in rows if r[3] == r[3]]
    print(f"\nworst ratio {max(r[3] for r in done):.3f}; every ratio <= 1.0: {all(r[3] <= 1.0 for r in done)}")


if __name__ == "__main__":
    main()
