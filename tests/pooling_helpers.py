"""Helpers shared by the pooling test modules."""

import jax


def jit(fn, *args):
    """fn(*args) compiled once (eager JAX compiles every primitive for every new shape)."""
    return jax.jit(fn)(*args)


def force_max_pick(monkeypatch, how: str) -> None:
    """Make max pooling keep its pick the way `how` says: "reduce" (one variadic reduction) or
    "select" (elementwise), whatever the window size and backend would choose."""
    from funclayers._kernels import _max_select

    pick = _max_select._argmax_reduce if how == "reduce" else _max_select.select_max
    monkeypatch.setattr(_max_select, "_pick", pick)
