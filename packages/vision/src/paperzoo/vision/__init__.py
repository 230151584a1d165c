"""paperzoo.vision: image classifiers from scratch (LeNet-5, AlexNet, VGG, GoogLeNet, ResNet, DenseNet, ViT, Swin)

>>> from paperzoo.vision import create_model, list_models
>>> model = create_model("resnet20", num_classes=10, in_chans=1)
"""

from paperzoo.vision import models
from paperzoo.vision.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    ImageClassificationDataModule,
    ImageFolderDataModule,
    MNIST5kDataModule,
    MNISTDataModule,
)
from paperzoo.vision.modules import AdversarialClassifier, FineTuneClassifier, ImageClassifier, LinearProbe, SimCLR
from paperzoo.vision.registry import create_model, list_models, register_model

__all__ = [
    "AdversarialClassifier",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "FashionMNISTDataModule",
    "FineTuneClassifier",
    "ImageClassificationDataModule",
    "ImageClassifier",
    "ImageFolderDataModule",
    "LinearProbe",
    "MNIST5kDataModule",
    "MNISTDataModule",
    "SimCLR",
    "create_model",
    "list_models",
    "models",
    "register_model",
]
