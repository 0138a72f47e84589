"""Runnable examples: quickstart, the digits training loop, and the benchmark/test model builders."""
