"""Tests of lossviz.data: built-in sets, splits, standardisation, torchvision-layout readers and on-device batches."""
import gzip, os, pickle, struct
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from lossviz import data
from lossviz.data import Batches, Dataset, batches, load, read_cifar_batch, read_idx, stratified_split


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: one thread is faster, and immune to OpenMP spin-waits when other jobs share the two cores."""
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------- digits, splits, standardisation

def test_digits_split_is_stratified_fixed_and_complete():
    from sklearn.datasets import load_digits
    raw = load_digits()
    ds = load("digits", standardize=False)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert len(ds.y_train) + len(ds.y_test) == 1797 and ds.input_shape == (64,) and ds.num_classes == 10
    full = np.bincount(raw.target, minlength=10)
    # every class keeps its share of the test part to within one sample
    assert np.all(np.abs(ds.counts("test").numpy() - full * len(ds.y_test) / 1797) <= 1)
    # the union of both parts is the whole data set (as multisets of rows)
    rows = np.concatenate([ds.x_train.numpy(), ds.x_test.numpy()])
    assert sorted(map(bytes, rows.astype(np.float32))) == sorted(map(bytes, raw.data.astype(np.float32)))
    again, other = load("digits", standardize=False), load("digits", standardize=False, seed=1)
    assert torch.equal(again.x_test, ds.x_test) and not torch.equal(other.x_test, ds.x_test)


def test_standardisation_uses_train_statistics_only():
    raw, std = load("digits", standardize=False), load("digits")
    mu = raw.x_train.numpy().mean(0)
    sd = raw.x_train.numpy().std(0)
    sd[sd < 1e-8] = 1.0
    np.testing.assert_allclose(std.x_train.numpy(), (raw.x_train.numpy() - mu) / sd, atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(std.x_test.numpy(), (raw.x_test.numpy() - mu) / sd, atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(std.arrays["mean"].numpy(), mu, atol=1e-5)
    # constant pixels (std 0 on train) keep scale 1 instead of dividing by zero
    assert torch.isfinite(std.x_train).all() and torch.isfinite(std.x_test).all()


def test_standardize_images_per_channel():
    xtr = torch.rand(50, 3, 4, 4) * torch.tensor([1.0, 5.0, 10.0]).view(1, 3, 1, 1)
    a, b, mean, sd = data.standardize(xtr, xtr[:5])
    ref_mean = xtr.permute(1, 0, 2, 3).reshape(3, -1).mean(1)
    torch.testing.assert_close(mean.flatten(), ref_mean)
    torch.testing.assert_close(a.permute(1, 0, 2, 3).reshape(3, -1).std(1, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)


def test_max_train_keeps_class_proportions():
    ds = load("digits", max_train=200)
    full = load("digits").counts().numpy()
    assert len(ds.y_train) == 200
    assert np.all(np.abs(ds.counts().numpy() - full * 200 / full.sum()) <= 1)
    with pytest.raises(ValueError, match="max_train: expected a value in \\[1, inf\\)"):
        load("digits", max_train=0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=10, max_size=200), st.floats(0.05, 0.95), st.integers(0, 10**6))
def test_stratified_split_is_a_partition_with_class_quotas(labels, frac, seed):
    y = np.array(labels)
    k = int(round(frac * len(y)))
    if not 1 <= k <= len(y) - 1:
        with pytest.raises(ValueError, match="test_size"):
            stratified_split(y, frac, seed)
        return
    tr, te = stratified_split(y, frac, seed)
    assert len(te) == k and sorted(np.concatenate([tr, te]).tolist()) == list(range(len(y)))
    cls, cnt = np.unique(y, return_counts=True)
    got = np.array([(y[te] == c).sum() for c in cls])
    assert np.all(np.abs(got - cnt * k / len(y)) < 1)          # largest-remainder quotas


def test_stratified_split_accepts_a_count_and_rejects_nonsense():
    y = np.repeat([0, 1], 10)
    assert len(stratified_split(y, 4)[1]) == 4
    for bad in (0, 20, -0.1, 1.0):
        with pytest.raises(ValueError, match="test_size"):
            stratified_split(y, bad)


# ---------------------------------------------------------------- blobs, moons, spiral

@pytest.mark.parametrize("C,rho,n0", [(2, 1.0, 50), (3, 4.0, 80), (5, 10.0, 100), (10, 100.0, 500)])
def test_blobs_geometric_class_sizes(C, rho, n0):
    ds = load("blobs", classes=C, imbalance=rho, samples_per_class=n0, dim=3)
    ref = [round(n0 * rho ** (-c / (C - 1))) for c in range(C)]       # n_c = n0 * rho^(-c/(C-1))
    assert ds.arrays["counts"].tolist() == ref
    assert (ds.counts() + ds.counts("test")).tolist() == ref
    assert ref[0] / ref[-1] == pytest.approx(rho, rel=0.1)


def test_blobs_geometry_and_noise():
    ds = load("blobs", classes=4, dim=6, noise=0.0, spread=2.5)
    x = torch.cat([ds.x_train, ds.x_test]); y = torch.cat([ds.y_train, ds.y_test])
    centres = ds.arrays["centres"]
    torch.testing.assert_close(x, centres[y])                               # noise 0: every point on its centre
    torch.testing.assert_close(centres.norm(dim=1), torch.full((4,), 2.5))
    noisy = load("blobs", classes=2, dim=2, samples_per_class=4000, noise=0.5)
    xs = torch.cat([noisy.x_train, noisy.x_test]); ys = torch.cat([noisy.y_train, noisy.y_test])
    c0 = noisy.arrays["centres"][0]
    assert (xs[ys == 0] - c0).std(0).sub(0.5).abs().max() < 0.03            # the asked standard deviation


def test_blobs_balanced_test_and_errors():
    ds = load("blobs", classes=3, imbalance=5, samples_per_class=100, balanced_test=True, test_size=0.3)
    assert ds.counts("test").tolist() == [30, 30, 30] and ds.counts().tolist() == ds.arrays["counts"].tolist()
    with pytest.raises(ValueError, match="classes: expected a value in \\[2, inf\\)"):
        load("blobs", classes=1)
    with pytest.raises(ValueError, match="noise: expected a value in \\[0.0, inf\\)"):
        load("blobs", noise=-1)


def test_xor_quadrants_and_circles_match_an_independent_construction():
    # xor, noise 0: labels are the sign rule, classes near-balanced, every point at least `gap` from both axes
    ds = load("xor", samples=1000, gap=0.1, seed=4)
    x, y = torch.cat([ds.x_train, ds.x_test]).numpy(), torch.cat([ds.y_train, ds.y_test]).numpy()
    assert ds.classes == ["same sign", "opposite sign"] and ds.input_shape == (2,)
    assert np.array_equal(y, (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(int))
    assert np.abs(x).min() >= 0.1 and np.abs(x).max() <= 1.0 and 0.4 < y.mean() < 0.6
    # every quadrant holds points (uniform over the four)
    q = (x[:, 0] > 0) * 2 + (x[:, 1] > 0)
    assert np.bincount(q, minlength=4).min() > 200
    # with noise some points cross the axes and keep their label (the jitter comes after labelling)
    xn = load("xor", samples=1000, noise=0.3, seed=4)
    xx, yy = torch.cat([xn.x_train, xn.x_test]).numpy(), torch.cat([xn.y_train, xn.y_test]).numpy()
    flipped = (np.sign(xx[:, 0]) != np.sign(xx[:, 1])).astype(int) != yy
    assert 0.02 < flipped.mean() < 0.4
    # a linear fit (least squares on [x, 1]) stays far from separating it; with the product feature x1*x2 it separates exactly
    A = np.c_[x, np.ones(len(x))]; w = np.linalg.lstsq(A, 2 * y - 1.0, rcond=None)[0]
    assert ((A @ w > 0) == y).mean() < 0.7
    B = np.c_[A, x[:, 0] * x[:, 1]]; w = np.linalg.lstsq(B, 2 * y - 1.0, rcond=None)[0]
    assert ((B @ w > 0) == y).mean() == 1.0
    for bad, msg in ((dict(gap=1.0), "gap: expected"), (dict(noise=-1), "noise: expected"), (dict(samples=2), "samples: expected")):
        with pytest.raises(ValueError, match=msg): load("xor", **bad)
    # circles = sklearn's make_circles on the same seed; radii 1 and factor without noise
    from sklearn.datasets import make_circles
    c = load("circles", samples=300, noise=0.05, factor=0.4, seed=2)
    xs, ys = make_circles(300, noise=0.05, factor=0.4, random_state=2)
    got = torch.cat([c.x_train, c.x_test]).numpy(); gy = torch.cat([c.y_train, c.y_test]).numpy()
    order = np.lexsort(got.T); ref = np.lexsort(xs.T)
    assert np.allclose(got[order], xs[ref], atol=1e-6) and np.array_equal(gy[order], ys[ref])
    c0 = load("circles", samples=200, noise=0.0, factor=0.25)
    r, cy = torch.cat([c0.x_train, c0.x_test]).norm(dim=1).numpy(), torch.cat([c0.y_train, c0.y_test]).numpy()
    assert np.allclose(r[cy == 0], 1.0, atol=1e-5) and np.allclose(r[cy == 1], 0.25, atol=1e-5)
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="factor: expected"): load("circles", factor=bad)


def test_moons_matches_sklearn_and_spiral_arms():
    from sklearn.datasets import make_moons
    ds = load("moons", samples=300, noise=0.05, seed=3)
    x, y = make_moons(300, noise=0.05, random_state=3)
    both = np.concatenate([ds.x_train.numpy(), ds.x_test.numpy()])
    assert sorted(map(tuple, np.round(both, 5))) == sorted(map(tuple, np.round(x.astype(np.float32), 5)))
    sp = load("spiral", samples=400, classes=4, noise=0.0, turns=1.0)
    pts = torch.cat([sp.x_train, sp.x_test]); lab = torch.cat([sp.y_train, sp.y_test])
    r = pts.norm(dim=1); t = torch.atan2(pts[:, 1], pts[:, 0])
    # noise 0: angle = 2*pi*c/C + 2*pi*turns*r (mod 2*pi)
    expect = 2 * np.pi * lab / 4 + 2 * np.pi * r
    diff = torch.remainder(t - expect + np.pi, 2 * np.pi) - np.pi
    assert diff[r > 1e-3].abs().max() < 1e-4


# ---------------------------------------------------------------- modular

@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_modular_labels_match_python(op):
    p = 11
    ds = load("modular", p=p, op=op, train_fraction=0.4, encoding="tokens", seed=5)
    ref = {"+": lambda a, b: (a + b) % p, "-": lambda a, b: (a - b) % p, "*": lambda a, b: (a * b) % p,
           "/": lambda a, b: next(c for c in range(p) if (c * b) % p == a)}[op]
    x = torch.cat([ds.x_train, ds.x_test]); y = torch.cat([ds.y_train, ds.y_test])
    pairs = sorted(map(tuple, x.tolist()))
    assert pairs == sorted((a, b) for a in range(p) for b in range(1 if op == "/" else 0, p))    # the whole table, once
    assert all(int(yy) == ref(int(a), int(b)) for (a, b), yy in zip(x.tolist(), y))
    assert len(ds.y_train) == round(0.4 * len(pairs))


def test_modular_onehot_encodes_both_operands_and_feeds_mlp():
    from lossviz import models
    oh = load("modular", p=13, seed=2); tk = load("modular", p=13, seed=2, encoding="tokens")
    assert oh.input_shape == (26,) and oh.x_train.dtype == torch.float32
    assert torch.equal(oh.x_train.sum(1), torch.full((len(oh.y_train),), 2.0))
    assert torch.equal(oh.x_train[:, :13].argmax(1), tk.x_train[:, 0]) and torch.equal(oh.x_train[:, 13:].argmax(1), tk.x_train[:, 1])
    net = models.get("mlp", data=oh)
    assert net(oh.x_test).shape == (len(oh.y_test), 13)
    with pytest.raises(ValueError, match="encoding='onehot'"):
        models.get("mlp", in_features=2, num_classes=13)(tk.x_train)


def test_modular_errors():
    with pytest.raises(ValueError, match="p: expected a prime modulus for op='/', got 15"):
        load("modular", p=15, op="/")
    with pytest.raises(ValueError, match="train_fraction: expected a value in \\(0, 1\\)"):
        load("modular", p=5, train_fraction=1.0)


# ---------------------------------------------------------------- IDX and CIFAR readers, on files written here

def _idx_bytes(arr, code=0x08, fmt="B"):
    """An IDX file written by hand (independently of lossviz.data.write_idx)."""
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    return head + struct.pack(f">{arr.size}{fmt}", *arr.flatten().tolist())


def _write_mnist(root, folder, n_train=30, n_test=12, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"; raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8); labs = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr, dims in (("images", imgs, "idx3"), ("labels", labs, "idx1")):
            name = raw / f"{split}-{kind}-{dims}-ubyte"
            blob = _idx_bytes(arr)
            if gz and kind == "images":
                with gzip.open(str(name) + ".gz", "wb") as f: f.write(blob)
            else: name.write_bytes(blob)
        out[split] = (imgs, labs)
    return out


def test_read_idx_plain_gz_and_wide_dtypes(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_idx_bytes(a))
    with gzip.open(tmp_path / "a.gz", "wb") as f: f.write(_idx_bytes(a))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)
    b = np.array([[-5, 70000], [3, -1]], dtype=np.int32)
    (tmp_path / "b").write_bytes(_idx_bytes(b, 0x0C, "i"))
    np.testing.assert_array_equal(read_idx(tmp_path / "b"), b)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(a)[:-3])
    with pytest.raises(ValueError, match=r"promises shape \(2, 3, 4\)"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_loaders_read_torchvision_layout(tmp_path, name, folder):
    raw = _write_mnist(tmp_path, folder)
    ds = load(name, root=tmp_path, standardize=False)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_test.shape == (12, 1, 28, 28)
    np.testing.assert_allclose(ds.x_train[:, 0].numpy(), raw["train"][0] / 255.0, atol=1e-6)
    assert ds.y_test.tolist() == raw["t10k"][1].tolist()
    st = load(name, root=tmp_path)                                   # standardised with train statistics
    mu, sd = (raw["train"][0] / 255.0).mean(), (raw["train"][0] / 255.0).std()
    np.testing.assert_allclose(st.x_test[:, 0].numpy(), (raw["t10k"][0] / 255.0 - mu) / sd, atol=1e-4)
    assert load(name, root=tmp_path, flatten=True, max_train=10, max_test=5).x_train.shape == (10, 784)
    if name == "fashion_mnist": assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"


def test_mnist_root_from_env_and_missing_files_message(tmp_path, monkeypatch):
    _write_mnist(tmp_path / "here", "MNIST", gz=False)
    monkeypatch.setenv("LOSSVIZ_DATA", str(tmp_path / "here"))
    assert load("MNIST").x_train.shape[0] == 30
    monkeypatch.setenv("LOSSVIZ_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as e:
        load("mnist")
    msg = str(e.value)
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert str(tmp_path / "empty" / "MNIST" / "raw" / f) in msg
    assert "torchvision.datasets.MNIST(" in msg and "download=True" in msg and "LOSSVIZ_DATA" in msg


def _write_cifar(root, n_per_batch=4, protocol=2, bytes_keys=False, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"; folder.mkdir(parents=True)
    k = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8); lab = rng.integers(0, 10, n_per_batch).tolist()
        with open(folder / name, "wb") as f: pickle.dump({k("data"): d, k("labels"): lab, k("batch_label"): name}, f, protocol=protocol)
        written[name] = (d, lab)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({k("label_names"): [f"c{i}" for i in range(10)], k("num_vis"): 3072}, f, protocol=protocol)
    return written


@pytest.mark.parametrize("protocol,bytes_keys", [(2, False), (2, True), (pickle.HIGHEST_PROTOCOL, False)])
def test_cifar10_reads_python_batches(tmp_path, protocol, bytes_keys):
    w = _write_cifar(tmp_path, protocol=protocol, bytes_keys=bytes_keys)
    ds = load("cifar10", root=tmp_path, standardize=False)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert ds.classes == [f"c{i}" for i in range(10)]
    d, lab = w["data_batch_2"]
    # row layout: 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    n, c, i, j = 1, 2, 5, 17
    assert ds.x_train[4 + n, c, i, j].item() == pytest.approx(d[n, c * 1024 + i * 32 + j] / 255.0)
    assert ds.y_train[4:8].tolist() == lab and ds.y_test.tolist() == w["test_batch"][1]
    st = load("cifar10", root=tmp_path)
    assert st.arrays["mean"].shape == (3, 1, 1)
    torch.testing.assert_close(st.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)


class _Evil:
    def __reduce__(self): return (os.getcwd, ())


def test_cifar_reader_refuses_code_in_pickles(tmp_path):
    with open(tmp_path / "data_batch_1", "wb") as f: pickle.dump({"data": _Evil(), "labels": [0]}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.getcwd|refusing to load"):
        read_cifar_batch(tmp_path / "data_batch_1")


def test_cifar10_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load("cifar-10", root=tmp_path)
    msg = str(e.value)
    assert all(str(tmp_path / "cifar-10-batches-py" / n) in msg for n in ("data_batch_1", "data_batch_5", "test_batch"))
    assert "torchvision.datasets.CIFAR10(" in msg


# ---------------------------------------------------------------- load, names, Dataset

def test_load_names_and_errors():
    assert data.names() == ["digits", "blobs", "moons", "spiral", "xor", "circles", "modular", "mnist", "fashion_mnist", "cifar10"]
    with pytest.raises(ValueError) as e:
        load("svhn")
    assert all(n in str(e.value) for n in data.names()) and "'svhn'" in str(e.value)
    with pytest.raises(TypeError, match="load\\('moons'\\): unknown argument 'sample'; moons takes: samples, noise"):
        load("moons", sample=10)
    with pytest.raises(TypeError, match="name: expected a dataset name"):
        load(3)


@pytest.mark.parametrize("name,kw", [("digits", dict(max_train=100, image=True)), ("blobs", dict(classes=4, imbalance=5.0, dim=3)),
                                     ("moons", dict(samples=80)), ("spiral", dict(classes=4)), ("modular", dict(p=11, op="*")),
                                     ("xor", dict(samples=60, noise=0.1)), ("circles", dict(samples=60, factor=0.2))])
def test_info_is_json_and_rebuilds_the_dataset(name, kw):
    import json
    ds = load(name, **kw)
    again = load(ds.name, **json.loads(json.dumps(ds.info)))
    for a in ("x_train", "y_train", "x_test", "y_test"): assert torch.equal(getattr(ds, a), getattr(again, a))


def test_info_rebuilds_image_sets(tmp_path):
    _write_mnist(tmp_path, "MNIST"); _write_cifar(tmp_path)
    for name in ("mnist", "cifar10"):
        ds = load(name, root=tmp_path, max_train=10)
        assert torch.equal(load(name, **ds.info).x_train, ds.x_train)


def test_dataset_validates_and_moves():
    ds = load("moons", samples=50)
    assert repr(ds).startswith("Dataset('moons': train (40, 2), test (10, 2), 2 classes")
    assert ds.to("cpu").x_train.device.type == "cpu"
    with pytest.raises(ValueError, match="y_train: expected torch.int64 labels, got torch.int32"):
        Dataset(torch.zeros(2, 1), torch.zeros(2, dtype=torch.int32), torch.zeros(1, 1), torch.zeros(1).long(), ["a"])
    with pytest.raises(ValueError, match="x_train: expected float32 inputs"):
        Dataset(torch.zeros(2, 1, dtype=torch.float64), torch.zeros(2).long(), torch.zeros(1, 1), torch.zeros(1).long(), ["a"])
    with pytest.raises(ValueError, match="y_test: expected 1 labels"):
        Dataset(torch.zeros(2, 1), torch.zeros(2).long(), torch.zeros(1, 1), torch.zeros(3).long(), ["a"])


# ---------------------------------------------------------------- batches

@settings(max_examples=40, deadline=None)
@given(st.integers(1, 120), st.integers(1, 50), st.booleans(), st.booleans(), st.integers(0, 99))
def test_batches_cover_every_sample_once(n, bs, shuffle, drop_last, seed):
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1); y = torch.arange(n) % 3
    b = batches(x, y, bs, shuffle=shuffle, drop_last=drop_last, seed=seed)
    got = [(xb, yb) for xb, yb in b]
    assert len(got) == len(b)
    ids = torch.cat([xb[:, 0] for xb, _ in got]).long() if got else torch.zeros(0, dtype=torch.long)
    assert torch.equal(torch.cat([yb for _, yb in got]) if got else ids, ids % 3)      # x and y stay paired
    assert len(set(ids.tolist())) == len(ids)
    assert len(ids) == (n // bs * bs if drop_last else n)
    assert all(len(yb) == bs for _, yb in got[:-1])
    if not shuffle: assert ids.tolist() == list(range(len(ids)))


def test_batches_seeded_epochs_differ_and_replay():
    ds = load("digits")
    b1 = batches(ds.x_train, ds.y_train, 64, seed=7)
    e1, e2 = torch.cat([y for _, y in b1]), torch.cat([y for _, y in b1])
    assert not torch.equal(e1, e2)                                                  # a new order each epoch
    b2 = batches(ds.x_train, ds.y_train, 64, seed=7)
    assert torch.equal(torch.cat([y for _, y in b2]), e1) and torch.equal(torch.cat([y for _, y in b2]), e2)


@pytest.mark.parametrize("bs,m", [(32, 4), (20, 2), (30, 3), (10, 10)])
def test_m_per_class_batches(bs, m):
    y = load("digits").y_train
    x = torch.arange(len(y), dtype=torch.float32).unsqueeze(1)              # x holds each sample's index
    b = batches(x, y, batch_size=bs, m_per_class=m, seed=1)
    assert len(b) == len(y) // bs
    seen = []
    for xb, yb in b:
        cnt = torch.bincount(yb, minlength=10)
        assert (cnt[cnt > 0] == m).all() and int((cnt > 0).sum()) == bs // m
        rows = xb[:, 0].long()
        assert torch.equal(y[rows], yb)                                     # x rows come with their own labels
        seen.append(rows)
        for c in yb.unique(): assert len(rows[yb == c].unique()) == m       # distinct samples within a class
    assert len(torch.cat(seen).unique()) > 0.5 * len(y)                     # spread over the data


def test_m_per_class_small_classes_and_errors():
    x = torch.randn(9, 2); y = torch.tensor([0, 0, 1, 1, 1, 1, 1, 2, 2])
    for xb, yb in batches(x, y, 6, m_per_class=3):                    # classes of 2 must repeat samples
        assert sorted(torch.bincount(yb, minlength=3)[torch.bincount(yb, minlength=3) > 0].tolist()) == [3, 3]
    with pytest.raises(ValueError, match="batch_size: expected a multiple of m_per_class=4, got 6"):
        batches(x, y, 6, m_per_class=4)
    with pytest.raises(ValueError, match="m_per_class: batch_size=8 / m_per_class=2 = 4 classes per batch, but y has only 3 classes"):
        batches(x, y, 8, m_per_class=2)
    with pytest.raises(ValueError, match="y: expected 9 labels"):
        batches(x, y[:5], 4)
    with pytest.raises(ValueError, match="batch_size: expected a value in \\[1, inf\\)"):
        batches(x, y, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_live_on_the_gpu():
    ds = load("digits")
    for b in (ds.loader("train", 64, device="cuda"), ds.loader("train", 64, device="cuda", m_per_class=4)):
        xb, yb = next(iter(b))
        assert xb.is_cuda and yb.is_cuda and b.x.is_cuda
    g = ds.to("cuda")
    assert g.x_test.is_cuda and torch.equal(torch.cat([y for _, y in g.loader("train", 64, seed=3)]).cpu(),
                                            torch.cat([y for _, y in ds.loader("train", 64, seed=3)]))
