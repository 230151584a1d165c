r"""The Bernoulli-Bernoulli restricted Boltzmann machine.

Smolensky 1986; Hinton 2002, "Training Products of Experts by Minimizing Contrastive Divergence" (Neural Computation
14(8)); Hinton 2010, "A Practical Guide to Training Restricted Boltzmann Machines" (UTML TR 2010-003). Binary visible
units :math:`v \in \{0,1\}^V` and hidden units :math:`h \in \{0,1\}^H` with

.. math::
    E(v, h) = -b^\top v - c^\top h - h^\top W v, \qquad
    F(v) = -\log \sum_h e^{-E(v, h)} = -b^\top v - \sum_j \mathrm{softplus}(c_j + W_j v),

    p(h_j = 1 \mid v) = \sigma(c_j + W_j v), \qquad p(v_i = 1 \mid h) = \sigma(b_i + W_{:,i}^\top h).

The training rules (CD-k, persistent CD) are in :class:`~paperzoo.generative.modules.energy.RBMModule`.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.registry import register_model

# enumerating 2**20 configurations of the smaller layer is the most log_partition() will do
_MAX_ENUMERATED_UNITS = 20


def _all_binary_vectors(n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The ``2**n`` binary vectors of length n, ``(2**n, n)``."""
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), device=device, dtype=dtype)


class RBM(nn.Module):
    r"""A Bernoulli-Bernoulli RBM on ``in_channels * image_size**2`` binary visible units.

    Every method takes visible vectors ``(B, V)`` or binary images ``(B, C, H, W)`` (flattened), and returns flat
    ``(B, V)`` visible vectors; :meth:`to_images` folds them back.

    Initialisation follows Hinton's practical guide (section 8): weights from :math:`\mathcal{N}(0, 0.01^2)`, zero
    biases (:meth:`init_visible_bias` sets :math:`b_i = \log p_i / (1 - p_i)` from the data's pixel means).

    Args:
        in_channels: image channels.
        image_size: image side.
        num_hidden: hidden units H.

    Shapes:
        - **input:** ``(B, V)`` or ``(B, C, H, W)`` in ``{0, 1}``.
        - **output:** the free energy :math:`F(v)`, ``(B,)``.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_hidden: int = 500) -> None:
        super().__init__()
        if num_hidden < 1:
            raise ConfigError(f"num_hidden must be >= 1, got {num_hidden}")
        self.in_channels = in_channels
        self.image_size = image_size
        self.num_visible = in_channels * image_size * image_size
        self.num_hidden = num_hidden
        self.weight = nn.Parameter(torch.empty(num_hidden, self.num_visible))  # W: (H, V)
        self.visible_bias = nn.Parameter(torch.empty(self.num_visible))  # b
        self.hidden_bias = nn.Parameter(torch.empty(num_hidden))  # c
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=0.01)
        nn.init.zeros_(self.visible_bias)
        nn.init.zeros_(self.hidden_bias)

    @torch.no_grad()
    def init_visible_bias(self, pixel_means: Tensor, eps: float = 1e-3) -> None:
        """Set :math:`b_i = \\log p_i / (1 - p_i)` from the data's mean of each pixel (Hinton's guide, section 8)."""
        p = pixel_means.flatten().clamp(eps, 1 - eps).to(self.visible_bias)
        self.visible_bias.copy_(torch.log(p) - torch.log1p(-p))

    def to_images(self, v: Tensor) -> Tensor:
        """Flat visible vectors ``(B, V)`` -> ``(B, C, H, W)``."""
        return v.view(-1, self.in_channels, self.image_size, self.image_size)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        """:math:`E(v, h) = -b^\\top v - c^\\top h - h^\\top W v`, ``(B,)``."""
        v = v.flatten(1)
        return -(v @ self.visible_bias) - (h @ self.hidden_bias) - ((h @ self.weight) * v).sum(dim=1)

    def free_energy(self, v: Tensor) -> Tensor:
        """:math:`F(v) = -b^\\top v - \\sum_j \\mathrm{softplus}(c_j + W_j v)`, ``(B,)``."""
        v = v.flatten(1)
        return -(v @ self.visible_bias) - F.softplus(F.linear(v, self.weight, self.hidden_bias)).sum(dim=1)

    def hidden_probs(self, v: Tensor) -> Tensor:
        """:math:`p(h = 1 \\mid v)`, ``(B, H)``."""
        return torch.sigmoid(F.linear(v.flatten(1), self.weight, self.hidden_bias))

    def visible_probs(self, h: Tensor) -> Tensor:
        """:math:`p(v = 1 \\mid h)`, ``(B, V)``."""
        return torch.sigmoid(h @ self.weight + self.visible_bias)

    def gibbs_step(self, v: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """One block Gibbs step :math:`v \\to h \\sim p(h \\mid v) \\to v' \\sim p(v \\mid h)`.

        Returns:
            The binary sample :math:`v'` and its probabilities :math:`p(v' = 1 \\mid h)`, ``(B, V)`` each.
        """
        h = torch.bernoulli(self.hidden_probs(v), generator=generator)
        probs = self.visible_probs(h)
        return torch.bernoulli(probs, generator=generator), probs

    def gibbs_chain(self, v: Tensor, steps: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``steps`` Gibbs steps from ``v``; returns the last binary sample and its probabilities, ``(B, V)``."""
        v = v.flatten(1)
        probs = v
        for _ in range(steps):
            v, probs = self.gibbs_step(v, generator)
        return v, probs

    def reconstruct(self, v: Tensor) -> Tensor:
        """The mean-field reconstruction :math:`p(v = 1 \\mid h = p(h = 1 \\mid v))`, ``(B, V)``."""
        return self.visible_probs(self.hidden_probs(v))

    def log_partition(self) -> Tensor:
        """The exact :math:`\\log Z`, summing out the larger layer analytically and enumerating the smaller one.

        Only for tiny RBMs (the smaller layer at most 20 units); a scalar, differentiable in the parameters.
        """
        smaller = min(self.num_visible, self.num_hidden)
        if smaller > _MAX_ENUMERATED_UNITS:
            raise ConfigError(
                f"log_partition enumerates 2**{smaller} states; it is for RBMs with a layer of at most "
                f"{_MAX_ENUMERATED_UNITS} units"
            )
        if self.num_visible <= self.num_hidden:
            v = _all_binary_vectors(self.num_visible, self.weight.device, self.weight.dtype)  # (2**V, V)
            return torch.logsumexp(-self.free_energy(v), dim=0)
        h = _all_binary_vectors(self.num_hidden, self.weight.device, self.weight.dtype)  # (2**H, H)
        log_unnormalised = h @ self.hidden_bias + F.softplus(h @ self.weight + self.visible_bias).sum(dim=1)
        return torch.logsumexp(log_unnormalised, dim=0)

    def log_prob(self, v: Tensor) -> Tensor:
        """The exact :math:`\\log p(v) = -F(v) - \\log Z` (tiny RBMs only, see :meth:`log_partition`), ``(B,)``."""
        return -self.free_energy(v) - self.log_partition()

    def pseudo_log_likelihood(self, v: Tensor, exact: bool = False, generator: torch.Generator | None = None) -> Tensor:
        r"""The log pseudo-likelihood :math:`\sum_i \log p(v_i \mid v_{-i})`, with
        :math:`p(v_i \mid v_{-i}) = \sigma(F(\tilde v^{(i)}) - F(v))` where :math:`\tilde v^{(i)}` is ``v`` with bit
        i flipped.

        Args:
            v: binary visible vectors.
            exact: sum over all V bits (V free-energy evaluations per example); otherwise the unbiased estimate
                :math:`V \log p(v_i \mid v_{-i})` for one random bit i per example.
            generator: random source of the bit indices.

        Returns:
            ``(B,)`` in nats.
        """
        v = v.flatten(1)
        batch, num_visible = v.shape
        free_energy = self.free_energy(v)  # (B,)
        if exact:
            flipped = v.unsqueeze(1).repeat(1, num_visible, 1)  # (B, V, V): copy i has bit i flipped
            index = torch.arange(num_visible, device=v.device)
            flipped[:, index, index] = 1.0 - flipped[:, index, index]
            flipped_energy = self.free_energy(flipped.flatten(0, 1)).view(batch, num_visible)  # (B, V)
            return F.logsigmoid(flipped_energy - free_energy.unsqueeze(1)).sum(dim=1)
        bits = torch.randint(num_visible, (batch,), generator=generator, device=v.device)
        rows = torch.arange(batch, device=v.device)
        flipped = v.clone()
        flipped[rows, bits] = 1.0 - flipped[rows, bits]
        return num_visible * F.logsigmoid(self.free_energy(flipped) - free_energy)

    def forward(self, v: Tensor) -> Tensor:
        return self.free_energy(v)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        shape = (batch_size, self.in_channels, self.image_size, self.image_size)
        return (torch.bernoulli(torch.full(shape, 0.5, device=self.weight.device)),)

    def extra_repr(self) -> str:
        return f"num_visible={self.num_visible}, num_hidden={self.num_hidden}"


@register_model
def rbm(**kwargs) -> RBM:
    """An RBM for binarised 28x28 MNIST with 500 hidden units (the MNIST RBMs of Salakhutdinov & Murray 2008)."""
    return RBM(**kwargs)


SMALL_KWARGS: dict[str, dict] = {"rbm": dict(image_size=4, num_hidden=8)}
