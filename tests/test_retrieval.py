"""Retrieval metrics against pytorch-metric-learning's AccuracyCalculator and a per-query loop."""
import pytest
import torch
import torch.nn.functional as F
from lossviz.retrieval import knn, retrieval_metrics

pytest.importorskip("pytorch_metric_learning")
from pytorch_metric_learning.distances import CosineSimilarity  # noqa: E402
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator  # noqa: E402
from pytorch_metric_learning.utils.inference import CustomKNN  # noqa: E402


def data(seed, n=120, d=8, classes=9, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    centers = torch.randn(classes, d, generator=g, dtype=dtype)
    return centers[y] + 0.9 * torch.randn(n, d, generator=g, dtype=dtype), y


def pml(e, y, ref=None, ref_y=None):
    calc = AccuracyCalculator(include=("precision_at_1", "r_precision", "mean_average_precision_at_r"), k="max_bin_count",
                              knn_func=CustomKNN(CosineSimilarity()))
    if ref is None: return calc.get_accuracy(e, y, e, y, ref_includes_query=True)
    return calc.get_accuracy(e, y, ref, ref_y, ref_includes_query=False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pml_same_source(seed):
    e, y = data(seed)
    y[0] = 99  # a lone query: left out by both
    ours, theirs = retrieval_metrics(e, y, ks=(1,), chunk=17), pml(e, y)
    assert ours.recall_at_1 == pytest.approx(theirs["precision_at_1"], abs=1e-12)
    assert ours.r_precision == pytest.approx(theirs["r_precision"], abs=1e-12)
    assert ours.map_at_r == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-12)
    assert ours.n_queries == len(y) - 1


def test_matches_pml_separate_reference():
    e, y = data(3, n=80)
    r, ry = data(4, n=150)
    ours, theirs = retrieval_metrics(e, y, ks=(1,), reference=r, reference_labels=ry), pml(e, y, r, ry)
    assert ours.recall_at_1 == pytest.approx(theirs["precision_at_1"], abs=1e-12)
    assert ours.map_at_r == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-12)
    assert ours.r_precision == pytest.approx(theirs["r_precision"], abs=1e-12)


def test_recall_at_k_by_hand():
    e, y = data(5, n=50)
    en = F.normalize(e, dim=1); S = en @ en.T; S.fill_diagonal_(-float("inf"))
    order = S.argsort(1, descending=True)
    for k in (1, 2, 4, 8):
        want = sum(bool((y[order[q, :k]] == y[q]).any()) for q in range(50) if (y == y[q]).sum() > 1) / sum(int((y == y[q]).sum() > 1) for q in range(50))
        assert retrieval_metrics(e, y, ks=(k,)).recall_at[k] == pytest.approx(want)
    m = retrieval_metrics(e, y)
    assert [m.recall_at[k] for k in (1, 2, 4, 8)] == sorted(m.recall_at.values())


def test_perfect_and_chance_embeddings():
    y = torch.arange(10).repeat_interleave(5)
    perfect = F.one_hot(y, 10).double() + 0.01 * torch.randn(50, 10, dtype=torch.float64)
    m = retrieval_metrics(perfect, y)
    assert m.recall_at_1 == 1.0 and m.map_at_r == pytest.approx(1.0) and m.r_precision == pytest.approx(1.0)
    assert set(m.as_dict("test/")) == {"test/recall@1", "test/recall@2", "test/recall@4", "test/recall@8", "test/r_precision", "test/map@r"}


def test_knn_chunks_agree_and_exclude_self():
    e, _ = data(6, n=64)
    a = knn(e, 5, chunk=7); b = knn(e, 5, chunk=1000)
    torch.testing.assert_close(a[0], b[0]); assert (a[1] != torch.arange(64)[:, None]).all()


def test_bad_input():
    e, y = data(7, n=10)
    with pytest.raises(ValueError, match="reference_labels: expected labels"): retrieval_metrics(e, y, reference=e)
    with pytest.raises(ValueError, match=r"reference: expected shape \[\*, 8\]"): retrieval_metrics(e, y, reference=torch.randn(5, 3), reference_labels=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="embeddings: expected finite values"): retrieval_metrics(e * float("nan"), y)
    with pytest.raises(ValueError, match="labels: expected 10 labels"): retrieval_metrics(e, y[:4])
