"""lossviz: see what a loss function does (hand-written; every other module is generated from nbs/)."""
__version__ = "0.1.0"

import importlib, importlib.util

# Public names resolved on first use, so `import lossviz` stays fast and works without the UI stack.
_LAZY = {
    "Run": "lossviz.train", "track": "lossviz.train", "RunStore": "lossviz.store",
    "pick_device": "lossviz.core", "seed_everything": "lossviz.core", "HParam": "lossviz.core",
}
# Every module and subpackage of lossviz (tests/test_package.py checks this list against the files).
_SUBMODULES = {"core", "losses", "gpw", "retrieval", "landscape", "curvature", "collapse", "calibration",
               "data", "models", "store", "monitors", "train", "runner",
               "plots", "explorers", "widgets", "app", "cli"}


def __getattr__(name):
    if name in _LAZY: return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES or (not name.startswith("_") and importlib.util.find_spec(f"lossviz.{name}") is not None):
        return importlib.import_module(f"lossviz.{name}")
    raise AttributeError(f"module 'lossviz' has no attribute {name!r}")


def __dir__(): return sorted(list(globals()) + list(_LAZY) + list(_SUBMODULES))
