"""Write README.md from nbs/index.ipynb (nbdev's own README step needs Quarto, which these machines lack).

Prose cells are copied, code cells become ```python blocks (cells marked `#| hide` are left out), and image links
relative to nbs/ are rewritten relative to the repository root.
"""
import json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme(nb=ROOT / "nbs" / "index.ipynb", dest=ROOT / "README.md"):
    "Render `nb` to markdown at `dest`."
    cells = json.loads(Path(nb).read_text())["cells"]
    parts = []
    for c in cells:
        src = "".join(c["source"]).strip()
        if not src: continue
        if c["cell_type"] == "markdown":
            parts.append(re.sub(r"\]\((?!https?:|/|#)([^)]+)\)", r"](nbs/\1)", src))
        elif c["cell_type"] == "code":
            lines = src.splitlines()
            if any(l.replace(" ", "") == "#|hide" for l in lines): continue
            code = "\n".join(l for l in lines if not l.startswith("#|"))
            if code.strip(): parts.append(f"```python\n{code}\n```")
    text = "<!-- generated from nbs/index.ipynb by tools/readme.py: edit the notebook -->\n\n" + "\n\n".join(parts) + "\n"
    Path(dest).write_text(text)


if __name__ == "__main__": readme()
