"""Re-execute the reading-group tutorials in place, keeping their outputs (static PNG figures via kaleido), clean them,
and save each one's card picture for the index (nbs/images/tutorials/<name>.png).

    .venv/bin/python nbs/tutorials/_refresh.py                      # every tutorial
    .venv/bin/python nbs/tutorials/_refresh.py 01_softmax_collapse  # one
    .venv/bin/python nbs/tutorials/_refresh.py --cards              # only re-extract the card pictures

Needs `kaleido` (1.x; it uses the system Chromium). The committed outputs are what GitHub shows without a kernel.
"""
import base64, subprocess, sys, time
from pathlib import Path
import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
IMAGES = ROOT / "nbs" / "images" / "tutorials"
CARD = {"01_softmax_collapse": 1, "02_large_step_logistic": 0, "03_neural_collapse": 1, "04_pair_weighting": 2,
        "05_calibration": 1, "06_one_knob_families": 0, "07_flat_sharp_minima": 0, "08_harmonic_loss": 1} # which figure

def pngs(nb):
    return [o["data"]["image/png"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "data" in o and "image/png" in o["data"]]

def card(path:Path):
    "Save the tutorial's card figure for the index."
    imgs = pngs(nbformat.read(path, as_version=4))
    if not imgs: return
    IMAGES.mkdir(parents=True, exist_ok=True)
    (IMAGES / f"{path.stem}.png").write_bytes(base64.b64decode(imgs[min(CARD.get(path.stem, 0), len(imgs) - 1)]))

def refresh(path:Path):
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    subprocess.run([str(ROOT / ".venv/bin/nbdev-clean"), "--fname", str(path)], check=True)
    print(f"{path.name}: {time.perf_counter() - t0:.1f} s")
    card(path)

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    names = args or [p.stem for p in sorted(HERE.glob("[0-9]*.ipynb"))]
    for n in names:
        p = HERE / f"{Path(n).stem}.ipynb"
        card(p) if "--cards" in sys.argv else refresh(p)
