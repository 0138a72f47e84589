"""Fast kernels behind the torch-facing layer modules: how the layers run fast on CPU.

Nothing here is public. Each module's docstring says which layers use it and the speedup that
justifies it; every kernel is differentiable in every mode (`_primitive.py`).
"""
