"""Round-trip nbdev notebooks and percent-format scripts, so notebooks can be written as code.

    python tools/nbpy.py to-nb  src.py  nbs/10_x.ipynb   # `# %%` code cells, `# %% [markdown]` prose cells
    python tools/nbpy.py to-py  nbs/10_x.ipynb  /tmp/x.py

Outputs are not kept: the notebook is the source, and nbdev-test executes it.
"""
import hashlib, json, re, sys
from pathlib import Path

MD = re.compile(r"^# %% \[markdown\]\s*$")
CODE = re.compile(r"^# %%\s*$")
KERNEL = {"display_name": "python3", "language": "python", "name": "python3"}


def _cells(text):
    "Split a percent-format script into (kind, source) cells."
    cells, kind, buf = [], None, []
    for line in text.splitlines():
        if MD.match(line) or CODE.match(line):
            if kind is not None: cells.append((kind, buf))
            kind, buf = ("markdown" if MD.match(line) else "code"), []
        elif kind is not None:
            buf.append(line)
    if kind is not None: cells.append((kind, buf))
    out = []
    for kind, lines in cells:
        while lines and not lines[-1].strip(): lines.pop()
        while lines and not lines[0].strip(): lines.pop(0)
        if kind == "markdown": lines = [l[2:] if l.startswith("# ") else l.lstrip("#") for l in lines]
        if lines: out.append((kind, "\n".join(lines)))
    return out


def to_nb(src, dest):
    "Write the notebook for percent-format script `src` to `dest`."
    cells, seen = [], set()
    for kind, source in _cells(Path(src).read_text()):
        cid = hashlib.sha1(source.encode()).hexdigest()[:8]
        while cid in seen: cid = hashlib.sha1(cid.encode()).hexdigest()[:8]
        seen.add(cid)
        c = {"cell_type": kind, "id": cid, "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code": c.update(execution_count=None, outputs=[])
        cells.append(c)
    nb = {"cells": cells, "metadata": {"kernelspec": KERNEL}, "nbformat": 4, "nbformat_minor": 5}
    Path(dest).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def to_py(src, dest):
    "Write notebook `src` as a percent-format script `dest`."
    nb = json.loads(Path(src).read_text())
    parts = []
    for c in nb["cells"]:
        s = "".join(c["source"])
        if c["cell_type"] == "markdown":
            parts.append("# %% [markdown]\n" + "\n".join("# " + l if l else "#" for l in s.splitlines()))
        else:
            parts.append("# %%\n" + s)
    Path(dest).write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    cmd, src, dest = sys.argv[1:4]
    {"to-nb": to_nb, "to-py": to_py}[cmd](src, dest)
