"""Helpers shared by the pooling test modules."""

import jax


def jit(fn, *args):
    """fn(*args) compiled once (eager JAX compiles every primitive for every new shape)."""
    return jax.jit(fn)(*args)
