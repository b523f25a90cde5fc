"""Shared pytest setup: CPU, two threads, and a fresh run store per test session."""
import os
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def store_path(tmp_path):
    "A run-store file path in a fresh temporary folder."
    return tmp_path / "runs.sqlite"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    "A test skipped without CUDA (`skipif(..., reason='needs CUDA...')`) is a `cuda` test, so `pytest -m cuda` finds all of them."
    for item in items:
        if any(str(m.kwargs.get("reason", "")).startswith("needs CUDA") for m in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.cuda)
