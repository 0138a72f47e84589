"""Shared fixtures: the float32/float64 sweep every parity test runs under."""

import os
import sys

import jax
import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # tests import the torch oracle as `oracle`

torch.set_num_threads(1)  # tests run in parallel processes; keep torch from oversubscribing

if jax.default_backend() != "cpu":
    # GPUs multiply float32 in TF32 by default (~1e-3 relative); the oracle's float32 tolerance is
    # torch's full float32 precision, so parity runs there use full-precision matmuls/convolutions.
    jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """np.float32, or np.float64 with jax_enable_x64 on for the duration of the test."""
    if request.param == "float64":
        with jax.enable_x64(True):
            yield np.float64
    else:
        yield np.float32


@pytest.fixture
def x64():
    """jax_enable_x64 on for tests that need float64 without the sweep."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(params=["reduce", "select"])
def max_pick(request, monkeypatch):
    """Both ways max pooling computes the pick kept for the backward pass: one variadic reduction
    (CPU, windows of 3 or more) and the elementwise select (2-element windows; every window off
    CPU, so this is how a CPU test run covers what a GPU runs)."""
    from pooling_helpers import force_max_pick

    force_max_pick(monkeypatch, request.param)
    return request.param
