"""What does a live `Run` cost over a plain torch loop?

The same training (digits, mlp, SGD, same seed, same batches, the same cross-entropy: `F.cross_entropy` in the plain
loops, the registry's `cross_entropy` in the Run) is timed three ways in one process,
alternated, several repeats:

  plain       a bare torch loop: forward, loss, backward, step; nothing else
  plain+eval  the same loop plus the per-epoch test evaluation a user would write (the work `TestMetrics` does)
  Run         `lossviz.Run` with the default monitors, writing to a fresh SQLite store in a temporary folder

and the median ratios Run / plain+eval (the cost of the live-run machinery for the same work) and Run / plain
are printed, plus the ratio of the best times (on a shared machine the medians move by several per cent between
invocations; the best times are the least disturbed).

    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 python benchmarks/run_overhead.py
    python benchmarks/run_overhead.py --device cuda --dataset digits --epochs 20
"""
import argparse, gc, statistics, tempfile, time
from pathlib import Path
import torch

from lossviz import data as D, models as M
from lossviz.core import pick_device, seed_everything
from lossviz.store import RunStore
from lossviz.train import Run


def _sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def plain(ds, dev, epochs, batch_size, lr, seed, evaluate, hidden):
    "A hand-written loop doing the same training as `Run`."
    seed_everything(seed)
    net = M.get("mlp", data=ds, seed=seed, hidden=hidden).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    ce = torch.nn.functional.cross_entropy # plain torch: no lossviz in this loop but the batches
    loader = D.batches(ds.x_train, ds.y_train, batch_size, shuffle=True, seed=seed)
    seed_everything(seed)
    for _ in range(epochs):
        for x, y in loader:
            loss = ce(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if evaluate:
            net.eval()
            with torch.no_grad():
                z = net(ds.x_test)
                test = (ce(z, ds.y_test), (z.argmax(1) == ds.y_test).float().mean())
            net.train()
    _sync(dev)
    return float(loss.detach())


def with_run(ds, dev, epochs, batch_size, lr, seed, store, hidden):
    r = Run("mlp", ds, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=dev, store=store,
            model_params={"hidden": hidden}).run_sync()
    _sync(dev)
    assert r.status == "finished", r.status
    return r


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = pick_device(a.device)
    ds = D.load(a.dataset).to(dev)
    hidden = tuple(a.hidden)
    tmp = Path(tempfile.mkdtemp(prefix="lossviz-bench-"))
    store = RunStore(tmp / "runs.sqlite")
    lr, seed = 0.05, 0
    # warm-up: allocator, kernels, the store file
    plain(ds, dev, 1, a.batch_size, lr, seed, True, hidden); with_run(ds, dev, 1, a.batch_size, lr, seed, store, hidden)
    times = {"plain": [], "plain+eval": [], "Run": []}
    for i in range(a.repeats):
        order = ["plain", "plain+eval", "Run"] if i % 2 == 0 else ["Run", "plain+eval", "plain"]
        for k in order:
            gc.collect() # no garbage of the previous configuration is collected inside a timing
            t0 = time.perf_counter()
            if k == "Run": r = with_run(ds, dev, a.epochs, a.batch_size, lr, seed, store, hidden)
            else: plain(ds, dev, a.epochs, a.batch_size, lr, seed, k == "plain+eval", hidden)
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    steps = r.global_step
    print(f"device {dev}, {a.dataset}, mlp{list(hidden)}, {a.epochs} epochs x {r.steps_per_epoch} steps "
          f"(batch {a.batch_size}), {a.repeats} alternated repeats, torch threads {torch.get_num_threads()}")
    for k, v in med.items(): print(f"  {k:<11} median {v * 1e3:8.1f} ms  ({v / steps * 1e6:6.1f} us/step)")
    n_rows = len(store._conn().execute("SELECT id FROM scalars WHERE run=?", (r.id,)).fetchall())
    print(f"  the Run logged {n_rows} scalar rows per run ({len(r.monitors)} default monitors)")
    ratios = [t / p for t, p in zip(times["Run"], times["plain+eval"])]
    ratios0 = [t / p for t, p in zip(times["Run"], times["plain"])]
    print(f"median ratio Run / plain+eval: {statistics.median(ratios):.3f}   (the same work, with and without lossviz)")
    print(f"median ratio Run / plain:      {statistics.median(ratios0):.3f}   (against a loop that never evaluates)")
    print(f"ratio of medians Run / plain+eval: {med['Run'] / med['plain+eval']:.3f}")
    print(f"best-of-{a.repeats} ratio Run / plain+eval: {min(times['Run']) / min(times['plain+eval']):.3f}   "
          f"(least disturbed by other processes on a shared machine)")


if __name__ == "__main__":
    main()
