"""Tests of lossviz.core: devices, seeds, validation messages and HParam."""
import pytest
import torch
from lossviz.core import HParam, check_labels, check_range, check_tensor, pick_device, seed_everything


def test_pick_device_cpu_and_auto():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else pick_device("auto").type)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_pick_device_cuda_missing_is_clear():
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda")


def test_seed_everything_reproduces():
    seed_everything(7); a = torch.randn(5)
    seed_everything(7); assert torch.equal(a, torch.randn(5))
    with pytest.raises(ValueError, match="seed: expected an int"):
        seed_everything(1.5)


@pytest.mark.parametrize("bad,msg", [
    (torch.zeros(3), "x: expected a 2-D tensor, got shape (3,)"),
    (torch.zeros(3, 2, dtype=torch.long), "x: expected a floating dtype, got torch.int64"),
    (torch.tensor([[0.0, float("inf")]]), "x: expected finite values"),
])
def test_check_tensor_messages(bad, msg):
    with pytest.raises(ValueError) as e:
        check_tensor(bad, "x", ndim=2, dtype="float", finite=True)
    assert msg in str(e.value)


def test_check_labels_range_and_count():
    with pytest.raises(ValueError, match=r"targets: expected values in \[0, 2\] for 3 classes, got values in \[-1, 1\]"):
        check_labels(torch.tensor([-1, 1]), "targets", num_classes=3)
    with pytest.raises(ValueError, match="expected 3 labels"):
        check_labels(torch.tensor([0, 1]), n=3)


def test_hparam_bounds_and_types():
    h = HParam(0.5, 0.0, 1.0, doc="q")
    assert h.validate(1.0, "q") == 1.0
    with pytest.raises(ValueError, match=r"q: expected a value in \[0.0, 1.0\], got 2"):
        h.validate(2, "q")
    with pytest.raises(ValueError, match="expected an integer"):
        HParam(3, 1, 5).validate(2.5, "k")
    with pytest.raises(ValueError, match="low <= high"):
        HParam(1.0, 2.0, 1.0)
    assert check_range(3, "n", 1, None, integer=True) == 3


def test_import_is_light():
    import subprocess, sys
    code = "import sys, lossviz, lossviz.core, lossviz.losses; bad = [m for m in ('plotly', 'panel', 'ipywidgets', 'sqlite3') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"importing lossviz pulled in UI/store modules: {out}"


def test_loss_helpers_live_in_core():
    # issue 14: the helpers several science modules use are on the ground floor
    from lossviz.core import check_logits, reduce, finish, trusted_inputs, inputs_trusted
    z, y = torch.randn(3, 4), torch.tensor([0, 3, 1])
    check_logits(z, y)
    with pytest.raises(ValueError, match="targets: expected values in"): check_logits(z, y + 1)
    with trusted_inputs():
        assert inputs_trusted()
        check_logits(z, y + 1)  # skipped inside trusted_inputs()
    assert not inputs_trusted()
    assert reduce(torch.zeros(0)).item() == 0.0
    with pytest.raises(ValueError, match="too big"): finish(torch.tensor([1.0, float("inf")]), z, overflow=lambda: "too big")
    with pytest.raises(ValueError, match="logits: expected finite values"): finish(torch.tensor([float("nan")]), torch.tensor([[float("nan"), 0.0]]), overflow="x")
