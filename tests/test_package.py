"""The hand-written lazy-import tables (lossviz/__init__.py and the packages' __init__ files) agree with the package:
every module is reachable, every listed name resolves to the module that defines it, nothing listed is missing."""
import importlib, json, pkgutil, re, subprocess, sys
from pathlib import Path
import pytest

import lossviz

ROOT = Path(lossviz.__file__).parent
LAZY_PACKAGES = ["lossviz", "lossviz.monitors", "lossviz.widgets", "lossviz.app", "lossviz.explorers", "lossviz.plots"]
SHIMS = {"monitors_gpw"}   # deprecated import paths kept working


def _modules(pkg):
    return sorted(m.name for m in pkgutil.iter_modules([str(ROOT / pkg.replace("lossviz", "", 1).strip(".").replace(".", "/"))])
                  if not m.name.startswith("_"))


def test_every_top_level_module_is_listed_and_reachable():
    mods = set(_modules("lossviz")) - SHIMS
    missing = mods - lossviz._SUBMODULES
    assert not missing, f"lossviz/__init__.py _SUBMODULES lacks {sorted(missing)}"
    extra = {m for m in lossviz._SUBMODULES if importlib.util.find_spec(f"lossviz.{m}") is None}
    assert not extra, f"lossviz/__init__.py lists modules that do not exist: {sorted(extra)}"
    for m in sorted(mods): assert getattr(lossviz, m).__name__ == f"lossviz.{m}"     # e.g. lossviz.retrieval
    for name, mod in lossviz._LAZY.items(): assert getattr(lossviz, name) is getattr(importlib.import_module(mod), name)
    with pytest.raises(AttributeError): lossviz.no_such_thing


@pytest.mark.parametrize("pkg", LAZY_PACKAGES)
def test_every_name_a_lazy_package_lists_resolves(pkg):
    p = importlib.import_module(pkg)
    for name in dir(p):
        if name.startswith("_"): continue
        assert getattr(p, name) is not None, f"{pkg}.{name}"
    with pytest.raises(AttributeError): getattr(p, "no_such_thing")


@pytest.mark.parametrize("pkg", ["lossviz.monitors", "lossviz.widgets", "lossviz.app", "lossviz.explorers"])
def test_table_entries_point_at_their_defining_module(pkg):
    p = importlib.import_module(pkg)
    table = getattr(p, "_WHERE", None) or getattr(p, "_LAZY", {})
    for name, where in table.items():
        mod = where if where.startswith("lossviz.") else f"{pkg}.{where}"
        assert hasattr(importlib.import_module(mod), name), f"{pkg}: {name} is not defined in {mod}"


def test_monitor_table_matches_the_modules():
    from lossviz.monitors import MONITORS, Monitor
    for name, spec in MONITORS.items():
        mod, _, cls = spec.partition(":")
        c = getattr(importlib.import_module(mod), cls)
        assert issubclass(c, Monitor) and c(every=None).name == name, name
    defined = {f"{m.__module__}:{m.__name__}" for m in _subclasses(Monitor) if m.__module__.startswith("lossviz.monitors.")}
    unlisted = defined - set(MONITORS.values()) - {"lossviz.monitors.core:Monitor"}
    assert not unlisted, f"monitors defined but not in lossviz/monitors/__init__.py MONITORS: {sorted(unlisted)}"


def _subclasses(c):
    for m in _modules("lossviz.monitors"): importlib.import_module(f"lossviz.monitors.{m}")
    out, todo = set(), [c]
    while todo:
        for s in todo.pop().__subclasses__():
            if s not in out: out.add(s); todo.append(s)
    return out


def test_import_lossviz_is_light():
    "`import lossviz` (and the lazy packages) pull in neither torch-heavy views nor the UI stack."
    code = ("import sys, lossviz, lossviz.monitors, lossviz.widgets, lossviz.app, lossviz.explorers, lossviz.plots\n"
            "heavy = [m for m in ('panel', 'plotly', 'ipywidgets', 'bokeh') if m in sys.modules]\n"
            "assert not heavy, heavy")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_declared_dependencies_are_imported_somewhere():
    "Every runtime dependency in pyproject.toml is imported by the package (or is a documented exception)."
    import tomllib, re
    deps = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].strip().lower() for d in deps}
    imports = {"scikit-learn": "sklearn", "pyyaml": "yaml"}
    src = "\n".join(p.read_text() for p in ROOT.rglob("*.py"))
    allowed_unused = {"anywidget"}   # plotly's FigureWidget needs it at run time (not imported by name); see SETUP-NOTES
    unused = sorted(n for n in names if n not in allowed_unused
                    and not re.search(rf"^\s*(import|from)\s+{imports.get(n, n).replace('-', '_')}\b", src, re.M))
    assert not unused, f"declared but never imported: {unused}"


def _relative_links(md:str) -> list:
    "The targets of a markdown text's relative links and images (no URLs, no anchors)."
    return [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", md) if not re.match(r"(https?:|mailto:|/|#)", t)]

def test_every_relative_link_in_the_readme_and_the_notebooks_resolves():
    "A link in README.md (GitHub's front page) or a notebook's prose that names a missing file is a dead link for a new user."
    root = Path(__file__).resolve().parent.parent
    dead = [f"README.md -> {t}" for t in _relative_links((root / "README.md").read_text()) if not (root / t).exists()]
    notebooks = sorted(nb for nb in (root / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in nb.parts)
    assert len(notebooks) > 40, len(notebooks)
    for nb in notebooks:
        md = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
        dead += [f"{nb.relative_to(root)} -> {t}" for t in _relative_links(md) if not (nb.parent / t).exists()]
    # and every notebook named by its path from the repository root, in prose, code or docstrings (renamed notebooks)
    texts = [root / "README.md", *notebooks, *(root / "lossviz").rglob("*.py"), *(root / "benchmarks").glob("*.py")]
    dead += [f"{f.relative_to(root)} names {m}" for f in texts for m in sorted(set(re.findall(r"nbs/[\w/.-]+?\.ipynb", f.read_text())))
             if not (root / m).exists()]
    assert not dead, dead
