"""The feature network of the offline sample metrics: a small Fashion-MNIST classifier.

FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS
2017), KID (Binkowski et al., "Demystifying MMD GANs", ICLR 2018) and the Inception Score (Salimans et al. 2016)
compare images through the features and class probabilities of an ImageNet Inception-v3. Its weights cannot be
downloaded on the project's machines, so the offline metrics read the 128-d penultimate features and the 10 logits of
this classifier, trained on Fashion-MNIST (``paperzoo run fid-features-fashionmnist``; the weights ship with the
package). Numbers computed with it are labelled "FID (Fashion-MNIST features)" and are never comparable to the
papers' Inception FIDs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.generative.registry import register_model


def _stage(in_chans: int, out_chans: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_chans, out_chans, 3, padding=1, bias=False), nn.BatchNorm2d(out_chans), nn.ReLU())


class FeatureClassifier(nn.Module):
    """Four conv-BN-ReLU stages (32, 64, 128, 128 channels; 2x2 max pooling between them) on 32x32 grey images in
    ``[-1, 1]``, global average pooling to ``num_features`` features, and a linear classifier.

    Any other input is brought to that form first: colour images are averaged to grey and every size is resized
    bilinearly to 32x32, so the network can score samples of any model (the scores then mean little off
    Fashion-MNIST-like images).

    Args:
        num_classes: classes of the linear head.
        widths: channels of the four stages; the last is ``num_features``.

    Shapes:
        - input: ``(B, C, H, W)`` in ``[-1, 1]``, C 1 or 3
        - output: ``(B, num_classes)`` logits; :meth:`features` gives ``(B, num_features)``
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int, int] = (32, 64, 128, 128)) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = widths[-1]
        chans = (1, *widths)
        self.stages = nn.ModuleList(_stage(chans[i], chans[i + 1]) for i in range(4))
        self.head = nn.Linear(self.num_features, num_classes)

    @staticmethod
    def standardise(x: Tensor) -> Tensor:
        """Any ``(B, C, H, W)`` image batch in ``[-1, 1]`` -> ``(B, 1, 32, 32)`` float32."""
        x = x.float()
        if x.shape[1] != 1:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[-2:] != (32, 32):
            x = F.interpolate(x, size=(32, 32), mode="bilinear", antialias=min(x.shape[-2:]) > 32)
        return x

    def features(self, x: Tensor) -> Tensor:
        """The ``(B, num_features)`` penultimate features."""
        x = self.standardise(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < 3:
                x = F.max_pool2d(x, 2)  # 32 -> 16 -> 8 -> 4
        return x.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        device = self.head.weight.device
        return (torch.rand(batch_size, 1, 28, 28, device=device) * 2 - 1,)


@register_model
def feature_classifier(
    num_classes: int = 10, widths: tuple[int, int, int, int] = (32, 64, 128, 128)
) -> FeatureClassifier:
    """The Fashion-MNIST feature network of the offline FID/KID/IS."""
    return FeatureClassifier(num_classes=num_classes, widths=widths)


SMALL_KWARGS: dict[str, dict] = {"feature_classifier": {"widths": (4, 4, 8, 8)}}
