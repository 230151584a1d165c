r"""CycleGAN: unpaired image-to-image translation with two generators, two discriminators and a cycle loss."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.modules.base import GenerativeModule
from paperzoo.generative.modules.gan import dcgan_adam, set_requires_grad


class ImageHistoryBuffer:
    """The history of generated images of Shrivastava et al. 2017, "Learning from Simulated and Unsupervised
    Images through Adversarial Training" (CVPR 2017, section 2.3), as CycleGAN uses it (Zhu et al. 2017, section 4):
    the discriminator is shown generated images drawn partly from earlier generators, which damps oscillation.

    Until ``capacity`` images are stored, each queried image is stored and returned as it is. After that, each
    queried image is, with probability 1/2, swapped with a stored image chosen uniformly (the stored one is
    returned, the new one takes its place), and otherwise returned as it is, leaving the buffer unchanged.

    Args:
        capacity: images kept (50 in CycleGAN); 0 returns every batch unchanged.
        generator: the random source (a CPU generator); ``None`` for the global one.
    """

    def __init__(self, capacity: int = 50, generator: torch.Generator | None = None) -> None:
        if capacity < 0:
            raise ConfigError(f"capacity={capacity} must be >= 0")
        self.capacity = capacity
        self.generator = generator
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor) -> Tensor:
        """Store a batch ``(B, C, H, W)`` of generated images and return a batch of the same shape to train on."""
        images = images.detach()
        if self.capacity == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.capacity:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                i = int(torch.randint(self.capacity, (), generator=self.generator))
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)


class LinearDecay:
    """The learning-rate factor of CycleGAN (Zhu et al. 2017, section 4): 1 for ``constant_epochs`` epochs, then
    falling linearly towards 0 over ``decay_epochs`` more, as in the authors' code: epoch ``e`` (from 0) trains at
    ``min(1, (constant_epochs + decay_epochs - e) / (decay_epochs + 1))``, so the last decay epoch keeps
    ``1 / (decay_epochs + 1)`` of the rate and any later epoch none.

    A callable object rather than a function, so :class:`~torch.optim.lr_scheduler.LambdaLR` saves it in its state.
    """

    def __init__(self, constant_epochs: int, decay_epochs: int) -> None:
        self.constant_epochs = constant_epochs
        self.decay_epochs = decay_epochs

    def __call__(self, epoch: int) -> float:
        if self.decay_epochs == 0:
            return 1.0
        return max(0.0, min(1.0, (self.constant_epochs + self.decay_epochs - epoch) / (self.decay_epochs + 1)))


def _least_squares(outputs: Tensor, target: float) -> Tensor:
    """The least-squares GAN loss of Mao et al. 2017, :math:`\\mathrm{mean}\\,(D(\\cdot) - t)^2`."""
    return F.mse_loss(outputs, torch.full_like(outputs, target))


class CycleGANModule(GenerativeModule):
    r"""CycleGAN of Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
    Adversarial Networks" (ICCV 2017), Eq. 1-3 with the least-squares losses of section 4 (Mao et al. 2017):

    .. math::
        \mathcal{L}_G = \mathbb{E}[(D_B(G(a)) - 1)^2] + \mathbb{E}[(D_A(F(b)) - 1)^2]
        + \lambda_{cyc} \big(\lVert F(G(a)) - a \rVert_1 + \lVert G(F(b)) - b \rVert_1\big)
        + \lambda_{id} \big(\lVert G(b) - b \rVert_1 + \lVert F(a) - a \rVert_1\big)

    .. math::
        \mathcal{L}_{D_B} = \tfrac{1}{2} \big(\mathbb{E}[(D_B(b) - 1)^2] + \mathbb{E}[D_B(\tilde{b})^2]\big)

    (and :math:`\mathcal{L}_{D_A}` alike), with the :math:`L_1` norms averaged over pixels. The generated images
    :math:`\tilde{b}` and :math:`\tilde{a}` that the discriminators see come through an
    :class:`ImageHistoryBuffer` of 50. Each training step updates both generators (one optimiser) and then both
    discriminators (another); the learning rates stay constant for ``constant_epochs`` epochs and then decay
    linearly (:class:`LinearDecay`). The identity term (section 5.2, used for painting -> photo) needs both domains
    to have the same number of channels; set ``identity_weight: 0`` otherwise.

    There is nothing to sample unconditionally: :meth:`sample` translates stored domain-A images to domain B, the
    first ``sample_pool_size`` images of the last validation run (or of the first training batch, before any
    validation). :meth:`translate_a_to_b` and :meth:`translate_b_to_a` translate given images. The history
    buffers and the stored images are not saved in checkpoints: a resumed run refills them.

    Batches are ``(images_a, images_b)``, unpaired. Logged: ``train/g_loss``, ``train/gan_loss``,
    ``train/cycle_loss``, ``train/identity_loss``, ``train/d_loss``, ``train/d_a_loss``, ``train/d_b_loss``; on
    validation ``val/cycle_loss`` (a monitor, lower is better), ``val/identity_loss`` and ``val/gan_loss``.

    Args:
        generator_ab: :math:`G`, translating domain A to B.
        generator_ba: :math:`F`, translating domain B to A.
        discriminator_a: :math:`D_A`, real A against :math:`F(b)`; any output shape (a PatchGAN map).
        discriminator_b: :math:`D_B`, real B against :math:`G(a)`.
        cycle_weight: :math:`\lambda_{cyc}` (10).
        identity_weight: :math:`\lambda_{id}`; the paper's :math:`0.5 \lambda_{cyc} = 5` where it is used, 0 to
            turn the term off.
        history_size: generated images kept per domain for the discriminators (50).
        constant_epochs: epochs at the initial learning rate (100).
        decay_epochs: epochs of linear decay after them (100); 0 keeps the rate constant.
        sample_pool_size: domain-A and domain-B images stored for :meth:`sample` and :meth:`preview`.
        optimizer: builds the optimiser of both generators (Adam, lr 2e-4, betas (0.5, 0.999)).
        discriminator_optimizer: builds the optimiser of both discriminators (the same Adam).
    """

    def __init__(
        self,
        generator_ab: nn.Module,
        generator_ba: nn.Module,
        discriminator_a: nn.Module,
        discriminator_b: nn.Module,
        cycle_weight: float = 10.0,
        identity_weight: float = 5.0,
        history_size: int = 50,
        constant_epochs: int = 100,
        decay_epochs: int = 100,
        sample_pool_size: int = 64,
        optimizer: OptimizerCallable = dcgan_adam,
        discriminator_optimizer: OptimizerCallable = dcgan_adam,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=None, scheduler_interval="epoch")
        self.save_hyperparameters(
            ignore=[
                "generator_ab",
                "generator_ba",
                "discriminator_a",
                "discriminator_b",
                "optimizer",
                "discriminator_optimizer",
            ]
        )
        if cycle_weight < 0 or identity_weight < 0 or history_size < 0:
            raise ConfigError(
                f"cycle_weight={cycle_weight}, identity_weight={identity_weight} and history_size={history_size} "
                "must be >= 0"
            )
        if constant_epochs < 0 or decay_epochs < 0 or sample_pool_size < 1:
            raise ConfigError(
                f"constant_epochs={constant_epochs} and decay_epochs={decay_epochs} must be >= 0 and "
                f"sample_pool_size={sample_pool_size} >= 1"
            )
        self.automatic_optimization = False
        self.generator_ab = generator_ab
        self.generator_ba = generator_ba
        self.discriminator_a = discriminator_a
        self.discriminator_b = discriminator_b
        self.discriminator_optimizer_factory = discriminator_optimizer
        self.cycle_weight = cycle_weight
        self.identity_weight = identity_weight
        self.history_a = ImageHistoryBuffer(history_size)
        self.history_b = ImageHistoryBuffer(history_size)
        self.lr_factor = LinearDecay(constant_epochs, decay_epochs)
        self.sample_pool_size = sample_pool_size
        self._pool: tuple[Tensor, Tensor] | None = None
        self._pending_pool: list[tuple[Tensor, Tensor]] = []

    # ----------------------------------------------------------------------------------------------------- translation

    def forward(self, images_a: Tensor) -> Tensor:
        return self.generator_ab(images_a)

    def translate_a_to_b(self, images_a: Tensor) -> Tensor:
        """:math:`G(a)`: domain-A images ``(B, C_A, H, W)`` translated to domain B."""
        return self.generator_ab(images_a)

    def translate_b_to_a(self, images_b: Tensor) -> Tensor:
        """:math:`F(b)`: domain-B images ``(B, C_B, H, W)`` translated to domain A."""
        return self.generator_ba(images_b)

    def _stored(self) -> tuple[Tensor, Tensor]:
        if self._pool is None:
            raise RuntimeError(
                "CycleGANModule.sample and preview translate stored images, and none are stored before the first "
                "training or validation batch; call translate_a_to_b on your own images instead"
            )
        return self._pool[0].to(self.device), self._pool[1].to(self.device)

    @torch.no_grad()
    def sample(
        self, num_samples: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """Translations :math:`G(a)` of the stored domain-A images, cycling through them when ``num_samples``
        exceeds ``sample_pool_size`` (so FID against domain B counts each one several times). ``generator`` and
        ``labels`` are ignored: the translation is deterministic."""
        images_a, _ = self._stored()
        index = torch.arange(num_samples, device=self.device) % len(images_a)
        return self.translate_a_to_b(images_a).clamp(-1, 1)[index]

    @torch.no_grad()
    def preview(self, num_samples: int, generator: torch.Generator | None = None) -> dict[str, tuple[Tensor, int]]:
        """Translation sheets of up to ``num_samples`` stored images per domain, row-major with three per row:

        ``"a_to_b"``: rows :math:`[a, G(a), F(G(a))]`; ``"b_to_a"``: rows :math:`[b, F(b), G(F(b))]`.
        """
        images_a, images_b = self._stored()
        a, b = images_a[:num_samples], images_b[:num_samples]
        fake_b, fake_a = self.translate_a_to_b(a), self.translate_b_to_a(b)
        rows_a = torch.stack([a, fake_b, self.translate_b_to_a(fake_b)], dim=1)  # (N, 3, C, H, W)
        rows_b = torch.stack([b, fake_a, self.translate_a_to_b(fake_a)], dim=1)  # (N, 3, C, H, W)
        return {"a_to_b": (rows_a.flatten(0, 1).clamp(-1, 1), 3), "b_to_a": (rows_b.flatten(0, 1).clamp(-1, 1), 3)}

    @torch.no_grad()
    def metric_images(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """For the sample metrics: the test batch's domain-B images against the translations :math:`G(a)` of its
        domain-A images."""
        images_a, images_b = batch
        return images_b, self.translate_a_to_b(images_a).clamp(-1, 1)

    # ----------------------------------------------------------------------------------------------------- losses

    def generator_losses(self, real_a: Tensor, real_b: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """The generators' objective :math:`\\mathcal{L}_G` and its terms.

        Returns:
            ``{"g_loss", "gan_loss", "cycle_loss", "identity_loss"}`` (the last three unweighted), and the
            translations :math:`F(b)` and :math:`G(a)`.
        """
        fake_b = self.generator_ab(real_a)
        fake_a = self.generator_ba(real_b)
        gan = _least_squares(self.discriminator_b(fake_b), 1.0) + _least_squares(self.discriminator_a(fake_a), 1.0)
        cycle = F.l1_loss(self.generator_ba(fake_b), real_a) + F.l1_loss(self.generator_ab(fake_a), real_b)
        if self.identity_weight > 0:
            identity = F.l1_loss(self.generator_ab(real_b), real_b) + F.l1_loss(self.generator_ba(real_a), real_a)
        else:
            identity = torch.zeros((), device=real_a.device)
        total = gan + self.cycle_weight * cycle + self.identity_weight * identity
        losses = {"g_loss": total, "gan_loss": gan, "cycle_loss": cycle, "identity_loss": identity}
        return losses, fake_a, fake_b

    @staticmethod
    def discriminator_loss(discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """:math:`\\tfrac{1}{2} (\\mathbb{E}[(D(x) - 1)^2] + \\mathbb{E}[D(\\tilde{x})^2])`, halved as in section 4
        to slow the discriminator relative to the generator."""
        return 0.5 * (_least_squares(discriminator(real), 1.0) + _least_squares(discriminator(fake), 0.0))

    # ----------------------------------------------------------------------------------------------------- training

    def configure_optimizers(self) -> list[dict]:
        generators = itertools.chain(self.generator_ab.parameters(), self.generator_ba.parameters())
        discriminators = itertools.chain(self.discriminator_a.parameters(), self.discriminator_b.parameters())
        optimizers = (
            self.optimizer_factory(list(generators)),
            self.discriminator_optimizer_factory(list(discriminators)),
        )
        configs = []
        for optimizer in optimizers:
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_factor)
            configs.append({"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}})
        return configs

    def _remember(self, images_a: Tensor, images_b: Tensor) -> None:
        n = self.sample_pool_size
        self._pool = (images_a[:n].detach().cpu(), images_b[:n].detach().cpu())

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real_a, real_b = batch
        if self._pool is None:
            self._remember(real_a, real_b)
        g_opt, d_opt = self.optimizers()
        batch_size = len(real_a)

        discriminators = (self.discriminator_a, self.discriminator_b)
        for d in discriminators:
            set_requires_grad(d, False)
        losses, fake_a, fake_b = self.generator_losses(real_a, real_b)
        g_opt.zero_grad(set_to_none=True)
        self.manual_backward(losses["g_loss"])
        g_opt.step()
        for d in discriminators:
            set_requires_grad(d, True)

        d_a_loss = self.discriminator_loss(self.discriminator_a, real_a, self.history_a.query(fake_a))
        d_b_loss = self.discriminator_loss(self.discriminator_b, real_b, self.history_b.query(fake_b))
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(d_a_loss + d_b_loss)
        d_opt.step()

        log = {f"train/{name}": value.detach() for name, value in losses.items()}
        log |= {"train/d_loss": (d_a_loss + d_b_loss).detach(), "train/d_a_loss": d_a_loss.detach()}
        log["train/d_b_loss"] = d_b_loss.detach()
        self.log_dict(log, on_step=True, on_epoch=True, batch_size=batch_size)

    def on_train_epoch_end(self) -> None:
        for scheduler in self.lr_schedulers():
            scheduler.step()

    # Validation and test both score the generators and store their first images for the preview sheets, so that a
    # checkpoint tested on its own (`paperzoo test --ckpt_path ...`) has images to translate.

    def on_validation_epoch_start(self) -> None:
        self._pending_pool = []

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self._pending_pool:
            images_a = torch.cat([a for a, _ in self._pending_pool])
            images_b = torch.cat([b for _, b in self._pending_pool])
            self._remember(images_a, images_b)
            self._pending_pool = []

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    on_test_epoch_start = on_validation_epoch_start
    on_test_epoch_end = on_validation_epoch_end

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        real_a, real_b = batch
        stored = sum(len(a) for a, _ in self._pending_pool)
        if stored < self.sample_pool_size:
            self._pending_pool.append((real_a.detach().cpu(), real_b.detach().cpu()))
        losses, _, _ = self.generator_losses(real_a, real_b)
        kwargs = {"on_epoch": True, "batch_size": len(real_a), "sync_dist": True}
        self.log(f"{stage}/cycle_loss", losses["cycle_loss"], prog_bar=True, **kwargs)
        self.log_dict({f"{stage}/{name}": losses[name] for name in ("identity_loss", "gan_loss")}, **kwargs)
