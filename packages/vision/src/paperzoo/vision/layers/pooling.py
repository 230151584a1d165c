"""One feature vector per image from any paperzoo vision model, for the heads of self-supervised methods."""

from __future__ import annotations

from torch import Tensor, nn


def pooled_features(network: nn.Module, images: Tensor) -> Tensor:
    """The representation ``h`` of Chen et al. 2020 (SimCLR): the network's features, globally pooled.

    The models disagree on the layout of ``forward_features``, so it is read from the shape and from
    ``network.num_features``:

    - ``(B, D)``: already a vector (LeNet-5's F6);
    - ``(B, T, D)``: tokens with the class token first (ViT), whose first token is taken, as its head does;
    - ``(B, D, H, W)`` (CNNs) or ``(B, H, W, D)`` (Swin): averaged over the spatial axes, as the ResNet head does.

    Args:
        network: a model with ``forward_features`` and ``num_features``.
        images: the batch the network takes.

    Returns:
        ``(B, network.num_features)`` features.
    """
    features = network.forward_features(images)
    width = network.num_features
    if features.dim() == 2:
        return features
    if features.dim() == 3:
        return features[:, 0]  # (B, D), the class token
    if features.dim() == 4 and features.shape[1] == width:
        return features.mean(dim=(2, 3))  # (B, D, H, W) -> (B, D)
    if features.dim() == 4 and features.shape[-1] == width:
        return features.mean(dim=(1, 2))  # (B, H, W, D) -> (B, D)
    raise ValueError(
        f"cannot pool the features of {type(network).__name__}: shape {tuple(features.shape)} has no axis of "
        f"its num_features={width}"
    )
