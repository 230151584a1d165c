"""The stochastic augmentation of SimCLR, applied per image to a batch of tensors with torchvision's v2 ops."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.transforms import v2


class SimCLRAugmentation(nn.Module):
    """The data augmentation of Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
    Representations" (SimCLR), section 3 and Appendix A, adapted to small grey images.

    Each image of the batch gets its own random draw of, in this order:

    1. a random resized crop (area ``crop_scale``, aspect ratio ``crop_ratio``) resized back to the input size, and
       a horizontal flip with probability ``flip_p`` (the paper's "random crop and resize (with random flip)");
    2. with probability ``jitter_p``, colour jitter reduced to brightness and contrast, applied in random order
       (the paper's colour distortion at strength ``s`` has ``0.8 s`` for both; saturation, hue and random
       grey-scale do nothing to a one-channel image);
    3. with probability ``blur_p``, a Gaussian blur with ``sigma`` uniform in ``blur_sigma`` and a ``blur_kernel``
       wide kernel (the paper: p = 0.5, sigma in [0.1, 2.0], kernel 10% of the image side).

    Defaults for 28x28 Fashion-MNIST: ``crop_scale=(0.2, 1)`` rather than the paper's (0.08, 1), since 8% of 28x28 is
    an 8x8 patch, blown up 3.5 times, that shows little of a garment ((0.2, 1) is also the range of MoCo v2 and
    SimSiam); colour strength ``s = 0.5`` and no blur (``blur_p=0``), as in the paper's 32x32 CIFAR-10 runs
    (Appendix B.9): at this size the paper's kernel, 10% of the side, is 3 pixels, and blurring removes much of the
    little detail a 28x28 image has. ``blur_p=0.5`` turns the blur on.

    The ops are torchvision's ``transforms.v2``. They draw one set of parameters per call, so on a whole batch they
    would crop, flip and jitter every image the same way; SimCLR needs independent views, so they are called once per
    image. Their random numbers come from torch's CPU generator, which :meth:`forward` forks and seeds when given a
    ``seed``: the same seed gives the same views, and the global random state is left as it was.

    Args:
        crop_scale: range of the crop's area as a fraction of the image's.
        crop_ratio: range of the crop's aspect ratio (width / height).
        flip_p: probability of a horizontal flip.
        brightness: the brightness factor is uniform in ``[1 - brightness, 1 + brightness]``.
        contrast: the contrast factor is uniform in ``[1 - contrast, 1 + contrast]``.
        jitter_p: probability of applying the brightness and contrast jitter.
        blur_p: probability of a Gaussian blur; 0 leaves it out.
        blur_sigma: range of the blur's standard deviation, in pixels.
        blur_kernel: the blur's kernel side (odd).

    Shapes:
        - input: :math:`(B, C, H, W)`, floats in [0, 1]
        - output: :math:`(B, C, H, W)`, floats in [0, 1]
    """

    def __init__(
        self,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        brightness: float = 0.4,
        contrast: float = 0.4,
        jitter_p: float = 0.8,
        blur_p: float = 0.0,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.crop_scale = tuple(crop_scale)
        self.crop_ratio = tuple(crop_ratio)
        self.flip_p = flip_p
        self.brightness = brightness
        self.contrast = contrast
        self.jitter_p = jitter_p
        self.blur_p = blur_p
        self.blur_sigma = tuple(blur_sigma)
        self.blur_kernel = blur_kernel
        self._pipelines: dict[tuple[int, int], v2.Compose] = {}

    def pipeline(self, size: tuple[int, int]) -> v2.Compose:
        """The v2 transform that makes one view of one ``size`` image (built once per size)."""
        if size not in self._pipelines:
            ops = [
                v2.RandomResizedCrop(size, scale=self.crop_scale, ratio=self.crop_ratio, antialias=True),
                v2.RandomHorizontalFlip(self.flip_p),
                v2.RandomApply([v2.ColorJitter(brightness=self.brightness, contrast=self.contrast)], p=self.jitter_p),
            ]
            if self.blur_p > 0:
                blur = v2.GaussianBlur(self.blur_kernel, sigma=self.blur_sigma)
                ops.append(v2.RandomApply([blur], p=self.blur_p))
            self._pipelines[size] = v2.Compose(ops)
        return self._pipelines[size]

    def forward(self, images: Tensor, seed: int | None = None) -> Tensor:
        """One random view of every image.

        Args:
            images: a batch of images in [0, 1].
            seed: seeds the draws; ``None`` draws from (and advances) torch's global CPU generator.
        """
        pipeline = self.pipeline(tuple(images.shape[-2:]))
        if seed is None:
            return torch.stack([pipeline(image) for image in images])
        with torch.random.fork_rng(devices=[]):  # the v2 ops draw on the CPU generator only
            torch.default_generator.manual_seed(seed)
            return torch.stack([pipeline(image) for image in images])  # (B, C, H, W)

    def extra_repr(self) -> str:
        return (
            f"crop_scale={self.crop_scale}, crop_ratio={tuple(round(r, 4) for r in self.crop_ratio)}, "
            f"flip_p={self.flip_p}, brightness={self.brightness}, contrast={self.contrast}, jitter_p={self.jitter_p}, "
            f"blur_p={self.blur_p}"
        )
