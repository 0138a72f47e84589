"""The pure ops every layer is built on, with torch.nn.functional's names and signatures.

    import funclayers.functional as F
    y = F.conv2d(x, weight, bias, stride=2, padding=1)
"""

# Each family re-exports its ops in its own block below (one block per family module).

# -- linear (_linear.py) --
from ._linear import bilinear, grouped_mm, linear

# -- activations (_activation.py) --
from ._activation import hardshrink, hardsigmoid, hardswish, hardtanh, relu, relu6, softshrink, threshold
# -- activations: leaky ReLUs (_activation_leaky.py) --
from ._activation_leaky import leaky_relu, prelu, rrelu
# -- activations: smooth (_activation_smooth.py, _activation_sigmoid.py) --
from ._activation_sigmoid import logsigmoid, sigmoid, softplus, softsign, tanh, tanhshrink
from ._activation_smooth import celu, elu, gelu, glu, mish, selu, silu
# -- activations: softmax (_softmax.py) --
from ._softmax import gumbel_softmax, log_softmax, softmax, softmin
# -- activations: torch's in-place names, out of place (_activation_inplace.py) --
from ._activation_inplace import celu_, elu_, hardtanh_, leaky_relu_, relu_, rrelu_, selu_, threshold_

# -- dropout (_dropout.py) --
from ._dropout import alpha_dropout, dropout, dropout1d, dropout2d, dropout3d, feature_alpha_dropout

# -- convolution, fold/unfold, padding (_conv.py, _fold.py, _padding.py) --
from ._conv import conv1d, conv2d, conv3d, conv_tbc
from ._conv_transpose import conv_transpose1d, conv_transpose2d, conv_transpose3d
from ._fold import fold, unfold
from ._padding import pad

# -- pooling (_pooling.py, _pooling_avg.py) --
from ._pooling import (max_pool1d, max_pool1d_with_indices, max_pool2d, max_pool2d_with_indices, max_pool3d,
                       max_pool3d_with_indices)
from ._pooling_avg import avg_pool1d, avg_pool2d, avg_pool3d, lp_pool1d, lp_pool2d, lp_pool3d

# -- pooling: unpooling (_unpooling.py) --
from ._unpooling import max_unpool1d, max_unpool2d, max_unpool3d

# -- pooling: adaptive (_adaptive_pooling.py) --
from ._adaptive_pooling import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d,
                                adaptive_max_pool1d, adaptive_max_pool1d_with_indices, adaptive_max_pool2d,
                                adaptive_max_pool2d_with_indices, adaptive_max_pool3d,
                                adaptive_max_pool3d_with_indices)

# -- pooling: fractional (_fractional_pooling.py) --
from ._fractional_pooling import (fractional_max_pool2d, fractional_max_pool2d_with_indices,
                                  fractional_max_pool3d, fractional_max_pool3d_with_indices)

# -- normalization (_normalization.py) --
from ._normalization import group_norm, layer_norm, local_response_norm, normalize, rms_norm
# -- normalization: batch norm (_batchnorm.py) --
from ._batchnorm import batch_norm
# -- normalization: instance norm (_instancenorm.py) --
from ._instancenorm import instance_norm

# -- loss (_loss.py, _loss_margin.py, _loss_ce.py, _loss_ctc.py) --
from ._loss import (binary_cross_entropy, binary_cross_entropy_with_logits, gaussian_nll_loss, huber_loss, kl_div,
                    l1_loss, mse_loss, poisson_nll_loss, smooth_l1_loss)
from ._loss_margin import (cosine_embedding_loss, hinge_embedding_loss, margin_ranking_loss, multi_margin_loss,
                           multilabel_margin_loss, multilabel_soft_margin_loss, soft_margin_loss,
                           triplet_margin_loss, triplet_margin_with_distance_loss)
from ._loss_ce import cross_entropy, linear_cross_entropy, nll_loss
from ._loss_ctc import ctc_loss

# -- recurrent (_rnn_cell.py) --
from ._rnn_cell import gru_cell, lstm_cell, rnn_relu_cell, rnn_tanh_cell

# -- sparse (_sparse.py, _sparse_bag.py); embedding_renorm: torch's in-place embedding_renorm_, out of place --
from ._sparse import embedding, embedding_renorm
from ._sparse_bag import embedding_bag
# -- one-hot encoding (_one_hot.py) --
from ._one_hot import one_hot
# -- vision: pixel shuffle, channel shuffle (_pixelshuffle.py) --
from ._pixelshuffle import channel_shuffle, native_channel_shuffle, pixel_shuffle, pixel_unshuffle

# -- upsampling and vision (_upsampling.py, _vision.py) --
from ._upsampling import interpolate, upsample, upsample_bilinear, upsample_nearest
from ._vision import affine_grid, grid_sample

# -- attention and transformer (_attention.py, _sdpa.py, _transformer.py) --
from ._attention import multi_head_attention_forward
from ._sdpa import scaled_dot_product_attention

# -- distance (_distance.py) --
from ._distance import cosine_similarity, pairwise_distance, pdist
