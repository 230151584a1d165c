"""The weighted k-nearest-neighbour classifier that reads how good a learned representation is without training."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.vision.layers.pooling import pooled_features


@torch.no_grad()
def knn_predict(
    queries: Tensor,
    bank: Tensor,
    bank_labels: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float | None = 0.1,
    chunk_size: int = 256,
) -> Tensor:
    r"""Class scores of a weighted k-NN vote over a labelled memory bank, as in Wu et al. 2018, "Unsupervised
    Feature Learning via Non-Parametric Instance Discrimination", the evaluation that self-supervised methods
    monitor training with.

    Queries and bank are compared by cosine similarity :math:`s_i`; each of the ``k`` most similar bank entries
    votes for its label with weight :math:`\exp(s_i / \tau)` (Wu et al. use their training temperature, 0.07;
    the default here is 0.1), or with weight 1 (a plain majority vote) when ``temperature`` is None. Ties go to
    the lower class index.

    Args:
        queries: the features to classify.
        bank: the labelled features.
        bank_labels: their labels, in ``0 .. num_classes - 1``.
        num_classes: the number of classes.
        k: the number of neighbours (200 in Wu et al.); capped at the bank's size.
        temperature: :math:`\tau` of the vote weights; None for a plain majority vote.
        chunk_size: queries compared at once, which bounds the memory at ``chunk_size x len(bank)`` similarities.

    Returns:
        ``(Q, num_classes)`` summed vote weights; their argmax is the prediction.

    Shapes:
        - queries: :math:`(Q, D)`
        - bank: :math:`(M, D)`
        - bank_labels: :math:`(M,)`
        - output: :math:`(Q, C)`
    """
    if len(bank) == 0:
        raise ValueError("the k-NN memory bank is empty")
    k = min(k, len(bank))
    bank = F.normalize(bank.float(), dim=1)
    scores = []
    for chunk in F.normalize(queries.float(), dim=1).split(chunk_size):
        similarity = chunk @ bank.T  # (q, M)
        top_sim, top_idx = similarity.topk(k, dim=1)  # (q, k)
        weights = torch.ones_like(top_sim) if temperature is None else (top_sim / temperature).exp()
        votes = torch.zeros(len(chunk), num_classes, device=chunk.device)  # (q, C)
        scores.append(votes.scatter_add_(1, bank_labels[top_idx], weights))
    return torch.cat(scores)  # (Q, C)


def knn_accuracy(
    queries: Tensor,
    labels: Tensor,
    bank: Tensor,
    bank_labels: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float | None = 0.1,
) -> float:
    """The fraction of ``queries`` whose weighted k-NN vote (:func:`knn_predict`) is their label."""
    predictions = knn_predict(queries, bank, bank_labels, num_classes, k, temperature).argmax(dim=1)
    return (predictions == labels.to(predictions.device)).float().mean().item()


@torch.no_grad()
def feature_bank(
    network: nn.Module,
    batches: Iterable,
    device: torch.device,
    transform: Callable | None = None,
    max_samples: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The pooled features (:func:`~paperzoo.vision.layers.pooling.pooled_features`) and labels of a dataset.

    The network is used in whatever mode it is in (the callers evaluate in eval mode).

    Args:
        network: the encoder.
        batches: ``(images, labels)`` batches, e.g. a DataLoader.
        device: where to run the network.
        transform: applied to each ``(images, labels)`` batch after it is moved to ``device`` (the DataModule's
            ``on_after_batch_transfer``, which turns uint8 images into normalised floats); None for none.
        max_samples: stop after this many samples; None for all.

    Returns:
        ``(features, labels)``, shapes ``(M, D)`` and ``(M,)``.
    """
    features, labels, seen = [], [], 0
    for images, targets in batches:
        images, targets = images.to(device), targets.to(device)
        if transform is not None:
            images, targets = transform((images, targets))
        features.append(pooled_features(network, images))
        labels.append(targets)
        seen += len(targets)
        if max_samples is not None and seen >= max_samples:
            break
    if not features:
        raise ValueError("the k-NN memory bank is empty: the training loader gave no batches")
    return torch.cat(features)[:max_samples], torch.cat(labels)[:max_samples]
