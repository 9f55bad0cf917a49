"""softmaxreg: softmax regression and softmax networks with hand-written backpropagation."""

from . import functional
from ._version import __version__ as __version__
from .estimators import SoftmaxNetwork, SoftmaxRegression
from .exceptions import DataError, ModelFileError, SoftmaxRegError, TrainingDivergedError
from .export import to_onnx
from .functional import *  # noqa: F403  the notes' math, listed in functional.__all__
from .gradcheck import gradcheck
from .inference import inference
from .network import Network
from .persistence import load, save

__all__ = [
    "SoftmaxRegression",
    "SoftmaxNetwork",
    "Network",
    "load",
    "save",
    "to_onnx",
    "inference",
    "gradcheck",
    *functional.__all__,
    "SoftmaxRegError",
    "DataError",
    "ModelFileError",
    "TrainingDivergedError",
]
