"""Monitors: what a live run measures, on a schedule (hand-written lazy package; the modules are generated from nbs/23*).

`MONITORS` maps every library monitor name to "module:Class"; `resolve_monitors(name)` imports the module on first use,
so no monitor needs a prior import. A new monitor module adds ONE line to `MONITORS` (see the core notebook)."""
import importlib

MONITORS = {  # monitor name (what `monitors=` and `lossviz train --monitor` take) -> "module:Class"
    "train": "lossviz.monitors.core:TrainMetrics",
    "test": "lossviz.monitors.core:TestMetrics",
    "lr": "lossviz.monitors.core:LearningRate",
    "grad_norm": "lossviz.monitors.core:GradNorm",
    "throughput": "lossviz.monitors.core:Throughput",
    "gpw": "lossviz.monitors.gpw:GPWMonitor",
    "retrieval": "lossviz.monitors.gpw:RetrievalMonitor",
    "collapse": "lossviz.monitors.collapse:CollapseMonitor",
    "calibration": "lossviz.monitors.calibration:CalibrationMonitor",
    "landscape": "lossviz.monitors.landscape:LandscapeMonitor",
}

_CORE = ("StepOutput", "Monitor", "overrides", "Later", "TrainMetrics", "MAX_TRAIN_EVAL", "EvalPass", "compute_eval_pass", "evaluate",
         "TestMetrics", "LearningRate", "GradNorm", "global_norm", "Throughput", "DEFAULT", "PAIR_DEFAULT", "default_monitors",
         "register_monitor", "monitor_factory", "monitor_names", "resolve_monitors")
_LAZY = {n: "lossviz.monitors.core" for n in _CORE}  # public name -> module that defines it
_LAZY.update({cls: mod for mod, _, cls in (spec.partition(":") for spec in MONITORS.values())})
_SUBMODULES = {"core", "gpw"} | {spec.partition(":")[0].rsplit(".", 1)[1] for spec in MONITORS.values()}


def __getattr__(name):
    if name in _LAZY: return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES: return importlib.import_module(f"lossviz.monitors.{name}")
    raise AttributeError(f"module 'lossviz.monitors' has no attribute {name!r}")


def __dir__(): return sorted(list(globals()) + list(_LAZY) + list(_SUBMODULES))
