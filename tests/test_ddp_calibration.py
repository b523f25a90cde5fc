"""CalibrationStats under DDP: two gloo ranks each stream a shard, one all_reduce merges them, and every rank then
holds the statistics of the whole split, equal to the one-shot metrics. Run by pytest, it launches itself with
torchrun (`python -m torch.distributed.run --nproc_per_node=2 tests/test_ddp_calibration.py OUT`)."""
import json, os, subprocess, sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ddp
N, C = 6001, 10   # odd, so the shards differ in size


def _data():
    import torch, torch.nn.functional as F
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, C, (N,), generator=g)
    z = 3 * (torch.randn(N, C, generator=g) + 1.5 * F.one_hot(y, C))
    return z, y


def _worker(out_dir):
    import torch, torch.distributed as dist
    from lossviz.calibration import CalibrationStats, fit_temperature
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    z, y = _data()
    shard = slice(rank * N // world, (rank + 1) * N // world)
    st = CalibrationStats(15)
    for i in range(shard.start, shard.stop, 500):       # batches of an evaluation pass
        j = min(i + 500, shard.stop)
        st.update(z[i:j], y[i:j], from_logits=True)
    local_n = st.n
    st.all_reduce()
    res = {"rank": rank, "world": world, "local_n": local_n, "n": st.n, "ece": st.ece(), "mce": st.ece("max"),
           "rmsce": st.ece("l2"), "nll": st.nll(), "brier": st.brier(), "acc": st.accuracy,
           "count": st.reliability().count.tolist()}
    def reduce(t):
        dist.all_reduce(t); return t
    res["T"] = fit_temperature(z[shard], y[shard], reduce=reduce)     # each rank its shard, the T* of all samples
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(res))
    # an empty rank (no batches) still takes part in the all_reduce
    e = CalibrationStats(15)
    if rank == 0: e.update(z[:100], y[:100], from_logits=True)
    e.all_reduce()
    Path(out_dir, f"empty{rank}.json").write_text(json.dumps({"n": e.n, "ece": e.ece()}))
    dist.destroy_process_group()


def test_stats_all_reduce_over_two_gloo_ranks(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        __file__, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    from lossviz.calibration import ece, nll, brier, reliability, fit_temperature
    z, y = _data()
    r = [json.loads((tmp_path / f"rank{k}.json").read_text()) for k in range(2)]
    assert r[0]["world"] == 2 and r[0]["local_n"] + r[1]["local_n"] == N and r[0]["local_n"] != r[1]["local_n"]
    one = reliability(z, y, from_logits=True)
    for res in r:                                        # every rank holds the whole split
        assert res["n"] == N and res["count"] == one.count.tolist()
        assert res["ece"] == pytest.approx(ece(z, y, from_logits=True), abs=1e-12)
        assert res["mce"] == pytest.approx(ece(z, y, norm="max", from_logits=True), abs=1e-12)
        assert res["rmsce"] == pytest.approx(ece(z, y, norm="l2", from_logits=True), abs=1e-12)
        assert res["nll"] == pytest.approx(nll(z, y, from_logits=True), abs=1e-9)
        assert res["brier"] == pytest.approx(brier(z, y, from_logits=True), abs=1e-7)
        assert res["acc"] == pytest.approx(float((z.argmax(1) == y).double().mean()), abs=1e-15)
        assert res["T"] == pytest.approx(fit_temperature(z, y), abs=1e-9)
    e = [json.loads((tmp_path / f"empty{k}.json").read_text()) for k in range(2)]
    assert e[0] == e[1] and e[0]["n"] == 100 and e[0]["ece"] == pytest.approx(ece(z[:100], y[:100], from_logits=True), abs=1e-12)


def test_monitor_under_ddp_merges_the_test_shards(tmp_path):
    "lossviz train under torchrun with the calibration monitor: the stored table counts the whole test split."
    from lossviz.store import RunStore
    store = tmp_path / "ddp.sqlite"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    # torchrun's own parser would read `--monitor` as an ambiguous prefix of its `--monitor-interval`: the arguments
    # go through a two-line script instead
    script = tmp_path / "train.py"
    args = ["train", "--no-progress", "--dataset", "blobs", "--epochs", "2", "--batch-size", "32",
            "--monitor", "calibration", "--store", str(store)]
    script.write_text(f"import sys\nfrom lossviz.cli import main\nsys.exit(main({args!r}))\n")
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)],
                       capture_output=True, text=True, env=env, timeout=400)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    s = RunStore(store)
    r = s.runs()[0]
    sc = s.scalars(r["id"])
    assert len(sc["calibration/ece"][1]) == 2 and len(sc["calibration/temperature"][1]) == 2
    a = s.artifact(r["id"], "reliability")
    assert int(a["count"].sum()) == 120 and a.meta["n"] == 120       # both ranks' shards (60 + 60)


if __name__ == "__main__":
    _worker(sys.argv[1])
