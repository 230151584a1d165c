"""Adversarial examples and robust accuracy: the FGSM and PGD attacks under an L-infinity budget in pixel units.

Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples" (ICLR 2015) perturb an input by
one step of size ``eps`` along the sign of the loss gradient (FGSM); Madry, Makelov, Schmidt, Tsipras & Vladu,
"Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR 2018) iterate that step from a random
point of the ``eps``-ball and project back after each step (PGD). Both budgets are stated for images with
pixels in [0, 1]; paperzoo's networks see normalised inputs ``(pixel - mean) / std``, so :class:`InputSpace`
carries the normalisation and the attacks scale ``eps`` and the step by ``1 / std`` and clamp to the normalised
image of [0, 1]. An attack in normalised units is then exactly the attack in pixel units: the sign of the
gradient does not change under a positive per-channel scale.

>>> space = InputSpace.from_datamodule(FashionMNISTDataModule())
>>> x_adv = PGD(eps=0.1, steps=20, step_size=0.025, space=space)(network, x, y)
>>> robust_accuracy(network, loader, PGD(eps=0.1, steps=20, step_size=0.025, space=space))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class InputSpace:
    """The images a network accepts: pixels in [0, 1], normalised per channel as ``(pixel - mean) / std``.

    The attacks of this module take their budgets in pixel units and use this to turn them into the units
    the network sees. The default (mean 0, std 1) is a network fed raw [0, 1] pixels.

    Args:
        mean: per-channel mean subtracted from the pixels; one value is shared by all channels.
        std: per-channel standard deviation the pixels are divided by; positive.
    """

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} channels but std has {len(self.std)}")
        if not all(s > 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")

    @classmethod
    def from_datamodule(cls, datamodule: Any) -> InputSpace:
        """The space of a DataModule that normalises with its ``mean`` and ``std`` attributes, as
        :class:`~paperzoo.vision.data.ImageClassificationDataModule` does."""
        return cls(tuple(datamodule.mean), tuple(datamodule.std))

    def _per_channel(self, values: Sequence[float], like: Tensor) -> Tensor:
        shape = (1, len(values)) + (1,) * (like.dim() - 2)  # (1, C, 1, 1) for images
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(shape)

    def scale(self, amount: float, like: Tensor) -> Tensor:
        """A distance of ``amount`` pixel units in normalised units, per channel: ``amount / std``."""
        return amount / self._per_channel(self.std, like)

    def bounds(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """The normalised images of pixel values 0 and 1, per channel: ``(-mean / std, (1 - mean) / std)``."""
        mean, std = self._per_channel(self.mean, like), self._per_channel(self.std, like)
        return (0 - mean) / std, (1 - mean) / std

    def to_pixels(self, x: Tensor) -> Tensor:
        """Normalised inputs back to [0, 1] pixels."""
        return x * self._per_channel(self.std, x) + self._per_channel(self.mean, x)

    def from_pixels(self, pixels: Tensor) -> Tensor:
        """[0, 1] pixels to the inputs the network sees."""
        return (pixels - self._per_channel(self.mean, pixels)) / self._per_channel(self.std, pixels)


def _logits(output: Tensor | tuple[Tensor, ...]) -> Tensor:
    """The main logits of a network that may return ``(logits, *aux_logits)`` (GoogLeNet in training mode)."""
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def _frozen_eval(model: nn.Module) -> Iterator[None]:
    """Every submodule in eval mode (batch norm on its running statistics, which stay untouched, and no
    dropout), each restored to its own mode afterwards, so a partly frozen model keeps its mix of modes."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


class Attack(ABC):
    """An evasion attack under an L-infinity budget: ``attack(model, x, y)`` returns adversarial inputs.

    Inputs and outputs are in the network's normalised units (see :class:`InputSpace`); the budget is in
    pixel units. While attacking, the model is in eval mode (as in the TRADES reference code of Zhang et al.
    2019: the attack sees the function that is evaluated, and its forward passes do not move the batch-norm
    running statistics) and each submodule's mode is restored afterwards. Gradients are taken with respect to
    the inputs only, so the parameters' ``.grad`` are never touched. Attacks work inside ``torch.no_grad`` and
    ``torch.inference_mode`` (Lightning's validation and test loops) too.

    Args:
        eps: the L-infinity budget in pixel units of [0, 1] images (0.1 is usual on Fashion-MNIST, 8/255 on
            CIFAR-10).
        space: how the network's inputs are normalised; default raw [0, 1] pixels.
    """

    def __init__(self, eps: float, space: InputSpace | None = None) -> None:
        if eps < 0:
            raise ValueError(f"eps must be at least 0, got {eps}")
        self.eps = eps
        self.space = space if space is not None else InputSpace()

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """Adversarial versions of ``x``.

        Args:
            model: maps ``(B, C, H, W)`` normalised images to ``(B, num_classes)`` logits.
            x: normalised images ``(B, C, H, W)`` whose pixels lie in [0, 1].
            y: their labels ``(B,)``.

        Returns:
            Normalised images ``(B, C, H, W)`` within ``eps`` of ``x`` in pixel units and in [0, 1], detached.
        """
        # Inference tensors (made under inference_mode) cannot enter autograd; clones made outside it can.
        with torch.inference_mode(False), torch.enable_grad(), _frozen_eval(model):
            x_adv = self.perturb(model, x.detach().clone(), y.detach().clone())
        return x_adv.detach()

    @abstractmethod
    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The attack proper, called by :meth:`__call__` with the model in eval mode and gradients enabled."""

    @staticmethod
    def loss_gradient(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """Gradient of the summed cross-entropy with respect to ``x`` (and nothing else)."""
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(_logits(model(x)), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
        return grad

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eps={self.eps}, space={self.space})"


class FGSM(Attack):
    """The fast gradient sign method of Goodfellow et al., "Explaining and Harnessing Adversarial Examples"
    (ICLR 2015), section 4, clipped to valid images:

    .. math::
        x_{adv} = \\mathrm{clip}_{[0, 1]}\\big(x + \\epsilon \\, \\mathrm{sign}(\\nabla_x J(\\theta, x, y))\\big)

    with :math:`J` the cross-entropy, in pixel units (computed in normalised units, see :class:`Attack`).

    Args:
        eps: the L-infinity budget in pixel units of [0, 1] images.
        space: how the network's inputs are normalised.
    """

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        low, high = self.space.bounds(x)
        step = self.space.scale(self.eps, x) * self.loss_gradient(model, x, y).sign()
        return torch.clamp(x + step, low, high)


class PGD(Attack):
    """Projected gradient descent on the negative loss, Madry et al., "Towards Deep Learning Models Resistant
    to Adversarial Attacks" (ICLR 2018), section 2.1, L-infinity version: from a uniform random point of the
    ``eps``-ball around ``x`` (clipped to [0, 1]), ``steps`` times

    .. math::
        x^{t+1} = \\Pi_{B_\\epsilon(x) \\cap [0, 1]^d}(x^t + \\alpha \\mathrm{sign}(\\nabla_x J(\\theta, x^t, y)))

    where the projection on the box is a clamp. Madry et al. use 40 steps of 0.01 at ``eps`` 0.3 on MNIST,
    and 7 steps (training) or 20 steps (evaluation) of 2/255 at ``eps`` 8/255 on CIFAR-10. With ``steps=1``,
    ``step_size=eps`` and no random start it is :class:`FGSM`.

    Args:
        eps: the L-infinity budget in pixel units of [0, 1] images.
        steps: number of gradient-sign steps.
        step_size: size of each step (``alpha``) in pixel units.
        random_start: start from a uniformly random point of the ball rather than from ``x``.
        space: how the network's inputs are normalised.
        generator: random numbers of the start; ``None`` for torch's global generator (seeded by
            ``seed_everything`` and saved in paperzoo's checkpoints).
    """

    def __init__(
        self,
        eps: float,
        steps: int,
        step_size: float,
        random_start: bool = True,
        space: InputSpace | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(eps, space)
        if steps < 1 or step_size <= 0:
            raise ValueError(f"PGD needs steps >= 1 and step_size > 0, got steps={steps}, step_size={step_size}")
        self.steps = steps
        self.step_size = step_size
        self.random_start = random_start
        self.generator = generator

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        low, high = self.space.bounds(x)
        eps, alpha = self.space.scale(self.eps, x), self.space.scale(self.step_size, x)
        # min/max against the ball's faces rather than x + clamp(x_adv - x): no rounding moves a point outside.
        ball_low, ball_high = torch.maximum(x - eps, low), torch.minimum(x + eps, high)
        x_adv = x
        if self.random_start:
            noise = torch.rand(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)
            x_adv = torch.clamp(x + (2 * noise - 1) * eps, low, high)
        for _ in range(self.steps):
            x_adv = x_adv + alpha * self.loss_gradient(model, x_adv, y).sign()
            x_adv = torch.clamp(x_adv, ball_low, ball_high)
        return x_adv

    def __repr__(self) -> str:
        return (
            f"PGD(eps={self.eps}, steps={self.steps}, step_size={self.step_size}, "
            f"random_start={self.random_start}, space={self.space})"
        )


def robust_predictions(model: nn.Module, x: Tensor, y: Tensor, attack: Attack | None) -> Tensor:
    """Predicted classes that are right exactly where the model is right on ``x`` and on ``attack(model, x, y)``.

    ``x`` itself lies in the ``eps``-ball, so an example counts as robust only if both are classified right (as
    in RobustBench, Croce et al. 2021): robust accuracy can then never exceed clean accuracy. The prediction is
    the adversarial one where the clean one is right, else the clean one, so that it can feed any accuracy
    metric (torchmetrics' ``Accuracy`` takes class indices).

    Args:
        model: a classifier in the mode it should be evaluated in (the attack itself always uses eval mode).
        x: normalised images ``(B, C, H, W)``.
        y: labels ``(B,)``.
        attack: the attack; ``None`` gives the clean predictions.

    Returns:
        Class indices ``(B,)``.
    """
    with torch.no_grad():
        clean = _logits(model(x)).argmax(dim=-1)
    if attack is None:
        return clean
    x_adv = attack(model, x, y)
    with torch.no_grad():
        adversarial = _logits(model(x_adv)).argmax(dim=-1)
    return torch.where(clean == y, adversarial, clean)


def robust_accuracy(
    model: nn.Module,
    loader: Iterable[Any],
    attack: Attack | None,
    preprocess: Callable[[Any], tuple[Tensor, Tensor]] | None = None,
    device: torch.device | str | None = None,
) -> float:
    """The fraction of examples the model classifies right both clean and under ``attack`` (see
    :func:`robust_predictions`), with the model in eval mode (restored afterwards).

    Args:
        model: the classifier.
        loader: batches ``(x, y)`` of normalised images, or whatever ``preprocess`` turns into those.
        attack: the attack; ``None`` gives the clean accuracy.
        preprocess: maps a batch (after the move to ``device``) to ``(x, y)``; for a paperzoo DataModule's
            uint8 batches, ``lambda batch: datamodule.on_after_batch_transfer(batch, 0)``.
        device: where to move each batch; ``None`` leaves it where the loader puts it.

    Returns:
        Robust accuracy in [0, 1].
    """
    correct = total = 0
    with _frozen_eval(model):
        for batch in loader:
            if device is not None:
                batch = [t.to(device) for t in batch]
            x, y = preprocess(batch) if preprocess is not None else batch
            correct += int((robust_predictions(model, x, y, attack) == y).sum())
            total += len(y)
    if total == 0:
        raise ValueError("the loader gave no examples")
    return correct / total
