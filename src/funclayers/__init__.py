"""funclayers: PyTorch's torch.nn layer catalogue for JAX, as stateless init/apply function pairs.

    import funclayers as fl
    model = fl.Sequential(fl.Linear(4, 8), fl.ReLU(), fl.Linear(8, 2))
    params, state = model.init(jax.random.PRNGKey(0))
    out, state = model.apply(params, state, x, rng=key, training=True)

Every layer keeps the contract in CONTRACT.md: torch's constructor signatures, parameter and
buffer names, forward arguments and return structure.
"""

from ._kernels._allocator import _tune_on_import, tune_cpu_allocator

_tune_on_import()  # before the first JAX computation; see _kernels/_allocator.py (FUNCLAYERS_TUNE_MALLOC=0 opts out)

from . import functional, init
from ._interop import StateDictError, load_state_dict, state_dict
from ._layer import Buffer, Layer, ModuleDict, ModuleList, Parameter, Sequential
from ._module import Module, Scope

__version__ = "0.1.0"

__all__ = ["functional", "init", "Layer", "Sequential", "ModuleList", "ModuleDict", "Module", "Parameter",
           "Buffer", "Scope", "state_dict", "load_state_dict", "StateDictError", "tune_cpu_allocator"]

# Each family re-exports its layers in its own block below (one block per family module).

# -- linear (_linear.py) --
from ._linear import Bilinear, Flatten, Identity, Linear, Unflatten
__all__ += ["Identity", "Linear", "Bilinear", "Flatten", "Unflatten"]

# -- activations (_activation.py) --
from ._activation import Hardshrink, Hardsigmoid, Hardswish, Hardtanh, ReLU, ReLU6, Softshrink, Threshold
# -- activations: leaky ReLUs (_activation_leaky.py) --
from ._activation_leaky import LeakyReLU, PReLU, RReLU
# -- activations: smooth (_activation_smooth.py, _activation_sigmoid.py) --
from ._activation_sigmoid import LogSigmoid, Sigmoid, Softplus, Softsign, Tanh, Tanhshrink
from ._activation_smooth import CELU, ELU, GELU, GLU, SELU, Mish, SiLU
__all__ += ["ELU", "Hardshrink", "Hardsigmoid", "Hardtanh", "Hardswish", "LeakyReLU", "LogSigmoid", "PReLU",
            "ReLU", "ReLU6", "RReLU", "SELU", "CELU", "GELU", "Sigmoid", "Softplus", "Softshrink", "Softsign",
            "Tanh", "Tanhshrink", "Threshold", "SiLU", "Mish", "GLU"]
# -- activations: softmax (_softmax.py) --
from ._softmax import LogSoftmax, Softmax, Softmax2d, Softmin
__all__ += ["Softmin", "Softmax", "Softmax2d", "LogSoftmax"]

# -- dropout (_dropout.py) --
from ._dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout
__all__ += ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]

# -- convolution, fold/unfold, padding (_conv.py, _fold.py, _padding.py) --
from ._conv import Conv1d, Conv2d, Conv3d
from ._conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
__all__ += ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
from ._fold import Fold, Unfold
from ._padding import (CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
                       ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d,
                       ReplicationPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d)
__all__ += ["Fold", "Unfold", "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d",
            "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
            "ReplicationPad2d", "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"]

# -- pooling (_pooling.py, _pooling_avg.py) --
from ._pooling import MaxPool1d, MaxPool2d, MaxPool3d
from ._pooling_avg import AvgPool1d, AvgPool2d, AvgPool3d, LPPool1d, LPPool2d, LPPool3d

__all__ += ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "LPPool1d",
            "LPPool2d", "LPPool3d"]
# -- pooling: unpooling (_unpooling.py) --
from ._unpooling import MaxUnpool1d, MaxUnpool2d, MaxUnpool3d

__all__ += ["MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]
# -- pooling: adaptive (_adaptive_pooling.py) --
from ._adaptive_pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
                                AdaptiveMaxPool2d, AdaptiveMaxPool3d)

__all__ += ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
            "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"]
# -- pooling: fractional (_fractional_pooling.py) --
from ._fractional_pooling import FractionalMaxPool2d, FractionalMaxPool3d

__all__ += ["FractionalMaxPool2d", "FractionalMaxPool3d"]

# -- normalization (_normalization.py) --
from ._normalization import CrossMapLRN2d, GroupNorm, LayerNorm, LocalResponseNorm, RMSNorm
__all__ += ["LayerNorm", "GroupNorm", "LocalResponseNorm", "CrossMapLRN2d", "RMSNorm"]
# -- normalization: batch norm (_batchnorm.py) --
from ._batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm
__all__ += ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"]
# -- normalization: instance norm (_instancenorm.py) --
from ._instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
__all__ += ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]

# -- loss (_loss.py, _loss_margin.py, _loss_ce.py, _loss_ctc.py, _loss_modules.py, _loss_modules_ce.py) --
from ._loss_modules import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, GaussianNLLLoss, HingeEmbeddingLoss,
                            HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss, MSELoss, MultiLabelMarginLoss,
                            MultiLabelSoftMarginLoss, MultiMarginLoss, PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss,
                            TripletMarginLoss, TripletMarginWithDistanceLoss)
from ._loss_modules_ce import CrossEntropyLoss, CTCLoss, LinearCrossEntropyLoss, NLLLoss
__all__ += ["L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss",
            "HuberLoss", "SmoothL1Loss", "SoftMarginLoss", "MultiLabelSoftMarginLoss", "MultiLabelMarginLoss",
            "MultiMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss", "TripletMarginLoss",
            "TripletMarginWithDistanceLoss", "PoissonNLLLoss", "GaussianNLLLoss", "CTCLoss", "LinearCrossEntropyLoss"]

# -- recurrent (_rnn.py, _rnn_cell.py; packed sequences in rnn.py, torch.nn.utils.rnn's twin) --
from . import rnn
from ._rnn import GRU, LSTM, RNN, RNNBase
from ._rnn_cell import GRUCell, LSTMCell, RNNCell
__all__ += ["rnn", "RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

# -- sparse (_sparse.py, _sparse_bag.py) --
from ._sparse import Embedding
from ._sparse_bag import EmbeddingBag
__all__ += ["Embedding", "EmbeddingBag"]
# -- vision: pixel shuffle, channel shuffle (_pixelshuffle.py) --
from ._pixelshuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle
__all__ += ["PixelShuffle", "PixelUnshuffle", "ChannelShuffle"]
# -- adaptive softmax (_adaptive.py) --
from ._adaptive import AdaptiveLogSoftmaxWithLoss, ASMOutput
__all__ += ["AdaptiveLogSoftmaxWithLoss", "ASMOutput"]

# -- upsampling (_upsampling.py) --
from ._upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ += ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]

# -- attention and transformer (_attention.py, _transformer.py) --
from ._attention import MultiheadAttention
from ._transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                           TransformerEncoderLayer)
__all__ += ["MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
            "TransformerDecoderLayer"]
from . import attention  # torch.nn.attention's twin: sdpa_kernel, bias, flex_attention (attention/)

# -- parallel (parallel/: torch/nn/parallel/) --
from . import parallel
from .parallel import DataParallel, DistributedDataParallel
__all__ += ["parallel", "DataParallel", "DistributedDataParallel"]

# -- interop: from_torch (porting/: torch imported only when called) --
from .porting import (TorchConversionError, from_torch, register_torch_converter, torch_to_layer,
                          unregister_torch_converter)
__all__ += ["from_torch", "register_torch_converter", "unregister_torch_converter", "torch_to_layer",
            "TorchConversionError"]

# -- distance (_distance.py) --
from ._distance import CosineSimilarity, PairwiseDistance
__all__ += ["PairwiseDistance", "CosineSimilarity"]

# -- issue 27: lazy layers, parameter containers, the last module classes (_lazy.py, _param_containers.py) --
from ._lazy import (LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyConv1d, LazyConv2d, LazyConv3d,
                    LazyConvTranspose1d, LazyConvTranspose2d, LazyConvTranspose3d, LazyInstanceNorm1d,
                    LazyInstanceNorm2d, LazyInstanceNorm3d, LazyLinear)
from ._loss_modules_ce import NLLLoss2d
from ._param_containers import ParameterDict, ParameterList
from ._rnn_cell import RNNCellBase

__all__ += ["LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
            "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d",
            "LazyInstanceNorm2d", "LazyInstanceNorm3d", "ParameterList", "ParameterDict", "RNNCellBase", "NLLLoss2d"]

# -- torch.nn.utils (utils/: torch/nn/utils/) --
from . import utils
__all__ += ["utils"]
