"""The served dashboard (Panel pages, the gallery, `lossviz serve`) (hand-written; modules generated from nbs/33_app*.ipynb).

Names resolve on first use, so `import lossviz.app` does not pull in Panel until a page or `serve` is asked for."""
import importlib

_WHERE = {  # public name -> submodule of lossviz.app that defines it
    "STARTED": "core", "OPTIMIZERS": "core", "TABLE_COLUMNS": "core", "PAGES": "core", "start_run": "core",
    "runs_rows": "core", "RunsPage": "core", "runs_page": "core", "losses_page": "core", "pairs_page": "core",
    "dashboard": "core", "start_default_run": "core", "serve": "core", "_origins": "core",
}


def __getattr__(name):
    if name in _WHERE: return getattr(importlib.import_module(f"lossviz.app.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lossviz.app' has no attribute {name!r}")


def __dir__(): return sorted(list(globals()) + list(_WHERE))
