"""The reading-group tutorials' one figure helper (each tutorial imports it: `from _show import show`).

Figures are shown as static PNGs, rendered with kaleido, so a tutorial reads on GitHub without a kernel. The test tier
(tests/test_tutorials.py) sets LOSSVIZ_TUTORIAL_STATIC=0: every figure is still built, and none is rendered.
"""
import os
from IPython.display import Image, display


def show(fig, # a plotly figure
         width:int=1000, # pixels
        ):
    "Display `fig` as a static PNG (its own height, else 420 px)."
    if os.environ.get("LOSSVIZ_TUTORIAL_STATIC", "1") == "0": return
    for attempt in range(3): # kaleido's headless browser occasionally fails to start on a busy machine
        try: png = fig.to_image(format="png", width=width, height=fig.layout.height or 420); break
        except Exception:
            if attempt == 2: raise
    display(Image(png))
