"""Jupyter explorers: ipywidgets controls + plotly FigureWidgets updated in place (hand-written; modules generated from nbs/).

Names resolve on first use, so `import lossviz.widgets` does not pull in plotly or ipywidgets until an explorer is asked for."""
import importlib

_WHERE = {  # public name -> submodule of lossviz.widgets that defines it
    "RunMonitor": "runs",
    "LossExplorer": "losses",
    "GPWExplorer": "gpw",
}


def __getattr__(name):
    if name in _WHERE: return getattr(importlib.import_module(f"lossviz.widgets.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lossviz.widgets' has no attribute {name!r}")


def __dir__(): return sorted(list(globals()) + list(_WHERE))
