"""Tests of lossviz.models: shapes, heads (cosine, harmonic) against direct computations, their properties, errors, and training quality."""
import math
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

from lossviz import data, models
from lossviz.models import CosineHead, HarmonicHead, Net, get, make_head


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one thread is faster, and far faster when other jobs share the two cores (OpenMP spin-waits)."""
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------- shapes and the features/head split

@pytest.mark.parametrize("name,shape,kw,D", [
    ("mlp", (64,), {}, 128),
    ("mlp", (1, 28, 28), dict(hidden=(32, 16)), 16),
    ("mlp", (2,), dict(hidden=()), 2),
    ("mlp", (64,), dict(norm="batch", dropout=0.1, activation="gelu"), 128),
    ("cnn", (1, 8, 8), dict(width=4, feature_dim=12), 12),
    ("cnn", (1, 28, 28), dict(width=4), 128),
    ("cnn", (3, 32, 32), dict(width=4, feature_dim=20), 20),
    ("cnn", (784,), dict(width=4), 128),
    ("resnet18", (3, 32, 32), dict(width=4), 32),
    ("resnet18", (1, 28, 28), dict(width=2), 16),
])
@pytest.mark.parametrize("head", ["linear", "cosine", "harmonic"])
def test_features_and_head_shapes(name, shape, kw, D, head):
    net = get(name, shape, 7, head=head, seed=0, **kw).eval()
    x = torch.randn(3, *shape)
    with torch.no_grad():
        h = net.features(x)
        assert h.shape == (3, D) and net.feature_dim == D
        assert net.head.weight.shape == (7, D)
        torch.testing.assert_close(net(x), net.head(h))
    assert (net.head.bias is None) == (head != "linear")


def test_embedding_option_and_no_head():
    emb = get("mlp", in_features=64, embedding_dim=24, head="none")
    x = torch.randn(5, 64)
    assert isinstance(emb.head, nn.Identity) and emb.feature_dim == 24 and emb.num_classes is None
    assert emb(x).shape == (5, 24) and torch.equal(emb(x), emb.features(x))
    with_head = get("cnn", (1, 8, 8), 10, width=4, embedding_dim=6, head="cosine")
    assert with_head.features(torch.randn(2, 64)).shape == (2, 6) and with_head.head.weight.shape == (10, 6)
    # the embedding layer is linear (no activation after it): features can be negative
    assert (get("mlp", in_features=8, hidden=(16,), embedding_dim=4, head=None, seed=0)(torch.randn(64, 8)) < 0).any()


def test_get_reads_dataset_and_checks_inputs():
    ds = data.load("digits")
    net = get("mlp", data=ds)
    assert net.input_shape == (64,) and net.num_classes == 10
    img = data.load("digits", image=True)
    cnet = get("cnn", data=img, width=4)
    assert cnet(img.x_test[:4]).shape == (4, 10) and cnet(ds.x_test[:4]).shape == (4, 10)   # flat digits reshape to 1x8x8
    with pytest.raises(ValueError, match=r"x: cnn takes inputs \[N, 1, 8, 8\] or \[N, 64\], got \(2, 1, 9, 9\)"):
        cnet(torch.randn(2, 1, 9, 9))
    with pytest.raises(ValueError, match=r"x: mlp takes inputs \[N, 64\]"):
        net(torch.randn(2, 65))
    with pytest.raises(TypeError, match="x: expected a torch.Tensor, got list"):
        net([[0.0] * 64])


def test_get_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="name: expected one of 'mlp', 'cnn', 'resnet18'; got 'resnet50'"):
        get("resnet50", in_features=3, num_classes=2)
    with pytest.raises(TypeError, match=r"get\('cnn'\): unknown argument 'hidden'; cnn takes: width, feature_dim, embedding_dim"):
        get("cnn", (1, 8, 8), 10, hidden=(3,))
    with pytest.raises(ValueError, match="input_shape: mlp needs the shape of one sample"):
        get("mlp", num_classes=3)
    with pytest.raises(ValueError, match="num_classes: head='linear' needs the number of classes"):
        get("mlp", in_features=4)
    with pytest.raises(ValueError, match="in_features: give either input_shape or in_features"):
        get("mlp", (4,), 3, in_features=4)
    with pytest.raises(ValueError, match="activation: expected one of 'relu'"):
        get("mlp", in_features=4, num_classes=3, activation="swish2")
    with pytest.raises(ValueError, match="head: expected one of 'linear', 'cosine', 'harmonic', 'none'; got 'arc'"):
        get("mlp", in_features=4, num_classes=3, head="arc")
    with pytest.raises(TypeError, match="head_kw: the harmonic head takes n, eps; got unknown 's'"):
        get("mlp", in_features=4, num_classes=3, head="harmonic", head_kw=dict(s=3))
    with pytest.raises(ValueError, match="input_shape: the cnn pools twice and needs H, W >= 4"):
        get("cnn", (1, 3, 3), 2)
    with pytest.raises(ValueError, match=r"input_shape: expected images \[C, H, W\]"):
        get("resnet18", (50,), 2)
    assert models.names() == ["mlp", "cnn", "resnet18"]


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    for name, shape, kw in (("mlp", (64,), {}), ("cnn", (1, 8, 8), dict(width=4)), ("resnet18", (3, 16, 16), dict(width=2))):
        for head in ("linear", "cosine", "harmonic"):
            a = get(name, shape, 5, head=head, seed=3, **kw).state_dict()
            torch.manual_seed(123); state = torch.get_rng_state()
            b = get(name, shape, 5, head=head, seed=3, **kw).state_dict()
            assert torch.equal(torch.get_rng_state(), state)             # seed= does not consume the global generator
            c = get(name, shape, 5, head=head, seed=4, **kw).state_dict()
            assert all(torch.equal(a[k], b[k]) for k in a)
            assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point() and a[k].numel() > 1)


# ---------------------------------------------------------------- resnet18 structure

def test_resnet18_has_the_cifar_stem_and_standard_size():
    net = get("resnet18", (3, 32, 32), 10)
    assert sum(p.numel() for p in net.parameters()) == 11_173_962          # the usual CIFAR ResNet-18 count
    stem = net.body[0]
    assert isinstance(stem, nn.Conv2d) and stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for m in net.body if isinstance(m, models.BasicBlock)]
    net.eval()
    with torch.no_grad(): net.features(torch.randn(1, 3, 32, 32))
    for h in hooks: h.remove()
    assert sizes == [(64, 32, 32)] * 2 + [(128, 16, 16)] * 2 + [(256, 8, 8)] * 2 + [(512, 4, 4)] * 2


def test_basic_block_matches_a_hand_computation():
    torch.manual_seed(0)
    blk = models.BasicBlock(3, 5, stride=2).eval()
    x = torch.randn(2, 3, 8, 8)
    bn = lambda m, t: F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
    ref = F.relu(bn(blk.bn2, F.conv2d(F.relu(bn(blk.bn1, F.conv2d(x, blk.conv1.weight, stride=2, padding=1))), blk.conv2.weight, padding=1))
                 + bn(blk.shortcut[1], F.conv2d(x, blk.shortcut[0].weight, stride=2)))
    with torch.no_grad(): torch.testing.assert_close(blk(x), ref)


# ---------------------------------------------------------------- cosine head

@settings(max_examples=40, deadline=None)
@given(st.floats(0.1, 64.0), st.floats(-6, 6), st.integers(0, 10**6))
def test_cosine_logits_bounded_by_s_and_scale_free(s, log_scale, seed):
    g = torch.Generator().manual_seed(seed)
    head = CosineHead(6, 4, s=s)
    h = torch.randn(16, 6, generator=g) * 10 ** log_scale
    z = head(h)
    assert z.abs().max() <= s * (1 + 1e-5)
    ref = s * (h / h.norm(dim=1, keepdim=True)) @ (head.weight / head.weight.norm(dim=1, keepdim=True)).T
    torch.testing.assert_close(z, ref, atol=1e-4 * s, rtol=1e-4)
    torch.testing.assert_close(head(h * 3.7), z, atol=1e-4 * s, rtol=1e-4)


def test_cosine_learnable_scale_gets_gradients():
    head = CosineHead(4, 3, s=5.0, learn_scale=True)
    assert head.s.item() == pytest.approx(5.0)
    F.cross_entropy(head(torch.randn(8, 4)), torch.randint(0, 3, (8,))).backward()
    assert head.log_s.grad is not None and head.log_s.grad.abs() > 0
    fixed = CosineHead(4, 3, s=5.0)
    assert "log_s" in dict(fixed.named_buffers()) and "log_s" not in dict(fixed.named_parameters())


# ---------------------------------------------------------------- harmonic head

def _harmax_loop(h, w, n):
    """Reference HarMax: p_c = d_c^-n / sum_j d_j^-n, one sample and one class at a time."""
    out = torch.zeros(h.shape[0], w.shape[0], dtype=torch.float64)
    for i in range(h.shape[0]):
        d = [math.sqrt(sum((float(h[i, k]) - float(w[c, k])) ** 2 for k in range(h.shape[1]))) for c in range(w.shape[0])]
        tot = sum(dc ** -n for dc in d)
        for c in range(w.shape[0]): out[i, c] = d[c] ** -n / tot
    return out


@pytest.mark.parametrize("n", [0.5, 1.0, 3.0, 8.0])
def test_harmonic_head_is_harmax(n):
    torch.manual_seed(1)
    head = HarmonicHead(5, 4, n=n, eps=0.0)
    h = torch.randn(6, 5)
    with torch.no_grad():
        torch.testing.assert_close(head(h).softmax(-1).double(), _harmax_loop(h, head.weight, n), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(head(h), -n * torch.cdist(h, head.weight).log(), atol=1e-4, rtol=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.floats(1e-2, 1e2), st.floats(0.5, 10.0), st.integers(0, 10**6))
def test_harmax_scale_invariance(scale, n, seed):
    """Scaling all distances by one factor (features and centres together) leaves the probabilities unchanged."""
    g = torch.Generator().manual_seed(seed)
    head = HarmonicHead(4, 5, n=n, eps=0.0)
    with torch.no_grad(): head.weight.copy_(torch.randn(5, 4, generator=g))
    h = torch.randn(7, 4, generator=g)
    other = HarmonicHead(4, 5, n=n, eps=0.0)
    with torch.no_grad():
        other.weight.copy_(head.weight * scale)
        torch.testing.assert_close(other(h * scale).softmax(-1), head(h).softmax(-1), atol=2e-5, rtol=1e-4)
        # shifting every logit by the same constant is what the scaling does
        diff = other(h * scale) - head(h)
        torch.testing.assert_close(diff, torch.full_like(diff, -n * math.log(scale)), atol=1e-3, rtol=1e-4)


def test_harmonic_loss_vanishes_at_the_class_centre_with_finite_weights():
    head = HarmonicHead(3, 4, n=4.0)
    y = torch.tensor([2])
    near = [F.cross_entropy(head(head.weight[2:3].detach() + t * torch.ones(1, 3)), y).item() for t in (1e-1, 1e-2, 1e-3)]
    assert near[0] > near[1] > near[2] and near[2] < 1e-6
    h = head.weight[1:2].detach().clone().requires_grad_()
    F.cross_entropy(head(h), torch.tensor([1])).backward()
    assert torch.isfinite(h.grad).all() and torch.isfinite(head.weight.grad).all()


def test_harmonic_gradients_match_finite_differences():
    torch.manual_seed(2)
    head = HarmonicHead(4, 3, n=2.5, eps=1e-6).double()
    h = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: head(t), (h,))


def test_harmonic_default_exponent_is_sqrt_dim():
    assert HarmonicHead(100, 3).n == pytest.approx(10.0)
    assert get("mlp", in_features=8, num_classes=3, hidden=(49,), head="harmonic").head.n == pytest.approx(7.0)


def test_make_head_standalone():
    lin = make_head("linear", 5, 3, bias=False)
    assert isinstance(lin, nn.Linear) and lin.bias is None
    assert isinstance(make_head("none", 5, None), nn.Identity)
    with pytest.raises(TypeError, match="head_kw: head='none' takes no arguments"):
        make_head("none", 5, None, s=2)


# ---------------------------------------------------------------- quality: a plain loop on digits


@pytest.mark.parametrize("head,opt,lr", [("linear", "adam", 1e-3), ("linear", "sgd", 0.05), ("cosine", "adam", 1e-3), ("harmonic", "adam", 1e-3)])
def test_mlp_trains_to_95_percent_on_digits(head, opt, lr):
    ds = data.load("digits")
    net = get("mlp", data=ds, head=head, seed=0)
    o = torch.optim.Adam(net.parameters(), lr=lr) if opt == "adam" else torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    loader = ds.loader("train", batch_size=64, seed=0)
    for _ in range(15):
        for xb, yb in loader:
            loss = F.cross_entropy(net(xb), yb)
            o.zero_grad(); loss.backward(); o.step()
    with torch.no_grad(): acc = (net(ds.x_test).argmax(1) == ds.y_test).float().mean().item()
    assert acc >= 0.95, f"{head}/{opt}: test accuracy {acc:.3f}"


def test_cnn_and_small_resnet_learn_digits_images():
    ds = data.load("digits", image=True, max_train=600)
    for name, kw in (("cnn", dict(width=8, feature_dim=32)), ("resnet18", dict(width=8))):
        net = get(name, data=ds, seed=0, **kw)
        o = torch.optim.Adam(net.parameters(), lr=3e-3)
        for epoch in range(6):
            for xb, yb in ds.loader("train", batch_size=64, seed=epoch):
                o.zero_grad(); F.cross_entropy(net(xb), yb).backward(); o.step()
        net.eval()
        with torch.no_grad(): acc = (net(ds.x_test).argmax(1) == ds.y_test).float().mean().item()
        assert acc >= 0.8, f"{name}: test accuracy {acc:.3f}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_models_run_on_the_gpu():
    for name, shape, kw in (("mlp", (64,), {}), ("cnn", (3, 32, 32), dict(width=8)), ("resnet18", (3, 32, 32), {})):
        for head in ("linear", "cosine", "harmonic"):
            net = get(name, shape, 10, head=head, seed=0, **kw).cuda()
            x = torch.randn(4, *shape, device="cuda")
            out = net(x); out.sum().backward()
            assert out.is_cuda and net.features(x).shape[0] == 4
            cpu = get(name, shape, 10, head=head, seed=0, **kw).eval()
            net.eval()
            with torch.no_grad(): torch.testing.assert_close(net(x).cpu(), cpu(x.cpu()), atol=1e-3, rtol=1e-3)
