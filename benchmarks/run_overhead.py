"""What does a live `Run` cost over a plain torch loop?

The same training (digits, mlp, SGD, same seed, same batches, the same cross-entropy: `F.cross_entropy` in the plain
loops, the registry's `cross_entropy` in the Run) is timed three ways in one process, each warmed up once at full
length, then repeated in rotated orders (repeat i takes the i-th of the 6 orders of the three, so each runs first,
second and third equally often and after each of the others equally often; the old plain / plain+eval / Run then
Run / plain+eval / plain alternation always put plain+eval in the middle and ran plain and Run twice in a row):

  plain       a bare torch loop: forward, loss, backward, step; nothing else
  plain+eval  the same loop plus the per-epoch test evaluation a user would write (the work `TestMetrics` does)
  Run         `lossviz.Run` with the default monitors, writing to a fresh SQLite store in a temporary folder

and the median ratios Run / plain+eval (the cost of the live-run machinery for the same work) and Run / plain
are printed, plus the ratio of the best times (on a shared machine the medians move by several per cent between
invocations; the best times are the least disturbed), and the same ratios in process CPU time (all threads: the
writer thread's work counts) and in the training thread's CPU time, which a loaded machine disturbs less than
wall-clock time, with the training thread's extra CPU per step (median and quartiles over the repeats). An "order
check" line prints each loop's median time when it ran first, second and third: a fair run shows no trend.

`--ops` counts, rather than times, what the Run adds per step in the training thread: torch operators dispatched
and Python function calls (the same numbers on a loaded machine as on a quiet one).

`--breakdown` prints where the Run's extra microseconds per step go, each part timed alone in this thread's CPU time
(`time.thread_time`): the loss through the registry, the per-step bookkeeping with the default monitors (window
means, divergence check, logging), the gradient-norm monitor, the per-epoch evaluation pass against a plain one, and
the fixed cost of creating, starting and closing a run (store row, writer and heartbeat threads), spread over the run.

`--lockstep N` cancels this machine's drift (a KVM guest: the same work's CPU time moves by +-25 % from run to run and
within seconds, so two 0.6 s runs timed one after the other differ by more than the effect): the plain+eval loop runs
as a generator, one epoch at each of the Run's epoch ends (a last monitor's `on_epoch` hands it the turn), in the same
thread, so Run epoch k and plain epoch k are adjacent in time; each epoch's training-thread CPU time (and wall time)
is recorded and the ratio of the sums over the N runs' 20 epoch pairs is printed, with the fixed cost per run
(`Run()`, store row, threads, `start`, `on_start`, `on_end`, close, minus the plain loop's model and optimizer)
measured in the same runs and added. Two checks of the method print beside it: plain against plain (must read
1.00 within ~1 %) and plain against plain with a 30 us busy-wait per step (must read +30 us). `--split` adds the
same measurement for the Run's parts, each with the test monitor (the evaluation plain+eval does; a Run without it
does less work than plain+eval): no other monitor and no store, the store, the test monitor + each other default monitor;
and, first, two floors against plain without evaluation: a Run whose loop is replaced by the plain loop's four lines
(what the harness around a loop costs: the model and data a Run holds, its per-epoch calls, the final check) and a
Run with no monitors (its own loop: counting, the schedule, the divergence checks).

`--instructions` counts the CPU instructions instead (valgrind's callgrind, which counts, not times: the same numbers
on a loaded machine as on a quiet one; what moves between invocations is only which thread does what when, ~0.4 % of
a step here, where timings move by ~1 %): plain+eval and the Run each run under callgrind twice, for 2 and for
2 + `--epochs` epochs, in child processes; the difference of the two counts is per step, which cancels imports and
set-up; the Run's fixed cost is what is left of its shorter run. Counted in the training thread and in all threads
(the store's writer and heartbeat threads, whose clocks are stretched by callgrind's slowdown, so they wake as often
per step as natively). Instructions are not time (a BLAS instruction does more work than an
interpreter's), but they do not drift: where the timed ratio sits within this machine's noise of the goal, the
counted one says on which side the code is.

    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 python benchmarks/run_overhead.py
    python benchmarks/run_overhead.py --threads 1 --lockstep 24 --repeats 0     # the drift-free number alone
    python benchmarks/run_overhead.py --device cuda --dataset digits --epochs 20
    python benchmarks/run_overhead.py --instructions --repeats 0    # counted, not timed (needs valgrind; ~9 min at 128 x 128, ~40 at 512 x 512)
"""
import argparse, copy, gc, itertools, os, re, shutil, statistics, subprocess, sys, tempfile, time
import torch.nn.functional as F
from pathlib import Path
import torch

from lossviz import data as D, models as M
from lossviz.core import pick_device, seed_everything
from lossviz.monitors import Monitor
from lossviz.store import RunStore
from lossviz.train import Run

LR, SEED = 0.05, 0 # every loop of this benchmark trains with these


def _sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def plain(ds, dev, epochs, batch_size, lr, seed, evaluate, hidden):
    "A hand-written loop doing the same training as `Run` (`plain_epochs` run to its end)."
    for _ in plain_epochs(ds, dev, epochs, batch_size, lr, seed, hidden, evaluate=evaluate): pass


def with_run(ds, dev, epochs, batch_size, lr, seed, store, hidden):
    r = Run("mlp", ds, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=dev, store=store,
            model_params={"hidden": hidden}).run_sync()
    _sync(dev)
    assert r.status == "finished", r.status
    return r


def _cpu(fn, n=1):
    "Microseconds of this thread's CPU time per call of `fn` (n calls)."
    t0 = time.thread_time_ns()
    for _ in range(n): fn()
    return (time.thread_time_ns() - t0) / n / 1e3


def breakdown(ds, dev, epochs, batch_size, hidden, store):
    "Where the Run's extra time per step goes, part by part (CPU time of this thread, one torch thread: no spin-waits)."
    nt = torch.get_num_threads(); torch.set_num_threads(1)
    try: _breakdown(ds, dev, epochs, batch_size, hidden, store)
    finally: torch.set_num_threads(nt)


def _breakdown(ds, dev, epochs, batch_size, hidden, store):
    from lossviz.losses.registry import trusted_inputs
    r = Run("mlp", ds, epochs=epochs, batch_size=batch_size, seed=0, device=dev, store=False, model_params={"hidden": hidden})
    spe, net, opt = r.steps_per_epoch, r.model, r.optimizer
    batches = list(r.loader)
    x, y = batches[0]
    r._hooks()
    rows = []
    def step_plain():
        loss = F.cross_entropy(net(x), y); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    base = min(_cpu(step_plain, 200) for _ in range(5))
    twin = copy.deepcopy(net); F.cross_entropy(twin(x), y).backward() # a copy with gradients: its weights may drift here
    run_opt, plain_opt = (torch.optim.SGD(twin.parameters(), lr=1e-6, momentum=0.9, foreach=f) for f in (True, None))
    for o in (run_opt, plain_opt): o.step() # momentum buffers exist (the steady state)
    rows.append(("the optimizer step: the Run's foreach SGD minus the per-parameter default a plain loop gets",
                 min(_cpu(run_opt.step, 300) for _ in range(3)) - min(_cpu(plain_opt.step, 300) for _ in range(3))))
    with trusted_inputs():
        reg = min(_cpu(lambda: r.objective.forward(x, y), 300) for _ in range(3)) - min(_cpu(lambda: F.cross_entropy(net(x), y), 300) for _ in range(3))
    rows.append(("loss through the registry + objective (forward only)", reg))
    z = net(x).detach(); loss = F.cross_entropy(z, y)
    def bookkeeping():
        for s in range(1, 101):
            r.global_step = s; r.samples_seen += y.shape[0]
            if s % r._period == 0: r._dispatch(s, (x, y), r._step_output(loss, z, y))
    rows.append(("per-step bookkeeping: counts, monitors' on_step, divergence check, logging (amortised)", min(_cpu(bookkeeping, 3) for _ in range(3)) / 100))
    F.cross_entropy(net(x), y).backward()
    gn = [m for m in r.monitors if m.name == "grad_norm"][0]
    rows.append((f"gradient norm (every {gn.every} steps, amortised)", min(_cpu(lambda: gn.on_backward(r, 10), 50) for _ in range(3)) / gn.every))
    tm = [m for m in r.monitors if m.name == "test"][0]
    def ev_run(): getattr(r, "_eval_cache", {}).clear(); tm.on_epoch(r, 1)
    def ev_plain():
        net.eval()
        with torch.no_grad(): zz = net(ds.x_test); (F.cross_entropy(zz, ds.y_test), (zz.argmax(1) == ds.y_test).float().mean())
        net.train()
    rows.append(("per-epoch test evaluation: eval pass + TestMetrics minus a plain one (per step)",
                 (min(_cpu(ev_run, 5) for _ in range(3)) - min(_cpu(ev_plain, 5) for _ in range(3))) / spe))
    cm = [m for m in r.monitors if m.name == "calibration"]
    if cm:
        cm = cm[0]
        def cal_thread(): getattr(r, "_eval_cache", {}).clear(); r.eval_pass("test"); t0 = time.thread_time_ns(); cm.on_epoch(r, 1); t = time.thread_time_ns() - t0; cm._join(); return t
        def cal_work(): cm.result(r, r.eval_pass("test"), 1)
        tt = min(min(cal_thread() for _ in range(5)) for _ in range(3)) / 1e3
        rows.append(("calibration monitor, training thread: starting its worker (per step)", tt / spe))
        rows.append(("calibration monitor, its worker thread: ECE/MCE/NLL/Brier, T* fit, table, artifact (per step; beside the loop)",
                     min(_cpu(cal_work, 5) for _ in range(3)) / spe))
    def fixed():
        rr = Run("mlp", ds, epochs=1, batch_size=batch_size, seed=0, device=dev, store=store, model_params={"hidden": hidden}, monitors=None)
        from lossviz.store import StoreWriter
        w = StoreWriter(store, rr.id); w.status("running"); w.status("finished"); w.close()
    def fixed_plain(): M.get("mlp", data=ds, seed=0, hidden=hidden).to(dev)
    fx = min(_cpu(fixed, 3) for _ in range(3)) - min(_cpu(fixed_plain, 3) for _ in range(3))
    rows.append((f"fixed per run: Run(), store row, writer + heartbeat threads, close (over {epochs * spe} steps)", fx / (epochs * spe)))
    print(f"breakdown (CPU time of the training thread, 1 torch thread; a plain step is {base:.1f} us):")
    for k, v in rows: print(f"  {v:7.1f} us/step  {k}")
    main = sum(v for k, v in rows if "worker thread" not in k)
    print(f"  {main:7.1f} us/step  total in the training thread = {main / base * 100:.1f} % of a plain step "
          f"(the calibration worker's and the writer thread's work run beside it: see the CPU-time ratio)")


def count_ops(ds, dev, epochs, batch_size, hidden, store, lr, seed, top=8):
    """What the Run adds per step in the training thread, counted rather than timed (the same on a loaded machine):
    torch operators dispatched (a `TorchDispatchMode` sees every ATen op, forward and backward) and Python function
    calls (`sys.setprofile`), each for one whole run, Run minus plain+eval, per training step."""
    import collections, sys
    from torch.utils._python_dispatch import TorchDispatchMode
    class Ops(TorchDispatchMode):
        def __init__(self): super().__init__(); self.c = collections.Counter()
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.c[str(func)] += 1
            return func(*args, **(kwargs or {}))
    def counted(fn):
        calls = [0]
        def prof(frame, event, arg):
            if event == "call" or event == "c_call": calls[0] += 1
        with Ops() as ops: fn()
        sys.setprofile(prof)
        try: fn()
        finally: sys.setprofile(None)
        return ops.c, calls[0]
    (o_p, c_p), (o_r, c_r) = (counted(lambda: plain(ds, dev, epochs, batch_size, lr, seed, True, hidden)),
                              counted(lambda: with_run(ds, dev, epochs, batch_size, lr, seed, store, hidden)))
    steps = epochs * len(D.batches(ds.x_train, ds.y_train, batch_size))
    n_p, n_r = sum(o_p.values()), sum(o_r.values())
    print(f"counted per step (training thread; independent of load): torch ops plain+eval {n_p / steps:.1f}, Run {n_r / steps:.1f} "
          f"(+{(n_r - n_p) / steps:.2f}); Python calls plain+eval {c_p / steps:.1f}, Run {c_r / steps:.1f} (+{(c_r - c_p) / steps:.1f})")
    d = collections.Counter(o_r); d.subtract(o_p)
    print("  the Run's extra ops per step: " + ", ".join(f"{k.replace('aten.', '').replace('.default', '')} {v / steps:+.2f}"
                                                          for k, v in d.most_common(top) if v))


def _count_child(kind, ds, dev, epochs, batch_size, lr, seed, hidden, store, native_epoch_s):
    """In a child under callgrind: one plain+eval loop or one Run (default monitors, store), nothing else. The store's
    writer and heartbeat threads work on a clock (a commit every 0.2 s, a heartbeat every second); callgrind runs the
    program 350-1450x slower (measured), so they would wake that much more often per step than they do natively: their periods are
    stretched by the slowdown, measured on one plain epoch here against `native_epoch_s` (the same epoch timed natively
    by the parent; the calibration epoch is the same in every child, so it cancels)."""
    import inspect
    from lossviz.store import StoreWriter
    plain(ds, dev, 1, batch_size, lr, seed, False, hidden) # valgrind translates code on its first run: warm up first
    t0 = time.perf_counter(); plain(ds, dev, 1, batch_size, lr, seed, False, hidden); scale = (time.perf_counter() - t0) / native_epoch_s
    init = StoreWriter.__init__; names = [n for n, q in inspect.signature(init).parameters.items() if q.default is not q.empty]
    init.__defaults__ = tuple(v * scale if n in ("flush_every", "heartbeat_every") else v for n, v in zip(names, init.__defaults__))
    if kind == "plain+eval": plain(ds, dev, epochs, batch_size, lr, seed, True, hidden)
    else: with_run(ds, dev, epochs, batch_size, lr, seed, store, hidden)
    print(f"slowdown {scale:.1f}")


def _callgrind(argv, out_dir):
    "Start `python run_overhead.py argv` under callgrind, one count file per thread in `out_dir`."
    out_dir.mkdir(parents=True)
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out_dir}/cg.%p",
           sys.executable, __file__, *argv]
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _thread_totals(out_dir) -> list[int]:
    "Each thread's instruction count from callgrind's per-thread files, the main thread first."
    files = sorted((f for f in out_dir.glob("cg.*-*")), key=lambda f: int(f.name.rsplit("-", 1)[1])) # cg.PID-NN, NN from 01
    tot = []
    for f in files:
        m = re.search(r"^(?:totals|summary): (\d+)", f.read_text(errors="replace"), re.M)
        tot.append(int(m.group(1)) if m else 0)
    return tot


def count_instructions(a, spe):
    """Instructions per step and fixed, Run against plain+eval, counted under callgrind (differences of a short and a
    long run of each, so imports and set-up cancel). Two children at a time (this machine has 2 cores)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("run_overhead.py: --instructions needs valgrind (Debian: apt-get install valgrind)")
    tmp = Path(tempfile.mkdtemp(prefix="lossviz-cg-"))
    short, long = 2, 2 + a.epochs
    base = ["--dataset", a.dataset, "--batch-size", str(a.batch_size), "--hidden", *map(str, a.hidden), "--threads", "1",
            "--repeats", "0"]
    jobs = [(k, e) for e in (short, long) for k in ("plain+eval", "Run")]
    ds, n = D.load(a.dataset), torch.get_num_threads(); torch.set_num_threads(1) # the children's one thread
    def epoch_s():
        t = time.perf_counter(); plain(ds, torch.device("cpu"), 1, a.batch_size, LR, SEED, False, tuple(a.hidden))
        return time.perf_counter() - t
    base += ["--native-epoch-s", f"{statistics.median(epoch_s() for _ in range(7)):.6f}"]; torch.set_num_threads(n)
    counts, slow = {}, []
    t0 = time.perf_counter()
    for pair in (jobs[:2], jobs[2:]):
        procs = {(k, e): _callgrind(base + ["--epochs", str(e), "--count-child", k, "--store-dir", str(tmp / f"s-{k}-{e}")],
                                    tmp / f"cg-{k}-{e}") for k, e in pair}
        for key, pr in procs.items():
            out, err = pr.communicate()
            if pr.returncode != 0: raise SystemExit(f"run_overhead.py: the callgrind child {key} failed:\n{err[-2000:]}")
            counts[key] = _thread_totals(tmp / f"cg-{key[0]}-{key[1]}")
            slow.append(float(out.split()[-1]))
    steps = a.epochs * spe
    print(f"instructions (callgrind; {a.dataset}, mlp{list(a.hidden)}, batch {a.batch_size}, torch threads 1; "
          f"{short} and {long} epochs per child, {steps} steps apart; "
          f"callgrind's slowdown {min(slow):.0f}..{max(slow):.0f}x, the writer's clock stretched by it; {time.perf_counter() - t0:.0f} s)")
    for label, pick in (("training thread", lambda c: c[0]), ("all threads", sum)):
        per = {k: (pick(counts[(k, long)]) - pick(counts[(k, short)])) / steps for k in ("plain+eval", "Run")}
        fixed = {k: pick(counts[(k, short)]) - per[k] * short * spe for k in per}
        extra = (fixed["Run"] - fixed["plain+eval"]) / steps # the fixed cost, spread over a run of --epochs epochs
        ratio = (per["Run"] + extra) / per["plain+eval"]
        print(f"  {label:<16} per step: plain+eval {per['plain+eval'] / 1e3:9.1f} k, Run {per['Run'] / 1e3:9.1f} k "
              f"({(per['Run'] - per['plain+eval']) / 1e3:+7.1f} k, {per['Run'] / per['plain+eval']:.4f}); "
              f"fixed {(fixed['Run'] - fixed['plain+eval']) / 1e6:+7.1f} M ({extra / 1e3:+6.1f} k per step over "
              f"{a.epochs} epochs); Run / plain+eval with fixed {ratio:.4f}")
    print(f"  threads (training first), Run, {long} epochs: " + ", ".join(f"{c / 1e6:.0f} M" for c in counts[("Run", long)]))
    shutil.rmtree(tmp, ignore_errors=True)


def plain_epochs(ds, dev, epochs, batch_size, lr, seed, hidden, busy_us=0.0, evaluate=True, foreach=None):
    """The hand-written loop as a generator: yields once set up (model, optimizer, batches), then after each epoch (and
    its evaluation). `foreach=None` is torch's default optimizer (per-parameter on a CPU), `True` the Run's."""
    seed_everything(seed)
    net = M.get("mlp", data=ds, seed=seed, hidden=hidden).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, foreach=foreach)
    ce = torch.nn.functional.cross_entropy # plain torch: no lossviz in this loop but the batches
    loader = D.batches(ds.x_train, ds.y_train, batch_size, shuffle=True, seed=seed) # the Run's batches, in the Run's order
    busy = int(busy_us * 1e3)
    yield
    for _ in range(epochs):
        for x, y in loader:
            loss = ce(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if busy: # the method's check: a known extra cost per step
                t = time.thread_time_ns() + busy
                while time.thread_time_ns() < t: pass
        if evaluate:
            net.eval()
            with torch.no_grad():
                z = net(ds.x_test)
                test = (ce(z, ds.y_test), (z.argmax(1) == ds.y_test).float().mean())
            net.train()
        _sync(dev)
        yield


def _clock(dev):
    _sync(dev)
    return time.thread_time_ns(), time.perf_counter_ns()


class _Lockstep(Monitor):
    "The last monitor of a lockstep Run: at each epoch end it records the Run's epoch and runs one epoch of `gen`."
    name = "lockstep"
    def __init__(self, gen, dev):
        super().__init__(); self.gen, self.dev, self.run_ep, self.plain_ep = gen, dev, [], []
    def config(self): return {}
    def on_start(self, run):
        self.s0 = _clock(self.dev); next(self.gen); self.s1 = self.t = _clock(self.dev)
    def on_epoch(self, run, epoch):
        t = _clock(self.dev); self.run_ep.append((t[0] - self.t[0], t[1] - self.t[1]))
        next(self.gen)
        self.t = _clock(self.dev); self.plain_ep.append((self.t[0] - t[0], self.t[1] - t[1]))


def lockstep_run(ds, dev, epochs, batch_size, lr, seed, hidden, store, monitors="default", evaluate=True, loop=None, foreach=None):
    """One Run and one plain+eval loop (plain without evaluation if not `evaluate`) in lockstep: `(run epochs, plain
    epochs, run fixed, plain fixed)`, each epoch and fixed cost as (training-thread CPU ns, wall ns). `loop` replaces
    the Run's training loop for this run (the method's floor: `_harness_loop`); `foreach` is the plain loop's optimizer
    (None: torch's default, as a user writes it; True: the Run's)."""
    mon = _Lockstep(plain_epochs(ds, dev, epochs, batch_size, lr, seed, hidden, evaluate=evaluate, foreach=foreach), dev)
    ms = ([] if monitors is None else [monitors] if isinstance(monitors, str) else list(monitors)) + [mon]
    t0 = _clock(dev)
    r = Run("mlp", ds, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=dev, store=store, monitors=ms,
            model_params={"hidden": hidden})
    if loop is not None: r._loop = loop.__get__(r) # this run only
    r.run_sync()
    t1 = _clock(dev)
    assert r.status == "finished", (r.status, r.error)
    fixed_run = tuple(mon.s0[i] - t0[i] + t1[i] - mon.t[i] for i in range(2)) # Run(), start, on_start; on_end, close
    fixed_plain = tuple(mon.s1[i] - mon.s0[i] for i in range(2)) # the plain loop's model, optimizer, batches
    return mon.run_ep, mon.plain_ep, fixed_run, fixed_plain


def _harness_loop(self):
    "The plain loop's four lines inside a Run (no counting, no monitors' schedule, no checks but the final one): what a Run costs around a loop that does exactly the plain loop's work."
    net, fn, opt = self.objective._net, self.objective._fn, self.optimizer
    self._hooks(); self._call("on_start")
    for epoch in range(self.epochs):
        for x, y in self.loader:
            loss = fn(net(x), y); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        self.epochs_done = epoch + 1
        self._call("on_epoch", epoch + 1, epoch=float(epoch + 1))
    self._call("on_end")


def lockstep_plain(ds, dev, epochs, batch_size, lr, seed, hidden, busy_us):
    "The method's check: plain+eval against itself (+ `busy_us` per step), alternated epoch by epoch the same way."
    ga = plain_epochs(ds, dev, epochs, batch_size, lr, seed, hidden, busy_us)
    gb = plain_epochs(ds, dev, epochs, batch_size, lr, seed, hidden)
    s0 = _clock(dev); next(gb); s1 = _clock(dev); next(ga); t = s2 = _clock(dev)
    A, B = [], []
    for _ in range(epochs):
        next(ga); u = _clock(dev); A.append((u[0] - t[0], u[1] - t[1]))
        next(gb); t = _clock(dev); B.append((t[0] - u[0], t[1] - u[1]))
    return A, B, tuple(s2[i] - s1[i] for i in range(2)), tuple(s1[i] - s0[i] for i in range(2))


def lockstep(label, n, fn, steps_per_epoch):
    "Run `fn` n times; print the ratio of sums (training-thread CPU and wall) over all adjacent epoch pairs, + fixed costs."
    A, B, FA, FB = [], [], [], []
    for _ in range(n):
        gc.collect()
        a, b, fa, fb = fn()
        A += a; B += b; FA.append(fa); FB.append(fb)
    res = {}
    for i, clock in enumerate(("CPU", "wall")):
        sa, sb = sum(x[i] for x in A), sum(x[i] for x in B)
        per_ep = lambda xs: sum(x[i] for x in xs) / len(xs)
        fa, fb = statistics.median(f[i] for f in FA), statistics.median(f[i] for f in FB)
        epochs = len(A) // n
        steps = epochs * steps_per_epoch
        d = sorted((x[i] - y[i]) / steps_per_epoch / 1e3 for x, y in zip(A, B))
        total = (per_ep(A) * epochs + fa) / (per_ep(B) * epochs + fb)
        res[clock] = total
        if i == 0:
            print(f"  {label:<44} CPU: epochs {sa / sb:.4f} ({(sa - sb) / len(A) / steps_per_epoch / 1e3:+6.1f} us/step, "
                  f"median pair {statistics.median(d):+6.1f}), fixed {(fa - fb) / steps / 1e3:+5.1f} us/step, "
                  f"with fixed {total:.4f} | plain {per_ep(B) / steps_per_epoch / 1e3:.0f} us/step", end="")
        else: print(f" | wall: with fixed {total:.4f}", flush=True)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    p.add_argument("--repeats", type=int, default=24, help="a multiple of 6 runs every order of the three loops equally often")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--breakdown", action="store_true", help="also time each part of the Run's overhead alone")
    p.add_argument("--ops", action="store_true", help="also count the torch ops and Python calls the Run adds per step (load-independent)")
    p.add_argument("--lockstep", type=int, default=0, metavar="N",
                   help="also measure Run / plain+eval in lockstep (epoch by epoch in one thread: cancels the machine's drift), N runs")
    p.add_argument("--split", action="store_true", help="with --lockstep: also the Run's parts (no monitors, the store, each default monitor)")
    p.add_argument("--instructions", action="store_true",
                   help="also count the CPU instructions of Run and plain+eval per step under valgrind's callgrind (drift-free; ~9 min at 128 x 128, ~40 at 512 x 512)")
    p.add_argument("--count-child", choices=("plain+eval", "Run"), help=argparse.SUPPRESS) # one loop, under callgrind
    p.add_argument("--store-dir", help=argparse.SUPPRESS)
    p.add_argument("--native-epoch-s", type=float, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = pick_device(a.device)
    ds = D.load(a.dataset).to(dev)
    hidden = tuple(a.hidden)
    if a.count_child:
        d = Path(a.store_dir); d.mkdir(parents=True)
        return _count_child(a.count_child, ds, dev, a.epochs, a.batch_size, LR, SEED, hidden, RunStore(d / "runs.sqlite"), a.native_epoch_s)
    if a.instructions: count_instructions(a, len(D.batches(ds.x_train, ds.y_train, a.batch_size)))
    tmp = Path(tempfile.mkdtemp(prefix="lossviz-bench-"))
    store = RunStore(tmp / "runs.sqlite")
    lr, seed = LR, SEED
    kinds = ("plain", "plain+eval", "Run")
    def once(k):
        if k == "Run": return with_run(ds, dev, a.epochs, a.batch_size, lr, seed, store, hidden)
        plain(ds, dev, a.epochs, a.batch_size, lr, seed, k == "plain+eval", hidden)
    # warm-up: every configuration once at full length (allocator, kernels, the store file, lazy imports)
    for k in kinds: r = once(k)
    if a.breakdown: breakdown(ds, dev, a.epochs, a.batch_size, hidden, store)
    if a.ops: count_ops(ds, dev, a.epochs, a.batch_size, hidden, store, lr, seed)
    if a.lockstep:
        from lossviz.monitors import DEFAULT
        args = (ds, dev, a.epochs, a.batch_size, lr, seed, hidden)
        spe = len(D.batches(ds.x_train, ds.y_train, a.batch_size))
        lockstep_run(*args, store) # warm-up
        print(f"lockstep, mlp{list(hidden)}, {a.lockstep} runs x {a.epochs} epoch pairs, torch threads {torch.get_num_threads()}, "
              f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; ratio Run / plain+eval (training-thread CPU, wall)")
        cases = [("check of the method: plain / plain", lambda: lockstep_plain(*args, 0.0)),
                 ("check of the method: plain+30us/step / plain", lambda: lockstep_plain(*args, 30.0)),
                 ("Run (default monitors, store) / plain+eval", lambda: lockstep_run(*args, store)),
                 # the Run's optimizer is foreach (the same numbers, less Python per step): against a plain loop with
                 # the same optimizer, what is left is lossviz's machinery alone
                 ("the same / plain+eval with the Run's optimizer", lambda: lockstep_run(*args, store, foreach=True))]
        if a.split:
            # every part keeps the test monitor: it is the evaluation plain+eval does (a Run without it does less work)
            # the floors: a Run that does exactly the plain loop's work (no monitor, no evaluation on either side), then
            # the Run's own loop (counting, schedule, checks) with no monitor
            cases += [("Run harness, plain loop inside / plain", lambda: lockstep_run(*args, False, None, evaluate=False, loop=_harness_loop)),
                      ("Run, no monitors, no store / plain", lambda: lockstep_run(*args, False, None, evaluate=False))]
            cases += [("Run, only 'test', no store", lambda: lockstep_run(*args, False, ["test"])),
                      ("Run, only 'test', store", lambda: lockstep_run(*args, store, ["test"])),
                      ("Run, default monitors, no store", lambda: lockstep_run(*args, False, "default"))]
            cases += [(f"Run, 'test' + {m!r}, no store", lambda m=m: lockstep_run(*args, False, ["test", m])) for m in DEFAULT if m != "test"]
        for label, fn in cases: lockstep(label, a.lockstep, fn, spe)
        print(f"  load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if a.repeats < 1: return
    load0 = " ".join(f"{v:.2f}" for v in os.getloadavg())
    # Fairness: repeat i runs the three configurations in the i-th of the 6 orders, so over 6 repeats each one runs
    # first, second and third equally often and follows each of the others equally often (no order, warm-up or
    # allocator bias favours one); the same work (seed, batches, initial weights) in each.
    orders = list(itertools.permutations(kinds))
    wall, cpu, main_cpu, pos = ({k: [] for k in kinds} for _ in range(4))
    for i in range(a.repeats):
        for j, k in enumerate(orders[i % len(orders)]):
            gc.collect() # no garbage of the previous configuration is collected inside a timing
            t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
            out = once(k)
            _sync(dev)
            wall[k].append(time.perf_counter() - t0); cpu[k].append(time.process_time() - c0)
            main_cpu[k].append(time.thread_time() - m0); pos[k].append(j)
            if out is not None: r = out
    med = {k: statistics.median(v) for k, v in wall.items()}
    steps = r.global_step
    print(f"load average before / after: {load0} / {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cpus")
    print(f"device {dev}, {a.dataset}, mlp{list(hidden)}, {a.epochs} epochs x {r.steps_per_epoch} steps "
          f"(batch {a.batch_size}), {a.repeats} repeats in rotated orders, torch threads {torch.get_num_threads()}")
    for k, v in med.items():
        print(f"  {k:<11} median {v * 1e3:8.1f} ms  ({v / steps * 1e6:6.1f} us/step)   best {min(wall[k]) * 1e3:8.1f} ms   "
              f"main-thread CPU median {statistics.median(main_cpu[k]) * 1e3:8.1f} ms")
    n_rows = len(store._conn().execute("SELECT id FROM scalars WHERE run=?", (r.id,)).fetchall())
    print(f"  the Run logged {n_rows} scalar rows per run ({len(r.monitors)} default monitors)")
    byp = lambda k, j: [t for t, q in zip(wall[k], pos[k]) if q == j]
    print("  order check, median ms when run 1st / 2nd / 3rd: " + ";  ".join(
        f"{k} " + " / ".join(f"{statistics.median(byp(k, j)) * 1e3:.1f}" if byp(k, j) else "-" for j in range(3)) for k in kinds))
    if med["plain"] > med["plain+eval"]:
        print("  NOTE: the plain loop's median is above plain+eval's, which does strictly more work: the run-to-run spread "
              "of this machine is larger than the evaluation's cost; read the CPU-time ratios")
    paired = lambda d, x, y: [u / v for u, v in zip(d[x], d[y])]
    print(f"median ratio Run / plain+eval: {statistics.median(paired(wall, 'Run', 'plain+eval')):.3f}   (the same work, with and without lossviz; the goal is <= 1.03)")
    print(f"median ratio Run / plain:      {statistics.median(paired(wall, 'Run', 'plain')):.3f}   (against a loop that never evaluates)")
    print(f"ratio of medians Run / plain+eval: {med['Run'] / med['plain+eval']:.3f}")
    print(f"best-of-{a.repeats} ratio Run / plain+eval: {min(wall['Run']) / min(wall['plain+eval']):.3f}   "
          f"(least disturbed by other processes on a shared machine)")
    print(f"CPU time, all threads: median ratio Run / plain+eval {statistics.median(paired(cpu, 'Run', 'plain+eval')):.3f}, "
          f"best-of ratio {min(cpu['Run']) / min(cpu['plain+eval']):.3f}")
    print(f"CPU time, training thread: median ratio Run / plain+eval {statistics.median(paired(main_cpu, 'Run', 'plain+eval')):.3f}, "
          f"best-of ratio {min(main_cpu['Run']) / min(main_cpu['plain+eval']):.3f}")
    d = sorted((u - v) / steps * 1e6 for u, v in zip(main_cpu["Run"], main_cpu["plain+eval"]))
    q = lambda f: d[min(len(d) - 1, int(f * len(d)))]
    print(f"training-thread CPU per step, Run - plain+eval: median {statistics.median(d):.1f} us (quartiles {q(0.25):.1f} .. {q(0.75):.1f} us)")

if __name__ == "__main__":
    main()
