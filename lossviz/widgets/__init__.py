"""The Jupyter front end: one generic view (`JupyterView`) that renders any explorer of `lossviz.explorers`
(hand-written; lossviz/widgets/jupyter.py is generated from nbs/32_widgets.ipynb).

`from lossviz.widgets import LossExplorer, GPWExplorer, RunMonitor` gives the explorers themselves (displaying one in
Jupyter shows its `JupyterView`; `.panel()` gives the Panel view). Names resolve on first use, so `import lossviz.widgets`
pulls in neither plotly nor ipywidgets until something is asked for. In a Jupyter kernel, the first explorer asked for
from here also makes the kernel's plotly.js widget, so the page loads plotly.js before the first figure needs it."""
import importlib

_WHERE = {  # public name -> submodule of lossviz.widgets that defines it
    "JupyterView": "jupyter", "jupyter_view": "jupyter", "ExplorerWidget": "jupyter", "PlotlyJS": "jupyter",
    "Poller": "jupyter", "plotly_js": "jupyter", "plotly_js_path": "jupyter", "preload": "jupyter",
}


def __getattr__(name):
    if name in _WHERE: return getattr(importlib.import_module(f"lossviz.widgets.{_WHERE[name]}"), name)
    import lossviz.explorers as E # every registered explorer is importable from here too
    if name in E._WHERE or name in E._BASE:
        if name in E._WHERE: _preload()
        return getattr(E, name)
    raise AttributeError(f"module 'lossviz.widgets' has no attribute {name!r}")


_PRELOADED = []

def _preload():
    "In a Jupyter kernel, the first explorer imported from here makes the page start loading plotly.js (`jupyter.preload`)."
    import sys
    if _PRELOADED or "ipykernel" not in sys.modules: return
    _PRELOADED.append(True)
    importlib.import_module("lossviz.widgets.jupyter").preload()


def __dir__():
    import lossviz.explorers as E
    return sorted(list(globals()) + list(_WHERE) + list(E._WHERE))
