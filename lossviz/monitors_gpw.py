"""Deprecated import path (hand-written shim): the GPW and retrieval monitors now live in `lossviz.monitors.gpw`."""
from .monitors.gpw import *  # noqa: F401,F403
from .monitors.gpw import GPWMonitor, RetrievalMonitor  # noqa: F401
from .monitors.core import PAIR_DEFAULT  # noqa: F401
