"""The Playground explorer's model: training lowers the loss (checked against an independent recomputation), start /
pause / reset, mid-run changes that the next step uses, drawn and loaded points, bad input -> ValueError naming the
argument. No test asserts a time; benchmarks/playground.py measures the updates per second."""
import re, time
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lossviz.explorers.playground import Playground, read_points, make_points, MAX_POINTS
from lossviz.plots.playground import region_z


def _wait(cond, timeout=60.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout: raise AssertionError("condition not reached within the (generous) wait")
        time.sleep(0.02)


@pytest.mark.parametrize("dataset", ["xor", "circles"])
def test_training_lowers_the_loss_and_metrics_match_a_recomputation(dataset):
    pg = Playground(dataset=dataset, speed=1000)
    t = pg.trainer
    l0 = pg.snap["train/loss"]
    t.train_steps(400); assert pg.poll()
    s = pg.snap
    assert s["step"] == 400 and s["train/loss"] < 0.25 * l0 and s["train/acc"] > 0.95 and s["test/acc"] > 0.9, s
    # independent: cross-entropy and accuracy from the model's outputs on the raw points, standardised by hand
    m = t.model.eval()
    with torch.no_grad():
        xs = torch.tensor((t.x_np - t.centre) / t.half, dtype=torch.float32)
        out = m(xs)
        assert abs(F.cross_entropy(out, torch.tensor(t.y_np)).item() - s["train/loss"]) < 1e-5
        assert abs((out.argmax(1).numpy() == t.y_np).mean() - s["train/acc"]) < 1e-6
        # the grid: softmax of the model at each grid point, row = y, column = x
        gx, gy = t.grid
        pts = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
        p = torch.softmax(m(torch.tensor((pts - t.centre) / t.half, dtype=torch.float32)), -1).numpy().reshape(len(gy), len(gx), -1)
    assert np.allclose(p, s["probs"], atol=1e-5)
    fig = pg.figure()
    assert np.allclose(np.asarray(fig.data[0].z, dtype=float), np.round(region_z(p), 3), atol=2e-3)
    # the regions agree with the labels: the grid cell nearest each training point predicts its class for most points
    ix = np.abs(t.x_np[:, :1] - gx[None]).argmin(1); iy = np.abs(t.x_np[:, 1:] - gy[None]).argmin(1)
    assert (p[iy, ix].argmax(-1) == t.y_np).mean() > 0.9


def test_linear_model_cannot_learn_xor_but_an_mlp_can():
    lin = Playground(dataset="xor", hidden="none", optimizer="adam", lr=0.05)
    lin.trainer.train_steps(300); lin.poll()
    assert lin.snap["train/acc"] < 0.75 and lin.snap["train/loss"] > 0.6 # about log 2 = 0.69
    lin.set(hidden="8"); assert lin.trainer.step == 0 # a model change starts over
    lin.trainer.train_steps(300); lin.poll()
    assert lin.snap["train/acc"] > 0.95


def test_start_pause_resume_reset():
    pg = Playground.example(speed=1000)
    w0 = [p.detach().clone() for p in pg.trainer.model.parameters()]
    assert pg.actions() == {"start": True, "pause": False, "reset": False, "clear": False}
    pg.act("start")
    assert pg.trainer.running and pg.actions()["pause"] and not pg.actions()["start"] and not pg.done
    _wait(lambda: pg.trainer.step >= 20)
    _wait(pg.poll) # a new snapshot is taken (poll spaces them out by the figure's build time under load)
    assert pg.updates >= 1
    pg.act("pause")
    assert not pg.trainer.running and pg.done
    s = pg.trainer.step
    time.sleep(0.3); assert pg.trainer.step == s and not pg.poll() # paused: no step, nothing new
    assert pg.snap["step"] == s # the last snapshot is shown
    pg.act("start"); _wait(lambda: pg.trainer.step > s + 5); pg.act("pause")
    assert pg.trainer.step > s # resumed from where it was, not from 0
    pg.set(lr=0.1); assert pg.events
    pg.act("reset")
    assert pg.trainer.step == 0 and pg.events == [] and not pg.trainer.running
    for a, b in zip(w0, pg.trainer.model.parameters()): assert torch.equal(a, b.detach()) # same seed: the same start
    assert pg.trainer.optimizer.param_groups[0]["lr"] == 0.1 # reset keeps the controls
    # reset while training keeps training, from step 0
    pg.act("start"); _wait(lambda: pg.trainer.step > 3); pg.act("reset")
    assert pg.trainer.running; pg.act("pause")
    pg.close()


def test_changes_mid_run_apply_to_the_next_step():
    pg = Playground(dataset="moons", optimizer="sgd", batch_size="full", lr=0.05)
    t = pg.trainer
    t.train_steps(3)
    # lr: plain SGD moves by exactly -lr * grad with the new lr
    pg.set(lr=0.7)
    w = [p.detach().clone() for p in t.model.parameters()]
    t.model.zero_grad(); F.cross_entropy(t.model(t.x), t.y).backward()
    g = [p.grad.clone() for p in t.model.parameters()]
    t.train_steps(1)
    for a, b, d in zip(w, t.model.parameters(), g): assert torch.allclose(b.detach(), a - 0.7 * d, atol=1e-6)
    # loss hyperparameter: the next step's loss is focal with the new gamma (recomputed independently)
    pg.set(loss="focal", **{"focal.gamma": 4.0})
    with torch.no_grad():
        out = t.model(t.x); logp = F.log_softmax(out, 1).gather(1, t.y[:, None]).squeeze(1)
        want = (-(1 - logp.exp()) ** 4.0 * logp).mean().item()
    assert abs(t._step() - want) < 1e-5
    assert t.loss_fn.hparams == {"gamma": 4.0} and pg.events[-1][1] == "loss focal (gamma=4)"
    # optimizer: a new one on the same weights
    w = [p.detach().clone() for p in t.model.parameters()]; step = t.step
    pg.set(optimizer="adam")
    assert isinstance(t.optimizer, torch.optim.Adam) and t.step == step
    for a, b in zip(w, t.model.parameters()): assert torch.equal(a, b.detach())
    # batch size, weight decay
    pg.set(batch_size=8, weight_decay=0.01)
    assert t.batch_size == 8 and t.optimizer.param_groups[0]["weight_decay"] == 0.01
    assert [e[1] for e in pg.events][-2:] == ["weight decay 0 → 0.01", "batch size full → 8"]
    # the data or the model: a fresh start
    for change in ({"noise": 0.2}, {"activation": "relu"}, {"dataset": "spiral"}, {"loss": "harmonic"}):
        pg.trainer.train_steps(2); pg.set(**change)
        assert pg.trainer.step == 0, change
    assert pg.C == 3


def test_change_while_training_is_used_by_the_running_thread():
    pg = Playground.example(speed=1000, optimizer="sgd")
    pg.act("start"); _wait(lambda: pg.trainer.step >= 5)
    pg.set(lr=0.5)
    assert all(g["lr"] == 0.5 for g in pg.trainer.optimizer.param_groups) and pg.trainer.running
    s = pg.events[-1][0]; _wait(lambda: pg.trainer.step > s + 5)
    pg.act("pause")
    assert pg.trainer.optimizer.param_groups[0]["lr"] == 0.5
    fig = pg.figure()
    assert any(sh.x0 == s for sh in fig.layout.shapes) # the change is marked on the loss curve


def test_draw_points_by_clicking():
    pg = Playground(dataset="custom", classes=2)
    assert len(pg.trainer.y) == 0 and not pg.actions()["start"]
    with pytest.raises(ValueError, match="start: there are no training points"): pg.act("start")
    assert pg.click(0.5, 0.5) and pg.click(0.6, 0.4)
    pg.set(draw_class="class 1")
    assert pg.click(-0.5, -0.5) and pg.click(-0.6, -0.4)
    assert pg.trainer.y_np.tolist() == [0, 0, 1, 1] and pg.actions()["start"] and pg.actions()["clear"]
    assert not pg.click(50.0, 0.0) # outside the plotted square: ignored
    n_left = 1 + pg.C
    assert not pg.click(0.1, 0.1, trace=n_left) # a click on the loss curves: ignored
    pg.trainer.train_steps(100); pg.poll()
    assert pg.snap["train/acc"] == 1.0
    # drawn points survive a reset (they are the custom set); clear removes them
    pg.act("reset"); assert len(pg.trainer.y) == 4
    pg.act("clear"); assert len(pg.trainer.y) == 0
    # a click on a built-in set adds a point to its training points
    pm = Playground.example()
    n = len(pm.trainer.y); pm.click(0.0, 0.0); assert len(pm.trainer.y) == n + 1


def test_load_points(tmp_path):
    x, y, xt, yt, _ = make_points("moons")
    csv = "x1,x2,label\n" + "\n".join(f"{a},{b},{'top' if c == 0 else 'bottom'}" for (a, b), c in zip(x * 10 + 100, y))
    pg = Playground()
    pg.load_points(csv.encode())
    assert pg.dataset == "custom" and pg.class_names == ["top", "bottom"][:: 1 if y[0] == 0 else -1] and len(pg.trainer.y) == len(y)
    assert np.allclose(pg.trainer.x_np, x * 10 + 100) # any scale: the model sees standardised coordinates
    assert pg.trainer.x.abs().max() <= 1.0
    l0 = pg.snap["train/loss"]
    pg.trainer.train_steps(300); pg.poll(); assert pg.snap["train/acc"] > 0.85 and pg.snap["train/loss"] < 0.5 * l0
    p = tmp_path / "pts.csv"; p.write_text(csv)
    assert len(Playground().load_points(str(p)).trainer.y) == len(y)
    arr = Playground().load_points(np.c_[x, y])
    assert arr.class_names == ["class 0", "class 1"]
    pair = Playground().load_points((x, y)); assert len(pair.trainer.y) == len(y)


@pytest.mark.parametrize("call,name", [
    (lambda pg: pg.set(lr=-1.0), "lr"), (lambda pg: pg.set(lr=10.0), "lr"), (lambda pg: pg.set(dataset="mnist"), "dataset"),
    (lambda pg: pg.set(hidden="7,7"), "hidden"), (lambda pg: pg.set(batch_size=3), "batch_size"),
    (lambda pg: pg.set(**{"focal.gamma": -1.0}), "focal.gamma"), (lambda pg: pg.set(**{"focal.beta": 1.0}), "focal.beta"),
    (lambda pg: pg.set(draw_class="purple"), "draw_class"), (lambda pg: pg.act("fly"), "action"),
    (lambda pg: pg.click("a", 0.0), "x"), (lambda pg: pg.click(0.0, float("nan")), "y"),
    (lambda pg: pg.load_points(np.zeros((4, 2))), "source"), (lambda pg: pg.load_points(b"0,0,a\n1,1,a\n"), "source"),
    (lambda pg: pg.load_points(b"0,zero,a\n1,1,b\n"), "source"), (lambda pg: pg.load_points("/no/such/file.csv"), "source"),
    (lambda pg: pg.load_points(np.zeros((MAX_POINTS + 1, 3))), "source"),
])
def test_bad_input_raises_valueerror_naming_the_argument(call, name):
    pg = Playground.example()
    before = (pg.dataset, pg.lr, pg.trainer.step, len(pg.trainer.y))
    # our own messages start with "<name>:"; param's name the parameter as 'Playground.<name>'
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}:|'Playground\.{re.escape(name)}'"): call(pg)
    assert (pg.dataset, pg.lr, pg.trainer.step, len(pg.trainer.y)) == before


def test_an_upload_is_never_read_as_a_path(tmp_path):
    secret = tmp_path / "secret.csv"; secret.write_text("0,0,a\n1,1,b\n")
    with pytest.raises(ValueError, match="source"): read_points(str(secret).encode()) # bytes: CSV text only
    with pytest.raises(ValueError) as e: read_points(b"root:x:0:0,1,a\n")
    assert "root" not in str(e.value) # contents are not echoed


def test_both_front_ends_forward_clicks_and_buttons():
    from lossviz.widgets.jupyter import JupyterView
    from lossviz.app.adapter import PanelView
    pg = Playground(dataset="custom", classes=2)
    jv, pv = JupyterView(pg, autostart=False), PanelView(pg, autostart=False)
    assert jv.plot.clickable and list(jv.buttons) == list(pv.buttons) == ["start", "pause", "reset", "clear"]
    jv.plot._on_browser_msg(None, {"type": "click", "x": 0.5, "y": 0.5, "trace": 0}, [])
    pv.pane.click_data = {"points": [{"x": -0.5, "y": -0.5, "curveNumber": 0}]}
    assert len(pg.trainer.y) == 2 and jv.error == "" and not pv.error.visible
    jv.plot._on_browser_msg(None, {"type": "click", "x": None, "y": 0, "trace": 0}, [])
    assert jv.error.startswith("ValueError: x:")
    # both views show the two points
    from lossviz.plots.style import json_safe
    assert json_safe(jv.plot.figure["data"][1]["x"]) == [0.5, -0.5] and json_safe(pv.pane.object.to_plotly_json()["data"][1]["x"]) == [0.5, -0.5]
    pv.controls["draw_class"].value = "class 1"
    assert jv.controls["draw_class"].value == "class 1"
    pg.close()


def test_classes_control_shows_only_where_it_has_an_effect_in_both_front_ends():
    "moons, XOR and circles have two classes whatever `classes` says: neither front end shows the control there."
    from lossviz.widgets.jupyter import JupyterView
    from lossviz.app.adapter import PanelView
    pg = Playground.example() # XOR
    jv, pv = JupyterView(pg, autostart=False), PanelView(pg, autostart=False)
    def shown():
        model = "classes" in [c.name for c in pg.controls()]
        panel = "classes" in pv.controls and pv.controls["classes"] in pv.control_box.objects
        return model, "classes" in jv.controls, panel
    for ds, want in (("moons", False), ("spiral", True), ("xor", False), ("blobs", True), ("circles", False), ("custom", True)):
        pv.controls["dataset"].value = ds # as the browser would
        assert shown() == (want,) * 3, ds
        assert pg.C == (pg.classes if want else 2), ds
        if want: # the control does something there: 4 classes in both views' draw-class options and the figure
            jv.controls["classes"].value = 4
            assert pg.C == 4 and (ds == "custom" or pv.pane.object.data[0].zmax == 4), ds # the regions' colour axis: a band per class
            assert jv.controls["draw_class"].options == list(pv.controls["draw_class"].options) == pg.class_names and len(pg.class_names) == 4, ds
            pv.controls["classes"].value = 3; assert pg.C == 3 and jv.controls["classes"].value == 3
    assert jv.error == "" and not pv.error.visible
    # a drawn set: `classes` re-labels its classes; fewer than the drawn points use is refused (error shown, nothing changes)
    jv.controls["draw_class"].value = "class 2"; assert pg.click(0.2, 0.2)
    jv.controls["classes"].value = 2
    assert jv.error.startswith("ValueError: classes: the drawn points include class 2") and pg.C == 3 and jv.controls["classes"].value == 3
    pv.controls["classes"].value = 5; assert pg.class_names == [f"class {k}" for k in range(5)] and pg.trainer.y_np.tolist() == [2]
    # back from a two-class set, the drawn set keeps its classes; a loaded set has its file's: no control
    pv.controls["dataset"].value = "moons"; pv.controls["dataset"].value = "custom"
    assert pg.C == 5 and pg.classes == 5 and shown() == (True,) * 3
    pg.load_points(b"0,0,a\n1,1,b\n0,1,c\n"); assert pg.C == 3 and shown() == (False,) * 3
    pg.close()


def test_the_page_reads_classes_from_the_url_for_datasets_that_have_it(tmp_path):
    from lossviz.app.core import PageContext, get_page
    from lossviz.app.playground import page
    for args, want in (({"dataset": "blobs", "classes": "4"}, ("blobs", 4)), ({"classes": "5", "dataset": "spiral"}, ("spiral", 5)),
                       ({"dataset": "moons", "classes": "4"}, ("moons", 2))):
        ctx = PageContext(get_page("playground"), tmp_path / "runs.sqlite", args=args)
        ex = page(ctx).playground
        assert (ex.dataset, ex.C) == want and ctx.notes == [], (args, ctx.notes)
        ex.close()
