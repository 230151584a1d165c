"""The base class of the image-classification DataModules: in-memory uint8 images, GPU-side augmentation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import TensorDataset
from torchvision.transforms import v2

from paperzoo.core.data import SeededLoaderDataModule, run_seed, seeded_split
from paperzoo.core.errors import ConfigError


class ImageClassificationDataModule(SeededLoaderDataModule):
    """An image-classification dataset held in memory as uint8 tensors, normalised and augmented per batch.

    Subclasses read a dataset's standard files in :meth:`load_arrays`; this class carves a stratified,
    seeded validation split out of the training set, serves the three splits, and in
    :meth:`on_after_batch_transfer` (on the training device, after the batch is moved) turns uint8 into
    floats, applies the training augmentation and normalises with the dataset's per-channel mean and std.

    The augmentation is the random crop with zero padding and the random horizontal flip of He et al.,
    "Deep Residual Learning for Image Recognition" (CVPR 2016), section 4.2. Its random numbers depend only
    on ``(seed, global_step, global_rank)``, so a run resumed from a checkpoint augments exactly as an
    uninterrupted one; the data order is made resumable the same way by :class:`EpochSeededSampler`.

    RandAugment (Cubuk et al., "RandAugment: Practical Automated Data Augmentation with a Reduced Search
    Space", CVPR Workshops 2020) is torchvision's :class:`~torchvision.transforms.v2.RandAugment`, applied to
    each uint8 image of a training batch after the crop and flip (each image draws its own operations, from a
    generator seeded like the crops).

    Args:
        data_dir: where the dataset's files are; ``None`` for the class's ``default_data_dir``. Each subclass
            documents its layout.
        batch_size: training batch size (per device).
        eval_batch_size: batch size of the validation, test and predict loaders; ``None`` for
            ``2 * batch_size``.
        val_size: number of training images held out for validation (stratified by class).
        seed: seed of the validation split, the shuffling and the augmentation.
        num_workers: DataLoader worker processes; the images are already in memory, so 0 is usually fastest.
        crop_padding: pixels of zero padding for the random crop during training; 0 turns the crop off.
        hflip: flip training images horizontally with probability 1/2.
        randaugment_ops: RandAugment's N, the number of operations applied to each training image; 0 turns
            RandAugment off (2 in Cubuk et al.).
        randaugment_magnitude: RandAugment's M, the shared magnitude of the operations, 0..30 (9 for ImageNet
            ResNet-50 in Cubuk et al.).
    """

    num_classes: int
    in_chans: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    default_data_dir: str | None = None

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: int = 5000,
        seed: int = 0,
        num_workers: int = 0,
        crop_padding: int = 0,
        hflip: bool = False,
        randaugment_ops: int = 0,
        randaugment_magnitude: int = 9,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if randaugment_ops < 0 or not 0 <= randaugment_magnitude <= 30:
            raise ConfigError(
                f"randaugment_ops={randaugment_ops} must be >= 0 and randaugment_magnitude={randaugment_magnitude} "
                "must lie in 0..30 (RandAugment's 31 magnitude bins)"
            )
        self.data_dir = data_dir if data_dir is not None else self.default_data_dir
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size if eval_batch_size is not None else 2 * batch_size
        self.val_size = val_size
        self.seed = seed
        self.num_workers = num_workers
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.randaugment_ops = randaugment_ops
        self.randaugment_magnitude = randaugment_magnitude
        self.randaugment = v2.RandAugment(randaugment_ops, randaugment_magnitude) if randaugment_ops > 0 else None
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    def load_arrays(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Read the dataset's files; every subclass implements this.

        Returns:
            ``(x_train, y_train, x_test, y_test)``: images as uint8 tensors of shape ``(N, C, H, W)``, labels
            as int64 tensors of shape ``(N,)``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement load_arrays()")

    def setup(self, stage: str | None = None) -> None:
        """Load the data once and split validation off the training set; later calls do nothing."""
        if self.train_set is not None:
            return
        x_train, y_train, x_test, y_test = self.load_arrays()
        if not 0 <= self.val_size < len(y_train):
            raise ConfigError(
                f"val_size={self.val_size} must be at least 0 and less than the {len(y_train)} training images"
            )
        keep, held = seeded_split(len(y_train), self.val_size, self.seed, labels=y_train.numpy())
        keep, held = torch.from_numpy(keep), torch.from_numpy(held)
        self.train_set = TensorDataset(x_train[keep], y_train[keep])
        self.val_set = TensorDataset(x_train[held], y_train[held])
        self.test_set = TensorDataset(x_test, y_test)

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        """Turn a uint8 batch into normalised floats, augmenting it first while training.

        Args:
            batch: ``(x, y)`` with ``x`` uint8 of shape ``(B, C, H, W)``.
            dataloader_idx: index of the dataloader the batch came from (unused).

        Returns:
            ``(x, y)`` with ``x`` float32 ``(B, C, H, W)``, ``(x / 255 - mean) / std``.
        """
        x, y = batch
        if self.trainer is not None and self.trainer.training:
            if self.crop_padding > 0 or self.hflip:
                x = self._augment(x, self._augmentation_generator(x.device))
            if self.randaugment is not None:
                x = self._randaugment(x)
        x = x.float().div_(255)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std, y

    def _augmentation_generator(self, device: torch.device, stream: int = 0) -> torch.Generator:
        # A pure function of (seed, run seed, step, rank): resuming at step k gives the crops of step k, and DDP
        # ranks draw different crops. Micro-batches of one accumulated step share offsets; they hold different images.
        entropy = (self.seed, run_seed(), self.trainer.global_step, self.trainer.global_rank)
        if stream:  # another augmentation's independent numbers (stream 0 keeps the crops of earlier versions)
            entropy = (*entropy, stream)
        state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
        return torch.Generator(device=device).manual_seed(int(state))

    def _randaugment(self, x: Tensor) -> Tensor:
        """RandAugment each uint8 image of ``x`` ``(B, C, H, W)`` on its own; the result has the same shape."""
        # torchvision draws the operations from torch's global CPU generator: seed it from (seed, step, rank) inside
        # fork_rng, so the draws are reproducible and resumable and the caller's random state is left untouched.
        seed = int(self._augmentation_generator(torch.device("cpu"), stream=1).initial_seed())
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            return torch.stack([self.randaugment(image) for image in x])

    def _augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Random crop of the zero-padded images and random horizontal flip, in one gather."""
        B, C, H, W = x.shape
        p = self.crop_padding
        device = x.device
        top = torch.randint(0, 2 * p + 1, (B,), generator=generator, device=device)
        left = torch.randint(0, 2 * p + 1, (B,), generator=generator, device=device)
        cols = torch.arange(W, device=device).expand(B, W)  # (B, W)
        if self.hflip:
            flip = torch.rand(B, generator=generator, device=device) < 0.5
            cols = torch.where(flip[:, None], cols.flip(1), cols)
        rows = top[:, None] + torch.arange(H, device=device)  # (B, H)
        cols = left[:, None] + cols  # (B, W)
        padded = F.pad(x, (p, p, p, p)) if p > 0 else x  # (B, C, H + 2p, W + 2p)
        batch_idx = torch.arange(B, device=device)[:, None, None, None]
        chan_idx = torch.arange(C, device=device)[None, :, None, None]
        return padded[batch_idx, chan_idx, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(data_dir={self.data_dir!r}, batch_size={self.batch_size}, "
            f"val_size={self.val_size}, seed={self.seed}, crop_padding={self.crop_padding}, hflip={self.hflip}, "
            f"randaugment_ops={self.randaugment_ops}, randaugment_magnitude={self.randaugment_magnitude})"
        )
