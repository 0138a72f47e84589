"""Fast kernels behind the torch-facing layer modules: how the layers run fast on CPU.

Nothing here is public, and nothing here is a torch module: the family modules one level up
(`_conv.py`, `_pooling.py`, `_normalization.py`, ...) check arguments in torch's terms and call in.
Each module's docstring says which layers use it and the measured speedup that justifies it.

- `_primitive.py`: the one JAX primitive (a linear map with a hand-written transpose, batched by
  vmap) that keeps every kernel below differentiable in every mode with its fast backward pass.
- `_conv_lowering.py`, `_winograd.py`: how convolutions and transposed convolutions are computed.
- `_max_select.py`: torch's pick of the maximum in pooling windows, and its fast backward.
- `_norm.py`, `_layernorm.py`: BatchNorm (training), GroupNorm, instance norms, CrossMapLRN2d;
  LayerNorm's row kernel.
- `_sample.py`: grid_sample's weighted tap gathers (every mode) and their scatter-free-of-strides
  transpose.
- `_allocator.py`: glibc malloc tuning for XLA's per-call scratch buffer.
"""
