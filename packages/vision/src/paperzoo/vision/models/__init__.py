"""Vision architectures as plain ``nn.Module``s; importing this package registers every model."""

from paperzoo.vision.models.lenet import LeNet5, Subsampling, TableConv2d
from paperzoo.vision.models.resnet import BasicBlock, Bottleneck, CifarResNet, ResNet, ZeroPadShortcut

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "CifarResNet",
    "LeNet5",
    "ResNet",
    "Subsampling",
    "TableConv2d",
    "ZeroPadShortcut",
]
