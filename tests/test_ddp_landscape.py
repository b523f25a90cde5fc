"""Landscape grids sharded across torchrun ranks (2 CPU processes, gloo): merged on rank 0, identical to one process."""
import os, subprocess, sys, textwrap
import numpy as np
import pytest

pytestmark = pytest.mark.ddp

SCRIPT = textwrap.dedent('''
    import os, sys, numpy as np, torch, torch.distributed as dist
    import torch.nn.functional as F
    from lossviz import data, models
    from lossviz.landscape import random_directions, surface
    from lossviz.store import RunStore
    out, store_path = sys.argv[1], sys.argv[2]
    ddp = "RANK" in os.environ
    if ddp: dist.init_process_group("gloo")
    rank = dist.get_rank() if ddp else 0
    torch.set_num_threads(1)
    ds = data.load("digits")
    m = models.get("cnn", data=ds, seed=0, width=4, feature_dim=16)
    x, y = ds.x_train[:150], ds.y_train[:150]
    store = RunStore(store_path)
    rid = store.runs()[0]["id"]
    d = random_directions(m, seed=0)
    calls = {"n": 0}
    def counting(o, t):
        calls["n"] += 1
        return F.cross_entropy(o, t)
    s = surface(m, counting, (x, y), d, span=0.7, steps=9, store=store if rank == 0 else None, run_id=rid,
                chunk_points=16, progress=False, save_every=0)
    np.savez(f"{out}.rank{rank}.npz", loss=s.loss, acc=s.acc, done=s.done, calls=calls["n"])
    if ddp: dist.destroy_process_group()
''')


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def test_sharded_surface_identical_to_one_process(tmp_path):
    from lossviz.store import RunStore
    script = tmp_path / "ddp_surface.py"
    script.write_text(SCRIPT)
    for tag in ("one", "ddp"):
        s = RunStore(tmp_path / f"{tag}.sqlite"); s.create_run(tag)
    p = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), str(tmp_path / "one.sqlite")],
                       capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
                        str(tmp_path / "ddp"), str(tmp_path / "ddp.sqlite")], capture_output=True, text=True, env=_env(), timeout=400)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    one = np.load(tmp_path / "one.rank0.npz")
    r0, r1 = np.load(tmp_path / "ddp.rank0.npz"), np.load(tmp_path / "ddp.rank1.npz")
    for r in (r0, r1):  # every rank ends with the merged grid, bit for bit the one-process grid
        np.testing.assert_array_equal(r["loss"], one["loss"])
        np.testing.assert_array_equal(r["acc"], one["acc"])
        assert r["done"].all()
    # the work was shared: each rank evaluated about half of the points (+1 probe each)
    assert int(r0["calls"]) + int(r1["calls"]) == 81 + 2 and abs(int(r0["calls"]) - int(r1["calls"])) <= 9
    # only rank 0 wrote, and the stored grid is the merged one
    art = RunStore(tmp_path / "ddp.sqlite").artifact(1, "landscape_surface")
    np.testing.assert_array_equal(art["loss"], one["loss"])
    assert art.meta["complete"]
