r"""Autoencoders: an MLP autoencoder (under- or over-complete, optionally with tied weights) and a small conv one.

- Ng, "Sparse autoencoder" (CS294A lecture notes, 2011): a one-layer over-complete autoencoder with sigmoid code
  units, trained with a KL sparsity penalty on their mean activations (the penalty is in
  :mod:`paperzoo.generative.losses`, applied by :class:`~paperzoo.generative.modules.autoencoder.AutoencoderModule`).
- Vincent, Larochelle, Bengio & Manzagol 2008, "Extracting and Composing Robust Features with Denoising
  Autoencoders" (ICML 2008): :math:`y = s(W\tilde x + b)`, :math:`z = s(W' y + b')` with tied weights
  :math:`W' = W^\top`, trained to reconstruct the clean :math:`x` from a corrupted :math:`\tilde x` (the corruption is
  the module's).

Every network here reads images in ``[-1, 1]`` and returns reconstruction *logits*: ``sigmoid(logits)`` is the
reconstruction in ``[0, 1]``, which the module compares with the input mapped to ``[0, 1]`` by cross-entropy or
squared error. The conv blocks are shared with :mod:`paperzoo.generative.models.vae`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.registry import register_model

_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}


def make_activation(name: str) -> nn.Module:
    """An activation module by name: ``"relu"``, ``"sigmoid"``, ``"tanh"`` or ``"identity"``."""
    if name not in _ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; choose one of {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def _check_conv_size(image_size: int, channels: Sequence[int]) -> int:
    """The side of the feature maps after ``len(channels)`` stride-2 convolutions."""
    if not channels:
        raise ConfigError("the conv encoder needs at least one stage in `channels`")
    factor = 2 ** len(channels)
    if image_size % factor:
        raise ConfigError(
            f"image_size={image_size} must be divisible by 2**len(channels)={factor}; "
            f"use fewer stages or another resolution"
        )
    return image_size // factor


class ConvEncoder(nn.Module):
    """Stride-2 4x4 convolutions (each halving the side), then a linear map of the flattened maps.

    Args:
        in_channels: input channels.
        image_size: input side; divisible by ``2 ** len(channels)``.
        channels: output channels of each convolution.
        out_features: size of the output vector.
        activation: after each convolution.

    Shapes:
        - **input:** ``(B, in_channels, image_size, image_size)``.
        - **output:** ``(B, out_features)``.
    """

    def __init__(
        self, in_channels: int, image_size: int, channels: Sequence[int], out_features: int, activation: str = "relu"
    ) -> None:
        super().__init__()
        side = _check_conv_size(image_size, channels)
        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [nn.Conv2d(previous, width, kernel_size=4, stride=2, padding=1), make_activation(activation)]
            previous = width
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(previous * side * side, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.convs(x).flatten(1))  # (B, C*s*s) -> (B, out_features)


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: a linear map to small feature maps, then stride-2 transposed convolutions.

    Args:
        in_features: size of the input vector.
        out_channels: output channels.
        image_size: output side; divisible by ``2 ** len(channels)``.
        channels: the encoder's ``channels``; the decoder runs them in reverse.
        activation: after the linear map and every transposed convolution but the last.

    Shapes:
        - **input:** ``(B, in_features)``.
        - **output:** ``(B, out_channels, image_size, image_size)``, unbounded.
    """

    def __init__(
        self, in_features: int, out_channels: int, image_size: int, channels: Sequence[int], activation: str = "relu"
    ) -> None:
        super().__init__()
        self.side = _check_conv_size(image_size, channels)
        widths = list(reversed(channels))
        self.first_width = widths[0]
        self.fc = nn.Sequential(nn.Linear(in_features, widths[0] * self.side * self.side), make_activation(activation))
        layers: list[nn.Module] = []
        for i, (width, next_width) in enumerate(zip(widths, [*widths[1:], out_channels], strict=True)):
            layers.append(nn.ConvTranspose2d(width, next_width, kernel_size=4, stride=2, padding=1))
            if i < len(widths) - 1:  # the last one gives the unbounded output
                layers.append(make_activation(activation))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(-1, self.first_width, self.side, self.side)  # (B, C, s, s)
        return self.deconvs(h)  # (B, out_channels, H, W)


class MLPAutoencoder(nn.Module):
    r"""A fully connected autoencoder on flattened images (Ng's sparse autoencoder; Vincent et al. 2008's denoising
    autoencoder with ``tied_weights``).

    The encoder is ``Linear -> activation`` for each of ``hidden_dims``, then ``Linear -> code_activation`` to the
    code; the decoder mirrors it and ends with a linear layer giving reconstruction logits. With ``tied_weights``
    every decoder layer uses the transpose of its encoder layer's weight (:math:`W' = W^\top`) and only has its own
    bias. ``code_dim`` larger than ``in_channels * image_size**2`` makes it over-complete, where a sparsity penalty or
    a corrupted input keeps it from learning the identity.

    Args:
        in_channels: image channels.
        image_size: image side.
        hidden_dims: widths of the hidden layers between the input and the code (empty for a one-layer autoencoder).
        code_dim: width of the code.
        activation: of the hidden layers, in the encoder and the decoder.
        code_activation: of the code: ``"sigmoid"`` for the KL sparsity penalty (activations in (0, 1)),
            ``"relu"`` or ``"identity"`` otherwise.
        tied_weights: decoder weights are the transposed encoder weights.

    Shapes:
        - **input:** ``(B, C, H, W)`` in ``[-1, 1]``.
        - **output:** ``(logits, code)``: ``(B, C, H, W)`` reconstruction logits and the ``(B, code_dim)`` code.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        hidden_dims: Sequence[int] = (),
        code_dim: int = 1000,
        activation: str = "sigmoid",
        code_activation: str = "sigmoid",
        tied_weights: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.image_size = image_size
        self.code_dim = code_dim
        self.tied_weights = tied_weights
        widths = [in_channels * image_size * image_size, *hidden_dims, code_dim]
        self.encoder_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        decoder_widths = list(reversed(widths))
        if tied_weights:
            self.decoder_biases = nn.ParameterList(nn.Parameter(torch.empty(width)) for width in decoder_widths[1:])
            self.decoder_layers = None
        else:
            self.decoder_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(decoder_widths))
            self.decoder_biases = None
        self.activation = make_activation(activation)
        self.code_activation = make_activation(code_activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.encoder_layers:
            layer.reset_parameters()
        if self.decoder_layers is not None:
            for layer in self.decoder_layers:
                layer.reset_parameters()
        else:
            for bias in self.decoder_biases:
                nn.init.zeros_(bias)

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> codes ``(B, code_dim)``."""
        h = x.flatten(1)  # (B, C*H*W)
        last = len(self.encoder_layers) - 1
        for i, layer in enumerate(self.encoder_layers):
            h = layer(h)
            h = self.code_activation(h) if i == last else self.activation(h)
        return h

    def decode(self, code: Tensor) -> Tensor:
        """Codes ``(B, code_dim)`` -> reconstruction logits ``(B, C, H, W)``."""
        h = code
        num_layers = len(self.encoder_layers)
        for i in range(num_layers):
            if self.decoder_layers is not None:
                h = self.decoder_layers[i](h)
            else:
                weight = self.encoder_layers[num_layers - 1 - i].weight  # (out, in): the decoder maps out -> in
                h = F.linear(h, weight.t(), self.decoder_biases[i])
            if i < num_layers - 1:
                h = self.activation(h)
        return h.view(-1, self.in_channels, self.image_size, self.image_size)  # (B, C, H, W)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        code = self.encode(x)
        return self.decode(code), code

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        device = self.encoder_layers[0].weight.device
        return (torch.rand(batch_size, self.in_channels, self.image_size, self.image_size, device=device) * 2 - 1,)


class ConvAutoencoder(nn.Module):
    """A small convolutional autoencoder: :class:`ConvEncoder` to a code vector, :class:`ConvDecoder` back.

    Args:
        in_channels: image channels.
        image_size: image side, divisible by ``2 ** len(channels)``.
        channels: widths of the stride-2 convolutions of the encoder (mirrored in the decoder).
        code_dim: width of the code.
        activation: after each (transposed) convolution.
        code_activation: of the code (``"sigmoid"`` for the KL sparsity penalty).

    Shapes:
        - **input:** ``(B, C, H, W)`` in ``[-1, 1]``.
        - **output:** ``(logits, code)``: ``(B, C, H, W)`` reconstruction logits and the ``(B, code_dim)`` code.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        channels: Sequence[int] = (32, 64),
        code_dim: int = 64,
        activation: str = "relu",
        code_activation: str = "identity",
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.image_size = image_size
        self.code_dim = code_dim
        self.encoder = ConvEncoder(in_channels, image_size, channels, code_dim, activation)
        self.code_activation = make_activation(code_activation)
        self.decoder = ConvDecoder(code_dim, in_channels, image_size, channels, activation)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                module.reset_parameters()

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> codes ``(B, code_dim)``."""
        return self.code_activation(self.encoder(x))

    def decode(self, code: Tensor) -> Tensor:
        """Codes ``(B, code_dim)`` -> reconstruction logits ``(B, C, H, W)``."""
        return self.decoder(code)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        code = self.encode(x)
        return self.decode(code), code

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        device = self.encoder.fc.weight.device
        return (torch.rand(batch_size, self.in_channels, self.image_size, self.image_size, device=device) * 2 - 1,)


@register_model
def autoencoder_mlp(**kwargs) -> MLPAutoencoder:
    """An under-complete MLP autoencoder for 28x28 images: 784-512-32 with ReLUs, linear code, untied weights."""
    config = dict(hidden_dims=(512,), code_dim=32, activation="relu", code_activation="identity", tied_weights=False)
    return MLPAutoencoder(**{**config, **kwargs})


@register_model
def autoencoder_mlp_overcomplete(**kwargs) -> MLPAutoencoder:
    """The one-layer sigmoid autoencoder of Ng's notes and Vincent et al. 2008 (tied weights), over-complete: 784-1000.

    Train it with a sparsity penalty (Ng) or a corrupted input (Vincent et al.), which keep the over-complete code
    from copying the input.
    """
    config = dict(hidden_dims=(), code_dim=1000, activation="sigmoid", code_activation="sigmoid", tied_weights=True)
    return MLPAutoencoder(**{**config, **kwargs})


@register_model
def autoencoder_conv(**kwargs) -> ConvAutoencoder:
    """A small conv autoencoder for 28x28 images: 28 -> 14 -> 7 maps of 32 and 64 channels, a 64-d code."""
    return ConvAutoencoder(**kwargs)


SMALL_KWARGS: dict[str, dict] = {
    "autoencoder_mlp": dict(image_size=8, hidden_dims=(16,), code_dim=4),
    "autoencoder_mlp_overcomplete": dict(image_size=8, code_dim=80),
    "autoencoder_conv": dict(image_size=8, channels=(4, 8), code_dim=4),
}
