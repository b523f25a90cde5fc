"""Pure functions from science results to plotly figures (hand-written; modules generated from nbs/)."""
