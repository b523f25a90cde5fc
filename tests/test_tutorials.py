"""The reading-group tutorials (nbs/tutorials/NN_*.ipynb) as a test tier: each notebook is executed top to bottom in a
fresh kernel, and fails when the claim it asserts does not hold.

Run only this tier with `pytest -m tutorials`; leave it out with `-m "not tutorials"`. nbdev-test skips the folder
(nbs/tutorials/.notest), so every tutorial runs exactly once in CI. The figures are built but not rendered to PNG here
(LOSSVIZ_TUTORIAL_STATIC=0): rendering is for the committed outputs, which `python nbs/tutorials/_refresh.py`
re-executes with kaleido.
"""
import os, time
from pathlib import Path
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TUTORIALS = Path(__file__).resolve().parent.parent / "nbs" / "tutorials"
NOTEBOOKS = sorted(p for p in TUTORIALS.glob("[0-9]*.ipynb"))


def test_tutorials_found():
    "The tier is not empty by accident (a moved folder would silently test nothing)."
    assert len(NOTEBOOKS) >= 1, f"no tutorials found in {TUTORIALS}"
    assert (TUTORIALS / ".notest").exists(), "nbs/tutorials/.notest keeps nbdev-test from running the tutorials a second time"


def test_index_lists_every_tutorial():
    "index.ipynb has a row with a link and an existing card picture for every numbered tutorial (07 was missing once)."
    index = "".join(c.source for c in nbformat.read(TUTORIALS / "index.ipynb", as_version=4).cells)
    for p in NOTEBOOKS:
        assert f"]({p.name})" in index, f"nbs/tutorials/index.ipynb has no link to {p.name}"
        card = TUTORIALS.parent / "images" / "tutorials" / f"{p.stem}.png"
        assert f"../images/tutorials/{card.name}" in index and card.exists(), f"no card picture {card} for {p.name} in the index"


def _error_summary(nb) -> str:
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                return f"{o['ename']}: {o['evalue']}\nin cell:\n{c.source[:1500]}"
    return ""


@pytest.mark.tutorials
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial(path, monkeypatch, tmp_path):
    "Execute one tutorial in a fresh kernel; an assertion of the paper's claim that fails fails the test."
    monkeypatch.setenv("LOSSVIZ_TUTORIAL_STATIC", "0") # build the figures, skip the PNG rendering
    monkeypatch.setenv("LOSSVIZ_TUTORIAL_SCALE", os.environ.get("LOSSVIZ_TUTORIAL_SCALE", "cpu"))
    monkeypatch.setenv("LOSSVIZ_STORE", str(tmp_path / "runs.sqlite")) # nothing written into the repository
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1")) # the tutorials train tiny models
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError:
        pytest.fail(f"{path.name} failed:\n{_error_summary(nb)}", pytrace=False)
    print(f"{path.name}: {time.perf_counter() - t0:.1f} s")
