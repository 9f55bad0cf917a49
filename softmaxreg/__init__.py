"""softmaxreg: softmax regression and softmax networks with hand-written backpropagation."""

from ._version import __version__ as __version__
from .estimators import SoftmaxNetwork, SoftmaxRegression
from .exceptions import DataError, ModelFileError, SoftmaxRegError, TrainingDivergedError
from .functional import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    cross_entropy,
    cross_entropy_grad,
    log_sigmoid,
    log_softmax,
    logsumexp,
    one_hot,
    sigmoid,
    sigmoid_binary_cross_entropy,
    softmax,
    softmax_cross_entropy,
)
from .export import to_onnx
from .gradcheck import gradcheck
from .inference import inference
from .network import Network
from .persistence import load

__all__ = [
    "SoftmaxRegression",
    "SoftmaxNetwork",
    "Network",
    "load",
    "to_onnx",
    "inference",
    "gradcheck",
    "softmax",
    "log_softmax",
    "logsumexp",
    "one_hot",
    "cross_entropy",
    "cross_entropy_grad",
    "softmax_cross_entropy",
    "sigmoid",
    "log_sigmoid",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "sigmoid_binary_cross_entropy",
    "SoftmaxRegError",
    "DataError",
    "ModelFileError",
    "TrainingDivergedError",
]
