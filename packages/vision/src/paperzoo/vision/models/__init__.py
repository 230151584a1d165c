"""Vision architectures as plain ``nn.Module``s; importing this package registers every model.

Every model exposes ``num_classes``, ``in_chans``, ``forward_features`` (what the classifier reads) and
``min_input_size``, the smallest square input side it takes; the registry-generated tests run each model at that size.
"""

from paperzoo.vision.models.alexnet import AlexNet
from paperzoo.vision.models.densenet import DenseBlock, DenseLayer, DenseNet
from paperzoo.vision.models.googlenet import GoogLeNet, GoogLeNetOutputs, Inception, InceptionAux, googlenet_loss
from paperzoo.vision.models.lenet import LeNet5, Subsampling, TableConv2d
from paperzoo.vision.models.resnet import BasicBlock, Bottleneck, CifarResNet, ResNet, ZeroPadShortcut
from paperzoo.vision.models.swin import PatchMerging, SwinBlock, SwinTransformer, WindowAttention
from paperzoo.vision.models.vgg import VGG
from paperzoo.vision.models.vit import VisionTransformer, resize_pos_embed
from paperzoo.vision.models.vit_hybrid import ResNetGNWS

__all__ = [
    "VGG",
    "AlexNet",
    "BasicBlock",
    "Bottleneck",
    "CifarResNet",
    "DenseBlock",
    "DenseLayer",
    "DenseNet",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "Inception",
    "InceptionAux",
    "LeNet5",
    "PatchMerging",
    "ResNet",
    "ResNetGNWS",
    "Subsampling",
    "SwinBlock",
    "SwinTransformer",
    "TableConv2d",
    "VisionTransformer",
    "WindowAttention",
    "ZeroPadShortcut",
    "googlenet_loss",
    "resize_pos_embed",
]
