"""The served gallery (Panel pages, the landing page, `lossviz serve`) (hand-written; modules generated from nbs/33*_app_*.ipynb).

Names resolve on first use, so `import lossviz.app` does not pull in Panel until a page or `serve` is asked for.
Adding a page: a module with `page(ctx)` and ONE line in `_PAGES` (see /tmp/lossviz-team/page-api.md, nbs/33_app_core.ipynb)."""
import importlib

_PAGES = (  # slug, "module:function", title, one-line description, thumbnail, URL-state parameters
    ("runs", "runs:page", "Runs", "Start runs in their own processes; one timeline per run, every stored scalar; compare runs",
     "curves", ("run", "compare", "tracks", "log", "smoothing")),
    ("losses", "explorers:losses_page", "Losses", "Loss and gradient weight against the margin for any classification loss",
     "loss", ("losses", "x")),
    ("pairs", "explorers:pairs_page", "Pairs", "How a pair loss weights every positive and negative pair (General Pair Weighting)",
     "weights", ("loss",)),
    ("collapse", "collapse:page", "Collapse", "Neural collapse: class means and classifier rows against the simplex ETF, NC1–NC4 over epochs",
     "simplex", ("run", "epoch", "dims", "projection", "classifier")),
    ("landscape", "landscape:page", "Landscape", "Loss surfaces and contours of trained runs with their trajectories, side by side",
     "surface", ("run", "view", "quantity", "scale", "directions", "span", "resolution")),
    ("calibration", "calibration:page", "Calibration", "Reliability diagrams, confidence histograms and a what-if temperature with T*, runs side by side",
     "reliability", ("runs", "epoch", "temperature", "fitted", "strategy", "n_bins")),
    ("playground", "playground:page", "Playground", "Train a small MLP on 2-D points live: decision regions and loss curves, any loss and optimizer, draw or upload points",
     "heatmap", ("dataset", "classes", "noise", "hidden", "activation", "loss", "optimizer", "lr", "weight_decay", "batch_size")),
)

_WHERE = {  # public name -> submodule of lossviz.app that defines it
    "Page": "core", "pages": "core", "get_page": "core", "PageContext": "core", "build_page": "core", "routes": "core",
    "offline": "core", "served_doc": "core", "esc": "core", "plot_text": "core", "THUMBNAILS": "core", "HOSTILE_NAME": "core",
    "serve": "server", "add_arguments": "server", "main": "server",
    "RunTimeline": "runs", "panel_view": "adapter",
}


def __getattr__(name):
    if name in _WHERE: return getattr(importlib.import_module(f"lossviz.app.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lossviz.app' has no attribute {name!r}")


def __dir__(): return sorted(list(globals()) + list(_WHERE))
