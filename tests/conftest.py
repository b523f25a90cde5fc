"""Shared pytest setup: CPU, two threads, and a fresh run store per test session."""
import os
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def store_path(tmp_path):
    "A run-store file path in a fresh temporary folder."
    return tmp_path / "runs.sqlite"
