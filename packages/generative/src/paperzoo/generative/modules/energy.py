"""Training energy-based models: the RBM with contrastive divergence, and JEM with SGLD and a replay buffer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.losses import BinarizeMode, binarize, to_unit_interval
from paperzoo.generative.modules.autoencoder import _PreviewImages, check_network_fits_data
from paperzoo.generative.modules.base import GenerativeModule


def _rbm_sgd(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.1, momentum=0.5, weight_decay=1e-4)


def _jem_adam(params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-4)


def sgld(
    energy: Callable[[Tensor], Tensor],
    x: Tensor,
    steps: int,
    step_size: float,
    noise_std: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Stochastic gradient Langevin dynamics as JEM runs it (Grathwohl et al. 2020):
    :math:`x_{t+1} = x_t - \alpha \nabla_x E(x_t) + \sigma \epsilon_t`, :math:`\epsilon_t \sim \mathcal{N}(0, I)`,
    with the step :math:`\alpha` and the noise :math:`\sigma` set separately (1 and 0.01 in the paper) rather than
    tied as :math:`\sigma = \sqrt{2\alpha}`.

    Works inside ``torch.no_grad`` and ``torch.inference_mode`` (validation, sampling callbacks); gradients reach
    only ``x``, never the parameters.

    Args:
        energy: maps a batch ``(B, ...)`` to its energies ``(B,)``.
        x: the starting points; not modified.
        steps: Langevin steps.
        step_size: :math:`\alpha`.
        noise_std: :math:`\sigma`.
        generator: random source of the noise, on ``x``'s device.

    Returns:
        The final points, detached, shaped like ``x``.
    """
    with torch.inference_mode(False), torch.enable_grad():
        x = x.detach().clone()
        for _ in range(steps):
            x.requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(x).sum(), x)
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = (x - step_size * grad + noise_std * noise).detach()
    return x


class RBMModule(GenerativeModule):
    r"""A Bernoulli-Bernoulli RBM trained by contrastive divergence (Hinton 2002) or persistent contrastive
    divergence (Tieleman 2008, "Training Restricted Boltzmann Machines using Approximations to the Likelihood
    Gradient", ICML 2008).

    The log-likelihood gradient of an RBM is :math:`-\nabla F(v_{\text{data}}) + \mathbb{E}_{p}[\nabla F(v)]`, so
    the loss :math:`\overline{F(v_{\text{data}})} - \overline{F(v^-)}` with negative samples :math:`v^-` held
    constant has the CD gradient: for the weights,
    :math:`-(\langle p(h \mid v) v^\top \rangle_{\text{data}} - \langle p(h \mid v^-) {v^-}^\top \rangle)`.
    CD-k takes :math:`v^-` after k Gibbs steps from the data batch; persistent CD keeps ``num_chains`` Gibbs chains
    across updates (in the checkpoint) and advances them k steps per update.

    The ``[-1, 1]`` images are binarised: ``"stochastic"`` samples each pixel with its ``[0, 1]`` intensity,
    ``"threshold"`` keeps pixels above 0.

    It logs ``train/loss`` (the free-energy gap), ``train/recon_error`` and ``val/recon_error`` (per-pixel squared
    error of the mean-field one-step reconstruction) and ``val/pseudo_log_likelihood`` (the stochastic estimate,
    nats per image; the checkpoint monitor, to maximise), and the same as ``test/...`` when testing. :meth:`sample`
    runs ``sample_steps`` Gibbs steps from uniform random states; :meth:`preview` adds inputs and reconstructions.

    Args:
        network: a :class:`~paperzoo.generative.models.rbm.RBM`.
        k: Gibbs steps per update (CD-k; 1 for CD-1, Tieleman 2008 uses 1 for PCD).
        persistent: persistent CD instead of CD-k.
        num_chains: persistent chains (Tieleman 2008 keeps as many as there are training cases in a mini-batch).
        binarize: ``"stochastic"`` or ``"threshold"``.
        sample_steps: Gibbs steps of :meth:`sample`.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default SGD with lr 0.1, momentum 0.5 and
            weight decay 1e-4 (Hinton's practical guide starts with momentum 0.5; persistent chains cannot follow
            the faster-moving weights that momentum 0.9 gives early on).
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        k: int = 1,
        persistent: bool = False,
        num_chains: int = 100,
        binarize: Literal["stochastic", "threshold"] = "stochastic",
        sample_steps: int = 1000,
        optimizer: OptimizerCallable = _rbm_sgd,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        if k < 1 or num_chains < 1 or sample_steps < 1:
            raise ConfigError(f"k, num_chains and sample_steps must be >= 1, got {k}, {num_chains}, {sample_steps}")
        if binarize not in ("stochastic", "threshold"):
            raise ConfigError(f"an RBM's binarize must be 'stochastic' or 'threshold', got {binarize!r}")
        self.network = network
        self.k = k
        self.persistent = persistent
        self.binarize: BinarizeMode = binarize
        self.sample_steps = sample_steps
        if persistent:
            self.register_buffer("chains", torch.bernoulli(torch.full((num_chains, network.num_visible), 0.5)))
        self._preview = _PreviewImages()

    def setup(self, stage: str) -> None:
        check_network_fits_data(self.network, getattr(self.trainer, "datamodule", None), classes=False)

    def forward(self, v: Tensor) -> Tensor:
        return self.network.free_energy(v)

    def visible(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``[-1, 1]`` images -> binary visible vectors ``(B, V)``."""
        return binarize(to_unit_interval(x), self.binarize, generator).flatten(1)

    @torch.no_grad()
    def negative_samples(self, v: Tensor) -> Tensor:
        """:math:`v^-`: k Gibbs steps from the data (CD-k) or from the persistent chains, which are advanced."""
        if self.persistent:
            negatives, _ = self.network.gibbs_chain(self.chains, self.k)
            self.chains.copy_(negatives)
            return negatives
        return self.network.gibbs_chain(v, self.k)[0]

    def contrastive_divergence_loss(self, v: Tensor, negatives: Tensor) -> Tensor:
        """:math:`\\overline{F(v)} - \\overline{F(v^-)}`, whose gradient is the CD estimate of :math:`-\\nabla \\log
        p`."""
        return self.network.free_energy(v).mean() - self.network.free_energy(negatives.detach()).mean()

    @torch.no_grad()
    def reconstruction_error(self, v: Tensor) -> Tensor:
        return (self.network.reconstruct(v) - v).pow(2).mean()

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, y = batch
        self._preview.remember(x, y, overwrite=False)
        v = self.visible(x)
        loss = self.contrastive_divergence_loss(v, self.negative_samples(v))
        self.log("train/loss", loss)
        self.log("train/recon_error", self.reconstruction_error(v), prog_bar=True)
        return loss

    def _evaluate(self, batch, batch_idx: int, stage: str) -> None:
        generator = torch.Generator(device=batch[0].device).manual_seed(batch_idx)
        v = self.visible(batch[0], generator)
        self.log(f"{stage}/recon_error", self.reconstruction_error(v), prog_bar=True, sync_dist=True)
        pseudo_ll = self.network.pseudo_log_likelihood(v, generator=generator).mean()
        self.log(f"{stage}/pseudo_log_likelihood", pseudo_ll, sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        if batch_idx == 0:
            self._preview.remember(*batch, overwrite=True)
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        """The validation metrics on the test set, as ``test/...``."""
        self._evaluate(batch, batch_idx, "test")

    def _to_images(self, v: Tensor) -> Tensor:
        return self.network.to_images(v) * 2 - 1

    @torch.no_grad()
    def sample(
        self, num_samples: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """The visible probabilities after ``sample_steps`` Gibbs steps from uniform random binary states, as
        ``[-1, 1]`` images (``labels`` are ignored)."""
        start = torch.full((num_samples, self.network.num_visible), 0.5, device=self.device)
        v = torch.bernoulli(start, generator=generator)
        _, probs = self.network.gibbs_chain(v, self.sample_steps, generator)
        return self._to_images(probs)

    @torch.no_grad()
    def preview(self, num_samples: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Samples and, once a batch has been seen, binarised inputs and their mean-field reconstructions."""
        sheets = {"samples": self.sample(num_samples, generator=generator)}
        if self._preview.images is not None:
            v = self.visible(self._preview.images[:num_samples].to(self.device), generator)
            sheets["inputs"] = self._to_images(v)
            sheets["reconstructions"] = self._to_images(self.network.reconstruct(v))
        return sheets


class JEMModule(GenerativeModule):
    r"""The Joint Energy-based Model of Grathwohl et al. 2020, "Your Classifier is Secretly an Energy Based Model
    and You Should Treat it Like One" (ICLR 2020): a classifier trained on :math:`\log p(y \mid x) + \log p(x)`.

    .. math::
        \mathcal{L} = \mathrm{CE}(f(x), y) + \lambda \big(\overline{E(x)} - \overline{E(\hat x)}\big), \qquad
        E(x) = -\mathrm{LogSumExp}_y f(x)[y],

    where :math:`\hat x` are SGLD samples (:func:`sgld`; 20 steps of size 1 with noise 0.01) started from a
    replay buffer of 10000 images, each start replaced with probability 0.05 by uniform noise in ``[-1, 1]``; the
    final samples overwrite the buffer entries they started from. The gradient of the bracket is the paper's
    estimate of :math:`-\nabla \log p(x)`. The network runs in eval mode during SGLD. Training images get
    Gaussian noise of standard deviation ``data_noise`` (0.03 in the authors' code) for stability.

    It logs ``train/loss``, ``train/ce``, ``train/gen`` (the bracket), ``train/energy_data``,
    ``train/energy_sample``, ``train/acc``, and ``val/loss`` (cross-entropy), ``val/acc`` (the checkpoint monitor).
    :meth:`sample` runs ``sample_steps`` SGLD steps from buffer entries, or, given labels, from uniform noise on the
    class-conditional energy :math:`E(x, y) = -f(x)[y]`.

    Args:
        network: a :class:`~paperzoo.generative.models.jem.JEMClassifier` (``num_classes``, ``in_channels``,
            ``image_size`` and ``energy``).
        generative_weight: :math:`\lambda` (0 trains a plain classifier).
        sgld_steps: Langevin steps per update.
        sgld_step_size: :math:`\alpha`.
        sgld_noise: :math:`\sigma`.
        buffer_size: replay buffer entries (kept in the checkpoint).
        reinit_prob: probability that an SGLD chain starts from fresh uniform noise.
        data_noise: standard deviation of the Gaussian noise added to training images.
        sample_steps: SGLD steps of :meth:`sample`.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default Adam, lr 1e-4 (the paper's).
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        generative_weight: float = 1.0,
        sgld_steps: int = 20,
        sgld_step_size: float = 1.0,
        sgld_noise: float = 0.01,
        buffer_size: int = 10000,
        reinit_prob: float = 0.05,
        data_noise: float = 0.03,
        sample_steps: int = 100,
        optimizer: OptimizerCallable = _jem_adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        if buffer_size < 1 or sgld_steps < 0 or sample_steps < 0 or not 0.0 <= reinit_prob <= 1.0:
            raise ConfigError(
                f"need buffer_size >= 1, sgld_steps and sample_steps >= 0 and reinit_prob in [0, 1], got "
                f"{buffer_size}, {sgld_steps}, {sample_steps}, {reinit_prob}"
            )
        self.network = network
        self.generative_weight = generative_weight
        self.sgld_steps = sgld_steps
        self.sgld_step_size = sgld_step_size
        self.sgld_noise = sgld_noise
        self.reinit_prob = reinit_prob
        self.data_noise = data_noise
        self.sample_steps = sample_steps
        self.image_shape = (network.in_channels, network.image_size, network.image_size)
        self.register_buffer("replay_buffer", torch.rand(buffer_size, *self.image_shape) * 2 - 1)
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_acc": torchmetrics.Accuracy(task="multiclass", num_classes=int(network.num_classes))
                for stage in ("train", "val", "test")
            }
        )

    def setup(self, stage: str) -> None:
        check_network_fits_data(self.network, getattr(self.trainer, "datamodule", None), classes=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def _uniform(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.rand((num, *self.image_shape), generator=generator, device=self.replay_buffer.device) * 2 - 1

    @torch.no_grad()
    def initial_samples(self, num: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """SGLD starting points: random buffer entries, each replaced by uniform noise with ``reinit_prob``.

        Returns:
            The starts ``(num, C, H, W)``, the buffer indices they came from ``(num,)``, and the boolean mask of
            reinitialised starts ``(num,)``.
        """
        device = self.replay_buffer.device
        indices = torch.randint(len(self.replay_buffer), (num,), generator=generator, device=device)
        reinit = torch.rand(num, generator=generator, device=device) < self.reinit_prob
        starts = torch.where(reinit[:, None, None, None], self._uniform(num, generator), self.replay_buffer[indices])
        return starts, indices, reinit

    def run_sgld(
        self, x: Tensor, steps: int, labels: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """:func:`sgld` on :math:`E(x)` (or :math:`E(x, y)` given labels) with the network in eval mode."""
        was_training = self.network.training
        self.network.eval()
        try:
            return sgld(
                lambda points: self.network.energy(points, labels),
                x,
                steps,
                self.sgld_step_size,
                self.sgld_noise,
                generator,
            )
        finally:
            self.network.train(was_training)

    def _classify(self, x: Tensor, y: Tensor, stage: str) -> tuple[Tensor, Tensor]:
        logits = self.network(x)
        ce = F.cross_entropy(logits, y)
        metric = self.metrics[f"{stage}_acc"]
        metric(logits.detach(), y)
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=True)
        return logits, ce

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, y = batch
        if self.data_noise > 0:
            x = x + self.data_noise * torch.randn_like(x)
        logits, ce = self._classify(x, y, "train")
        loss = ce
        if self.generative_weight > 0:
            starts, indices, _ = self.initial_samples(x.size(0))
            samples = self.run_sgld(starts, self.sgld_steps)
            with torch.no_grad():
                self.replay_buffer[indices] = samples
            energy_data = self.network.energy_from_logits(logits).mean()
            energy_sample = self.network.energy(samples).mean()
            generative = energy_data - energy_sample
            loss = ce + self.generative_weight * generative
            self.log("train/gen", generative)
            self.log("train/energy_data", energy_data.detach())
            self.log("train/energy_sample", energy_sample.detach())
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/ce", ce)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        _, ce = self._classify(x, y, "val")
        self.log("val/loss", ce, sync_dist=True)

    def test_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        _, ce = self._classify(x, y, "test")
        self.log("test/loss", ce, sync_dist=True)

    def sample(
        self, num_samples: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """``sample_steps`` SGLD steps from random buffer entries (unconditional) or, with ``labels``, from uniform
        noise on :math:`E(x, y)`; images clamped to ``[-1, 1]``. The buffer is left unchanged."""
        if labels is None:
            indices = torch.randint(len(self.replay_buffer), (num_samples,), generator=generator, device=self.device)
            starts = self.replay_buffer[indices]
        else:
            labels = labels.to(self.device)
            starts = self._uniform(num_samples, generator)
        return self.run_sgld(starts, self.sample_steps, labels, generator).clamp(-1, 1)
