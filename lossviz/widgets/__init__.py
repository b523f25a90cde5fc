"""Jupyter explorers: ipywidgets controls + plotly FigureWidgets updated in place (hand-written; modules generated from nbs/)."""
