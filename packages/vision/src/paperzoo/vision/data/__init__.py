"""Image-classification DataModules that read the datasets' standard on-disk formats."""

from paperzoo.core.data import read_idx
from paperzoo.vision.data.base import ImageClassificationDataModule
from paperzoo.vision.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from paperzoo.vision.data.folder import ImageFolderDataModule, ImageListDataset
from paperzoo.vision.data.mnist import FashionMNISTDataModule, MNIST5kDataModule, MNISTDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "FashionMNISTDataModule",
    "ImageClassificationDataModule",
    "ImageFolderDataModule",
    "ImageListDataset",
    "MNIST5kDataModule",
    "MNISTDataModule",
    "read_idx",
]
