"""The explorer contract, walked over every registered explorer: both front ends (Jupyter and Panel) expose the same
controls and draw the same figure data for the same state; every control round-trips through `set`; figures are valid
JSON (NaN as null) at the defaults and at each explorer's edge cases; the explorer modules import no UI library."""
import ast, json
from pathlib import Path
import numpy as np
import pytest
import lossviz.explorers as E
from lossviz.explorers.base import Explorer, Control, KINDS
from lossviz.plots.style import figure_json

NAMES = sorted(E._WHERE)


@pytest.fixture(params=NAMES)
def explorer(request):
    return E.registered()[request.param].example()


def _jupyter_controls(view):
    return [(n, w.value) for n, w in view.controls.items()]


def _panel_controls(view):
    from lossviz.app.adapter import widget_value
    return [(n, widget_value(w)) for n, w in view.controls.items()]


def _kind_of(w):
    "The control kind a widget draws (the Jupyter view's spec, or a Panel widget)."
    if hasattr(w, "spec"): return w.kind
    name = type(w).__name__
    for k, names in {"select": ("Dropdown", "Select"), "multi": ("SelectMultiple", "MultiChoice"), "bool": ("Checkbox",),
                     "int": ("IntSlider",), "float": ("FloatSlider", "FloatLogSlider", "DiscreteSlider"),
                     "number": ("BoundedIntText", "BoundedFloatText", "IntInput", "FloatInput")}.items():
        if name in names: return k
    raise AssertionError(f"unknown widget {name}")


def _options(w):
    if hasattr(w, "spec"): return list(w.options)
    o = getattr(w, "options", None)
    if o is None: return None
    return list(o.values()) if isinstance(o, dict) else list(o)


def test_registry_lists_explorers():
    reg = E.registered()
    assert {"LossExplorer", "GPWExplorer", "RunMonitor"} <= set(reg)
    for name, cls in reg.items():
        assert issubclass(cls, Explorer) and cls.__name__ == name
        import lossviz.widgets as Wd
        assert getattr(Wd, name) is cls # the public names stay importable from lossviz.widgets


def test_both_front_ends_same_controls_and_figure(explorer):
    from lossviz.widgets.jupyter import JupyterView
    from lossviz.app.adapter import PanelView
    jv, pv = JupyterView(explorer, autostart=False), PanelView(explorer, autostart=False)
    want = [(c.name, c.value) for c in explorer.controls()]
    assert _jupyter_controls(jv) == want == _panel_controls(pv)
    for c in explorer.controls():
        assert _kind_of(jv.controls[c.name]) == _kind_of(pv.controls[c.name]) == c.kind, c.name
        if c.kind in ("select", "multi"): assert _options(jv.controls[c.name]) == _options(pv.controls[c.name]) == list(c.options), c.name
    assert jv.plot.figure["data"] == figure_json(pv.pane.object)["data"]
    assert jv.buttons.keys() == pv.buttons.keys() == explorer.actions().keys()
    # a change made in one front end shows in the other, and both draw the same data again
    for c in explorer.controls():
        alt = _another_value(c)
        if alt is None: continue
        jv.controls[c.name].value = alt # as the browser would
        assert jv.error == "", jv.error
        assert _panel_controls(pv) == [(d.name, d.value) for d in explorer.controls()] == _jupyter_controls(jv)
        assert jv.plot.figure["data"] == figure_json(pv.pane.object)["data"], c.name
        break


def _another_value(c: Control):
    if c.kind == "select" and c.options and len(c.options) > 1: return next(o for o in c.options if o != c.value)
    if c.kind == "bool": return not c.value
    if c.kind == "int" and c.high > c.low: return c.low if c.value != c.low else c.low + 1
    return None


def test_every_control_round_trips(explorer):
    for c in explorer.controls():
        assert c.kind in KINDS
        explorer.set(**{c.name: c.value})
        now = {d.name: d.value for d in explorer.controls()}
        assert now[c.name] == c.value, c.name


def test_figures_are_strict_json_at_defaults_and_edges(explorer):
    cls = type(explorer)
    json.dumps(figure_json(explorer.figure()), allow_nan=False)
    assert explorer.figure().layout.width is None # figures follow their container
    for edge in cls.edge_cases():
        ex = cls.example()
        ex.set(**edge)
        json.dumps(figure_json(ex.figure()), allow_nan=False)


def test_edges_and_defaults_can_follow_each_other(explorer):
    "What the notebook cell of the browser test does: the defaults, an edge, the defaults again, in any order."
    defaults = {c.name: c.value for c in type(explorer).example().controls()}
    for edge in type(explorer).edge_cases():
        explorer.set(**defaults); explorer.set(**edge)
    explorer.set(**defaults)
    assert {c.name: c.value for c in explorer.controls()} == defaults


def test_bad_values_are_refused_and_nothing_changes(explorer):
    before = [(c.name, c.value) for c in explorer.controls()]
    with pytest.raises(ValueError): explorer.set(not_a_control=1)
    for c in explorer.controls():
        if c.kind in ("int", "float") and c.high is not None:
            with pytest.raises((ValueError, TypeError)): explorer.set(**{c.name: c.high * 10 + 10})
            break
    assert [(c.name, c.value) for c in explorer.controls()] == before


def test_explorer_modules_import_no_ui_library():
    root = Path(E.__file__).parent
    for f in root.glob("*.py"):
        tree = ast.parse(f.read_text())
        mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
        assert not mods & {"ipywidgets", "panel", "anywidget", "bokeh"}, (f.name, mods)
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))] # module-level imports: no front end either
        assert not any((getattr(n, "module", "") or "").startswith(("lossviz.widgets", "lossviz.app")) for n in top), f.name
