"""Explorers: one model class per explorer (state, controls, figure, live streams), no UI import (hand-written; modules
generated from nbs/31*_explorers_*.ipynb). Two generic front ends render any of them: `lossviz.widgets` (Jupyter) and
`lossviz.app.adapter` (Panel).

Adding an explorer: a subclass of `lossviz.explorers.base.Explorer`, a figure function in `lossviz/plots/`, and ONE line
in `_WHERE` below (public name -> submodule). Names resolve on first use, so `import lossviz.explorers` stays light."""
import importlib

_BASE = {"Explorer": "base", "Control": "base", "Decimator": "base"}

_WHERE = {  # registered explorers: public name -> submodule of lossviz.explorers that defines it
    "LossExplorer": "losses",
    "GPWExplorer": "gpw",
    "RunMonitor": "runs",
    "CollapseExplorer": "collapse",
    "CalibrationExplorer": "calibration",
    "LandscapeExplorer": "landscape",
    "Playground": "playground",
}


def registered() -> dict:
    "Every registered explorer: name -> class (imports their modules)."
    return {name: __getattr__(name) for name in _WHERE}


def __getattr__(name):
    where = _WHERE.get(name) or _BASE.get(name)
    if where: return getattr(importlib.import_module(f"lossviz.explorers.{where}"), name)
    raise AttributeError(f"module 'lossviz.explorers' has no attribute {name!r}")


def __dir__(): return sorted(list(globals()) + list(_WHERE) + list(_BASE))
