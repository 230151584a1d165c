"""Sample-quality metrics with a choice of feature network: FID, KID and the Inception Score from torchmetrics.

The standard metrics read an ImageNet Inception-v3 (torch-fidelity's port of the TensorFlow graph). Its weights are
downloaded on first use, which the project's machines cannot do, so every metric here takes its feature network by
name:

- ``"inception"``: the standard FID/KID/IS (needs ``pip install torch-fidelity`` and its weights on disk). Only these
  numbers may be compared with papers.
- ``"fashionmnist"``: the offline metrics, through :class:`~paperzoo.generative.models.features.FeatureClassifier`
  trained on Fashion-MNIST (weights shipped in the package). Every number is labelled with the feature network's
  name (``fid_fashionmnist_features``), and is only comparable with other numbers of the same label.
- a path: a state dict or Lightning checkpoint of a :class:`FeatureClassifier` trained by
  ``paperzoo run fid-features-fashionmnist`` (or on another dataset).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from paperzoo.core.errors import CheckpointError, ConfigError
from paperzoo.generative.models.features import FeatureClassifier

SHIPPED_FEATURES = {"fashionmnist": "fashionmnist_features.pt"}
"""Feature networks shipped in ``paperzoo/generative/assets/``, by name."""


def load_feature_classifier(source: str | Path = "fashionmnist") -> FeatureClassifier:
    """A trained :class:`FeatureClassifier` in eval mode, from a shipped name or a file.

    Args:
        source: ``"fashionmnist"`` (shipped), or the path of a state dict (``torch.save(net.state_dict())``) or of a
            Lightning checkpoint of :class:`~paperzoo.generative.modules.classifier.FeatureClassifierModule`.

    Raises:
        CheckpointError: the file is missing, unreadable or holds no FeatureClassifier weights.
    """
    if str(source) in SHIPPED_FEATURES:
        path = Path(__file__).parent / "assets" / SHIPPED_FEATURES[str(source)]
    else:
        path = Path(source)
    if not path.is_file():
        known = ", ".join(SHIPPED_FEATURES)
        raise CheckpointError(f"feature network {source!r} is neither a shipped one ({known}) nor an existing file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a corrupt file
        raise CheckpointError(f"{path} is not a readable torch file ({error}); re-create it") from error
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds no state dict of a FeatureClassifier")
    state = {k.removeprefix("network."): v for k, v in state.items() if not k.startswith(("accuracy.", "metrics."))}
    widths = blob.get("widths") if isinstance(blob, dict) else None
    if widths is None:
        widths = tuple(int(state[f"stages.{i}.0.weight"].shape[0]) for i in range(4) if f"stages.{i}.0.weight" in state)
    if len(widths) != 4 or "head.weight" not in state:
        raise CheckpointError(f"{path} holds no FeatureClassifier weights (stages.0-3 and head)")
    network = FeatureClassifier(num_classes=int(state["head.weight"].shape[0]), widths=tuple(widths))
    try:
        network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit a FeatureClassifier: {error}") from error
    return network.eval()


def export_feature_classifier(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the weights of a trained classifier's checkpoint as a small float16 state dict (how the shipped
    ``fashionmnist_features.pt`` was made)."""
    network = load_feature_classifier(checkpoint)
    state = {k: v.half() if v.is_floating_point() else v for k, v in network.state_dict().items()}
    out = Path(out)
    torch.save({"state_dict": state, "widths": [s[0].out_channels for s in network.stages]}, out)
    return out


def check_inception_available() -> None:
    """Raise :class:`ConfigError` unless the standard Inception metrics can run (torch-fidelity is installed)."""
    try:
        import torch_fidelity  # noqa: F401
    except ImportError as error:
        raise ConfigError(
            "the standard Inception FID needs torch-fidelity and its weights (pip install torch-fidelity, online "
            "once); offline, use features: fashionmnist"
        ) from error


class _Given(nn.Module):
    """Hands torchmetrics vectors that are already computed (our network's features or logits), so the network runs
    once per image for all three metrics instead of once per metric."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x.double()


@dataclass
class SampleMetrics:
    """FID, KID and IS of one comparison, with the name of the feature network they were computed with."""

    features: str
    fid: float
    kid_mean: float
    kid_std: float
    inception_score: float
    inception_score_std: float
    num_real: int
    num_fake: int

    @property
    def suffix(self) -> str:
        """The label every logged key carries: ``""`` for Inception, ``"_<name>_features"`` otherwise."""
        return "" if self.features == "inception" else f"_{Path(self.features).stem}_features"

    def as_log(self, stage: str) -> dict[str, float]:
        s = self.suffix
        return {
            f"{stage}/fid{s}": self.fid,
            f"{stage}/kid{s}": self.kid_mean,
            f"{stage}/kid_std{s}": self.kid_std,
            f"{stage}/is{s}": self.inception_score,
        }


class SampleQuality(nn.Module):
    """Accumulates real and generated images and reports FID, KID and IS through one feature network.

    Args:
        features: ``"fashionmnist"``, ``"inception"`` or a path; see the module docstring.
        kid_subset_size: KID's subset size (1,000 in Binkowski et al.), capped at the number of images.
        kid_subsets: KID's number of subsets.
        is_splits: the Inception Score's number of splits (10 in Salimans et al.).

    Images are ``(B, C, H, W)`` in ``[-1, 1]``.
    """

    def __init__(
        self, features: str = "fashionmnist", kid_subset_size: int = 1000, kid_subsets: int = 100, is_splits: int = 10
    ) -> None:
        super().__init__()
        self.features = features
        self.kid_subset_size, self.kid_subsets, self.is_splits = kid_subset_size, kid_subsets, is_splits
        self.real: list[Tensor] = []
        self.fake: list[Tensor] = []
        if features == "inception":
            check_inception_available()
            self.network = None
        else:
            self.network = load_feature_classifier(features)

    def update(self, images: Tensor, real: bool) -> None:
        (self.real if real else self.fake).append(images.detach().float().clamp(-1, 1).cpu())

    def reset(self) -> None:
        self.real, self.fake = [], []

    @torch.no_grad()
    def _encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The feature network's ``(features, logits)`` of ``images``, on the CPU in float64."""
        device = next(self.network.parameters()).device
        features, logits = [], []
        for chunk in images.split(500):
            f = self.network.features(chunk.to(device))
            features.append(f.double().cpu())
            logits.append(self.network.head(f).double().cpu())
        return torch.cat(features), torch.cat(logits)

    @torch.no_grad()
    def compute(self) -> SampleMetrics:
        # The modules, not torchmetrics.image, which exports these only where torch-fidelity is installed.
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.inception import InceptionScore
        from torchmetrics.image.kid import KernelInceptionDistance

        if not self.real or not self.fake:
            raise RuntimeError("SampleQuality needs real and generated images before compute()")
        real, fake = torch.cat(self.real), torch.cat(self.fake)
        subset = min(self.kid_subset_size, len(real), len(fake))
        with warnings.catch_warnings():  # KID and IS keep every feature vector: fine at these sizes
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            if self.network is None:  # the standard metrics take uint8 RGB
                fid, score = FrechetInceptionDistance(), InceptionScore()
                kid = KernelInceptionDistance(subset_size=subset)
                real, fake = _to_rgb8(real), _to_rgb8(fake)
            else:  # features and logits computed once, in chunks, on the network's device
                fid = FrechetInceptionDistance(feature=_Given(self.network.num_features))
                kid = KernelInceptionDistance(
                    feature=_Given(self.network.num_features), subset_size=subset, subsets=self.kid_subsets
                )
                score = InceptionScore(feature=_Given(self.network.num_classes), splits=self.is_splits)
                (real, _), (fake, fake_logits) = self._encode(real), self._encode(fake)
            for chunk in real.split(500):
                fid.update(chunk, real=True)
                kid.update(chunk, real=True)
            for chunk in fake.split(500):
                fid.update(chunk, real=False)
                kid.update(chunk, real=False)
            for chunk in (fake if self.network is None else fake_logits).split(500):
                score.update(chunk)
        kid_mean, kid_std = kid.compute()
        is_mean, is_std = score.compute()
        return SampleMetrics(
            features=self.features,
            fid=float(fid.compute()),
            kid_mean=float(kid_mean),
            kid_std=float(kid_std),
            inception_score=float(is_mean),
            inception_score_std=float(is_std),
            num_real=len(real),
            num_fake=len(fake),
        )


def _to_rgb8(images: Tensor) -> Tensor:
    return ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1)
