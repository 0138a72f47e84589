"""funclayers.utils: torch.nn.utils as pure functions of pytrees and layer wrappers (torch/nn/utils/).

    grads, total_norm = fl.utils.clip_grad_norm_(grads, max_norm=1.0)
    tx = optax.chain(fl.utils.clip_grad_norm_transform(1.0), optax.adam(1e-3))
    layer = fl.utils.parametrizations.weight_norm(fl.Linear(20, 40))   # parametrizations.weight.original0/1
    layer = fl.utils.spectral_norm(fl.Conv2d(3, 16, 3))                # weight_orig, weight_u, weight_v
    fused, fused_params = fl.utils.fuse_conv_bn_eval(conv, conv_params, bn, bn_params, bn_state)

Packed sequences (torch.nn.utils.rnn) are `funclayers.rnn`.
"""

from . import parametrizations, parametrize, stateless
from ._spectral_norm import remove_spectral_norm, spectral_norm
from ._weight_norm import remove_weight_norm, weight_norm
from .clip_grad import (
                        clip_grad_norm,
                        clip_grad_norm_,
                        clip_grad_norm_transform,
                        clip_grad_value_,
                        clip_grads_with_norm_,
                        get_total_norm,
)
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights
from .init import skip_init
from .memory_format import convert_conv2d_weight_memory_format, convert_conv3d_weight_memory_format

__all__ = ["clip_grad_norm", "clip_grad_norm_", "clip_grads_with_norm_", "clip_grad_value_", "clip_grad_norm_transform",
           "convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format", "fuse_conv_bn_eval",
           "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights", "get_total_norm",
           "parameters_to_vector", "parametrizations", "parametrize", "remove_spectral_norm", "remove_weight_norm",
           "skip_init", "spectral_norm", "stateless", "vector_to_parameters", "weight_norm"]
