"""Pure functions from science results to `plotly.graph_objects.Figure` (hand-written; modules generated from nbs/).

`lossviz.plots.<name>` finds `<name>` in the submodules listed below, importing plotly only on first use."""
import importlib

_SUBMODULES = ("style", "runs", "losses", "gpw", "collapse", "landscape")  # lossviz.plots.<sub>, one per view


def __getattr__(name):
    for sub in _SUBMODULES:
        try: mod = importlib.import_module(f"lossviz.plots.{sub}")
        except ModuleNotFoundError as e:
            if e.name == f"lossviz.plots.{sub}": continue  # that view is not built yet
            raise
        if name in getattr(mod, "__all__", ()): return getattr(mod, name)
    raise AttributeError(f"module 'lossviz.plots' has no attribute {name!r}")
