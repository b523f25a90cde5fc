"""Re-execute the reading-group tutorials in place, keeping their outputs (static PNG figures via kaleido), then clean them.

    .venv/bin/python nbs/tutorials/_refresh.py                  # every tutorial
    .venv/bin/python nbs/tutorials/_refresh.py 01_softmax_collapse  # one

Needs `kaleido` (1.x; it uses the system Chromium). The committed outputs are what GitHub shows without a kernel.
"""
import subprocess, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

def refresh(path:Path):
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    subprocess.run([str(ROOT / ".venv/bin/nbdev-clean"), "--fname", str(path)], check=True)
    print(f"{path.name}: {time.perf_counter() - t0:.1f} s")

if __name__ == "__main__":
    names = sys.argv[1:] or [p.stem for p in sorted(HERE.glob("*.ipynb"))]
    for n in names: refresh(HERE / f"{Path(n).stem}.ipynb")
