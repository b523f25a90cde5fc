"""ClassStats under torchrun: two CPU ranks (gloo) each see half of the samples; after `all_reduce` every rank holds
the statistics of all samples, equal to the one-call `metrics` on the whole set (NC4 from a second pass, reduced too)."""
import json, os, subprocess, sys
from pathlib import Path
import pytest
import torch

pytestmark = pytest.mark.ddp


def _data():
    g = torch.Generator().manual_seed(0)
    C, D = 9, 24
    counts = torch.tensor([80, 60, 50, 40, 30, 20, 12, 6, 3])          # imbalanced; class 8 lands on one rank only
    y = torch.repeat_interleave(torch.arange(C), counts)
    y = y[torch.randperm(len(y), generator=g)]
    centres = 4 * torch.randn(C, D, generator=g, dtype=torch.float64)
    h = (centres[y] + torch.randn(len(y), D, generator=g, dtype=torch.float64) + 7).float()
    W = (centres + torch.randn(C, D, generator=g, dtype=torch.float64)).float()
    b = torch.randn(C, generator=g).float()
    return h, y, W, b


def _worker(out_dir):
    import torch.distributed as dist
    from lossviz.collapse import ClassStats
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    h, y, W, b = _data()
    mine = torch.arange(rank, len(y), world)
    if rank == 1: mine = mine[y[mine] != 8]                              # class 8 only on rank 0
    else: mine = torch.cat([mine, torch.arange(1, len(y), world)[y[torch.arange(1, len(y), world)] == 8]])
    st = ClassStats(9, h.shape[1])
    for part in mine.split(37): st.update(h[part], y[part])
    st.all_reduce()
    for part in mine.split(37): st.update_nc4(h[part], W, b)
    st.all_reduce()                                                      # sums the NC4 counts of the second pass
    m = st.metrics(W)
    res = dict(m.as_dict(), n=st.num_samples, local=len(mine), mean=st.mean.flatten()[:5].tolist())
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(res))
    dist.destroy_process_group()


def test_classstats_all_reduce_over_two_gloo_ranks(tmp_path):
    from lossviz.collapse import metrics
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    h, y, W, b = _data()
    assert r0["n"] == r1["n"] == len(y) and r0["local"] + r1["local"] == len(y) and r0["local"] != r1["local"]
    one = metrics(h, y, W, b).as_dict()
    for k in ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_equiangular_max", "nc3", "nc4", "cdnv", "w_equinorm"):
        assert r0[k] == pytest.approx(one[k], rel=1e-6), k
        assert r1[k] == r0[k], k                                          # every rank holds the same numbers
    assert r0["mean"] == r1["mean"]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    _worker(sys.argv[1])
