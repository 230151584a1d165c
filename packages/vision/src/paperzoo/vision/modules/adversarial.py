"""Adversarial training and robust evaluation: an ImageClassifier that trains on FGSM or PGD examples."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torchmetrics
from torch import nn

from paperzoo.core.errors import ConfigError
from paperzoo.vision.modules.classifier import ImageClassifier
from paperzoo.vision.robustness import FGSM, PGD, Attack, InputSpace, robust_predictions


def _build_attack(
    kind: Literal["none", "fgsm", "pgd"], eps: float, steps: int, step_size: float, space: InputSpace
) -> Attack | None:
    if kind == "none":
        return None
    if kind == "fgsm":
        return FGSM(eps, space=space)
    return PGD(eps, steps=steps, step_size=step_size, random_start=True, space=space)


class AdversarialClassifier(ImageClassifier):
    """Adversarial training, Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks"
    (ICLR 2018): minimise the loss on the worst-case inputs that PGD finds in an L-infinity ball; with FGSM
    examples and a mix of clean ones it is the adversarial training of Goodfellow et al., "Explaining and
    Harnessing Adversarial Examples" (ICLR 2015).

    Each training batch has its first ``round(adv_fraction * B)`` images (the batches are shuffled, so a random
    subset) replaced by ``train_attack``'s adversarial versions, made against the current network; the loss is
    the mean over the mixed batch, so ``adv_fraction=0.5`` weighs clean and adversarial cross-entropy equally,
    as Goodfellow et al.'s objective with ``alpha = 0.5`` does, and ``adv_fraction=1`` is Madry et al.'s
    training on adversarial examples only. ``train/loss`` and ``train/acc`` are measured on the mixed batch.
    With ``train_attack="none"`` the training is standard, so one module serves both sides of a comparison.

    Validation and test log clean ``{val,test}/loss``, ``/acc``, ``/acc5`` as :class:`ImageClassifier` does,
    and ``test/robust_acc`` under ``eval_attack``: the fraction of test images classified right both clean and
    attacked (:func:`~paperzoo.vision.robustness.robust_predictions`). ``val/robust_acc`` is logged too when
    ``val_robust`` is set; it costs ``eval_steps + 3`` forward and ``eval_steps`` backward passes per validation
    image, where clean validation costs one forward pass.

    Budgets are in pixel units of [0, 1] images. The normalisation that turns them into the network's units is
    the DataModule's ``mean`` and ``std`` (read in :meth:`setup`), or ``mean`` and ``std`` given here. The
    attacks run the network in eval mode (batch norm on its running statistics) and never touch the
    parameters' gradients; see :class:`~paperzoo.vision.robustness.Attack`.

    Args:
        network: the classifier, as for :class:`ImageClassifier`.
        train_attack: the attack that makes the training examples: ``"pgd"`` (Madry et al.), ``"fgsm"``
            (Goodfellow et al.) or ``"none"`` (standard training).
        train_eps: the training budget in pixel units (0.3 on MNIST in Madry et al., 0.1 is usual on
            Fashion-MNIST, 8/255 on CIFAR-10).
        train_steps: PGD steps during training (Madry et al.: 40 on MNIST, 7 on CIFAR-10).
        train_step_size: PGD step size in pixel units (Madry et al.: 0.01 on MNIST, 2/255 on CIFAR-10).
        adv_fraction: fraction of each training batch replaced by adversarial examples, in [0, 1].
        eval_attack: the attack of ``{val,test}/robust_acc``: ``"pgd"`` or ``"fgsm"``.
        eval_eps: the evaluation budget in pixel units.
        eval_steps: PGD steps at evaluation (Madry et al. evaluate CIFAR-10 with 20).
        eval_step_size: PGD step size at evaluation, in pixel units.
        val_robust: also log ``val/robust_acc`` (slow: a full attack on every validation batch).
        mean: per-channel input mean; ``None`` takes the DataModule's.
        std: per-channel input standard deviation; ``None`` takes the DataModule's.
        **kwargs: the arguments of :class:`ImageClassifier` (``label_smoothing``, ``optimizer``,
            ``lr_scheduler`` ...), passed on unchanged; the CLI resolves and type-checks them as the parent's.
    """

    def __init__(
        self,
        network: nn.Module,
        train_attack: Literal["none", "fgsm", "pgd"] = "pgd",
        train_eps: float = 0.1,
        train_steps: int = 7,
        train_step_size: float = 0.025,
        adv_fraction: float = 1.0,
        eval_attack: Literal["fgsm", "pgd"] = "pgd",
        eval_eps: float = 0.1,
        eval_steps: int = 20,
        eval_step_size: float = 0.025,
        val_robust: bool = False,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(network, **kwargs)
        if train_attack not in ("none", "fgsm", "pgd") or eval_attack not in ("fgsm", "pgd"):
            raise ConfigError(
                f"train_attack must be none, fgsm or pgd and eval_attack fgsm or pgd; "
                f"got {train_attack!r} and {eval_attack!r}"
            )
        if not 0.0 <= adv_fraction <= 1.0:
            raise ConfigError(f"adv_fraction must be in [0, 1], got {adv_fraction}")
        if (mean is None) != (std is None):
            raise ConfigError("give both mean and std, or neither to take the DataModule's")
        self.train_attack_kind = train_attack
        self.train_eps, self.train_steps, self.train_step_size = train_eps, train_steps, train_step_size
        self.adv_fraction = adv_fraction
        self.eval_attack_kind = eval_attack
        self.eval_eps, self.eval_steps, self.eval_step_size = eval_eps, eval_steps, eval_step_size
        self.val_robust = val_robust
        for stage in ("val", "test"):
            self.metrics[f"{stage}_robust_acc"] = torchmetrics.Accuracy(task="multiclass", num_classes=self.num_classes)
        self.train_attack: Attack | None = None
        self.eval_attack: Attack | None = None
        self.input_space: InputSpace | None = None
        if mean is not None:
            self.configure_attacks(InputSpace(tuple(mean), tuple(std)))

    def configure_attacks(self, space: InputSpace) -> None:
        """Build the training and evaluation attacks for inputs normalised as ``space`` says."""
        self.input_space = space
        self.train_attack = _build_attack(
            self.train_attack_kind, self.train_eps, self.train_steps, self.train_step_size, space
        )
        self.eval_attack = _build_attack(
            self.eval_attack_kind, self.eval_eps, self.eval_steps, self.eval_step_size, space
        )

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.input_space is not None:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        if getattr(datamodule, "mean", None) is None or getattr(datamodule, "std", None) is None:
            raise ConfigError(
                f"{type(datamodule).__name__} has no mean and std to turn the attack budgets into input units; "
                "set model.init_args.mean and model.init_args.std"
            )
        self.configure_attacks(InputSpace.from_datamodule(datamodule))

    def _require_attacks(self) -> None:
        if self.input_space is None:
            raise ConfigError("the attacks need the input normalisation: call setup() or give mean and std")

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        self._require_attacks()
        x, y = batch
        n_adv = round(self.adv_fraction * len(x))
        if self.train_attack is not None and n_adv > 0:
            x_adv = self.train_attack(self.network, x[:n_adv], y[:n_adv])
            x = torch.cat([x_adv, x[n_adv:]])
        return super().training_step((x, y), batch_idx)

    def validation_step(self, batch, batch_idx: int) -> Any:
        output = super().validation_step(batch, batch_idx)
        if self.val_robust:
            self._robust_step(batch, "val")
        return output

    def test_step(self, batch, batch_idx: int) -> Any:
        output = super().test_step(batch, batch_idx)
        self._robust_step(batch, "test")
        return output

    def _robust_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        self._require_attacks()
        x, y = batch
        metric = self.metrics[f"{stage}_robust_acc"]
        metric(robust_predictions(self.network, x, y, self.eval_attack), y)
        self.log(f"{stage}/robust_acc", metric, on_step=False, on_epoch=True, prog_bar=True)
