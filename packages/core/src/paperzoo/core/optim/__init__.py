"""First-order optimisers written from their papers, drop-in replacements for ``torch.optim``'s.

Each is a ``torch.optim.Optimizer`` with the same arguments and defaults as torch's, so an experiment
config can name it as ``optimizer: {class_path: paperzoo.core.optim.Adam, init_args: {lr: 1.0e-3}}``.
The updates run on whole parameter groups with torch's multi-tensor (``_foreach``) kernels.
"""

from paperzoo.core.optim.adagrad import Adagrad
from paperzoo.core.optim.adam import Adam, AdamW
from paperzoo.core.optim.rmsprop import RMSprop
from paperzoo.core.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "RMSprop"]
