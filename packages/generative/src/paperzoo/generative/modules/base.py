"""The base of the generative LightningModules: a module that can draw images."""

from __future__ import annotations

import torch
from torch import Tensor

from paperzoo.core.modules import PaperzooModule


class GenerativeModule(PaperzooModule):
    """A LightningModule whose model draws images, in ``[-1, 1]``, ``(N, C, H, W)``.

    Subclasses implement :meth:`sample`; the shared callbacks use it: :class:`~paperzoo.generative.SampleGrid`
    saves (and logs to W&B) sheets of :meth:`preview` every few epochs, and
    :class:`~paperzoo.generative.GenerativeMetrics` compares :meth:`sample` against the test images with FID
    and KID. A module with more to show than samples (reconstructions, interpolations, translations) overrides
    :meth:`preview`.

    The optimiser arguments are :class:`~paperzoo.core.modules.PaperzooModule`'s.
    """

    def sample(
        self, num_samples: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """Draw ``num_samples`` images in ``[-1, 1]`` on the module's device.

        Args:
            num_samples: how many images.
            generator: the random source, on the module's device; ``None`` for the global one.
            labels: ``(num_samples,)`` class labels for a class-conditional model; ``None`` draws them
                uniformly (or is ignored by an unconditional model).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement sample()")

    def preview(
        self, num_samples: int, generator: torch.Generator | None = None
    ) -> dict[str, Tensor | tuple[Tensor, int]]:
        """Named image sheets to show while training: each ``(N, C, H, W)`` in ``[-1, 1]``, or ``(images, nrow)``
        for a sheet with ``nrow`` images a row (a square grid otherwise)."""
        return {"samples": self.sample(num_samples, generator=generator)}

    def metric_images(self, batch) -> tuple[Tensor, Tensor | None]:
        """The real images of a test batch that sample metrics compare against, and the model's own images for the
        same batch when they depend on it (a translation model's outputs); ``None`` draws them with :meth:`sample`."""
        return batch[0], None

    def test_step(self, batch, batch_idx: int) -> None:
        """Nothing by default: sample quality is measured by :class:`~paperzoo.generative.GenerativeMetrics`."""
        return None
