r"""StyleGAN2: Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving the Image Quality of
StyleGAN" (CVPR 2020, arXiv 1912.04958), configuration F.

- :class:`MappingNetwork`: 8 fully connected layers from the normalised :math:`z` to :math:`w` (learning rate
  multiplied by 0.01), with the running mean :math:`\bar w` for the truncation trick.
- :class:`SynthesisNetwork`: the skip-connection generator of Figure 7b: a learned 4x4 constant, two modulated
  3x3 convolutions per resolution (the first up-sampling), and a toRGB at every resolution whose images are
  up-sampled and summed.
- :class:`StyleGAN2Generator`: the two together, with style mixing and truncation.
- :class:`StyleGAN2Discriminator`: the residual discriminator of Figure 7c with a minibatch standard deviation
  epilogue.

Feature maps at resolution r have ``min(channel_base // r, channel_max)`` channels. The paper's config F is
``channel_base=32768, channel_max=512`` (512 channels up to 64x64, then 256, 128, 64, 32 at 1024x1024); its config E
and the StyleGAN2-ADA "paper256" setting halve the widths with ``channel_base=16384``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.layers.stylegan2 import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    NoiseMode,
    StyledConv,
    ToRGB,
    fir_kernel,
    upsample2d,
)
from paperzoo.generative.registry import register_model


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature channels at ``resolution``: ``min(channel_base // resolution, channel_max)``."""
    return min(channel_base // resolution, channel_max)


def _check_resolution(resolution: int) -> int:
    if resolution < 4 or resolution & (resolution - 1):
        raise ConfigError(f"resolution={resolution} must be a power of two, at least 4")
    return int(math.log2(resolution))


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Pixel norm of a vector (ProGAN, section 4.2): :math:`x / \sqrt{\mathrm{mean}(x^2) + \epsilon}` along dim 1."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


# --- blocks -----------------------------------------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    r"""The mapping network :math:`f: \mathcal{Z} \to \mathcal{W}` (StyleGAN, section 2): :math:`z` normalised to
    unit second moment, then ``num_layers`` equalised fully connected layers with :math:`\sqrt{2}\,\mathrm{LReLU}` and
    learning-rate multiplier 0.01. A class-conditional network (StyleGAN2-ADA's) embeds the one-hot label,
    normalises the embedding too and concatenates it to :math:`z`.

    During training the generator's module calls it with ``update_w_avg=True``, which moves the buffer ``w_avg``
    (:math:`\bar w`) towards the batch mean of :math:`w`: :math:`\bar w \leftarrow \beta \bar w + (1 - \beta)
    \,\mathrm{mean}(w)`. The truncation trick (StyleGAN, section 3; StyleGAN2, Appendix) samples
    :math:`w' = \bar w + \psi (w - \bar w)`, trading variety for typicality as :math:`\psi` goes from 1 to 0.

    Args:
        z_dim: dimensionality of :math:`z`.
        w_dim: dimensionality of :math:`w`.
        num_ws: how many copies of :math:`w` the synthesis network takes (one per modulated layer).
        num_layers: fully connected layers (8 in the paper).
        num_classes: classes of a conditional generator; 0 for unconditional.
        lr_multiplier: the layers' learning-rate multiplier (0.01 in the paper).
        w_avg_beta: decay :math:`\beta` of the running mean of :math:`w` (0.995 in the official code).

    Shapes:
        - **z:** :math:`(B, z_{dim})`; **labels:** :math:`(B,)`; **output:** :math:`(B, \text{num\_ws}, w_{dim})`.
    """

    def __init__(
        self,
        z_dim: int = 512,
        w_dim: int = 512,
        num_ws: int = 14,
        num_layers: int = 8,
        num_classes: int = 0,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        if num_layers < 1 or num_ws < 1 or not 0 <= w_avg_beta <= 1:
            raise ConfigError(
                f"num_layers={num_layers}, num_ws={num_ws} must be >= 1, w_avg_beta={w_avg_beta} in [0, 1]"
            )
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_classes = num_classes
        self.w_avg_beta = w_avg_beta
        self.embed = EqualizedLinear(num_classes, w_dim) if num_classes > 0 else None
        features = [z_dim + (w_dim if num_classes > 0 else 0)] + [w_dim] * num_layers
        self.layers = nn.Sequential(
            *(
                EqualizedLinear(features[i], features[i + 1], lr_multiplier=lr_multiplier, activation="lrelu")
                for i in range(num_layers)
            )
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: Tensor,
        labels: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Tensor:
        """:math:`w` for each sample, repeated ``num_ws`` times, truncated towards ``w_avg`` by ``truncation_psi``
        in the first ``truncation_cutoff`` layers (all when None)."""
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            if labels is None:
                raise ConfigError("a class-conditional mapping network needs labels")
            y = normalize_2nd_moment(self.embed(F.one_hot(labels, self.num_classes).to(z.dtype)))
            x = torch.cat([x, y], dim=1)  # (B, z_dim + w_dim)
        w = self.layers(x)  # (B, w_dim)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)  # (B, num_ws, w_dim)
        if truncation_psi != 1.0:
            ws = self.truncate(ws, truncation_psi, truncation_cutoff)
        return ws

    def truncate(self, ws: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
        r""":math:`\bar w + \psi (w - \bar w)` in the layers before ``cutoff`` (all when None)."""
        truncated = self.w_avg + psi * (ws - self.w_avg)
        if cutoff is None:
            return truncated
        return torch.cat([truncated[:, :cutoff], ws[:, cutoff:]], dim=1)


class SynthesisBlock(nn.Module):
    r"""One resolution of the skip generator (Figure 7b): the learned constant (at 4x4) or an up-sampling modulated
    convolution, a second modulated convolution, and a toRGB whose image is added to the up-sampled image of the
    previous resolution (:func:`~paperzoo.generative.layers.stylegan2.upsample2d`, the [1, 3, 3, 1] filter).

    Args:
        in_channels: channels of the previous resolution; 0 for the first block, which starts from the constant.
        out_channels: channels at this resolution.
        w_dim: dimensionality of :math:`w`.
        resolution: this block's resolution.
        img_channels: image channels.
        fused_modconv: see :class:`~paperzoo.generative.layers.stylegan2.ModulatedConv2d`.

    Shapes:
        - **x:** :math:`(B, C_{in}, R/2, R/2)` (ignored by the first block); **img:** :math:`(B, C_{img}, R/2, R/2)`
          or None; **ws:** :math:`(B, \text{num\_ws}, w_{dim})`.
        - **output:** features :math:`(B, C_{out}, R, R)` and image :math:`(B, C_{img}, R, R)`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        fused_modconv: bool | None = None,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.empty(out_channels, resolution, resolution))
            self.conv0 = None
        else:
            self.const = None
            self.conv0 = StyledConv(in_channels, out_channels, w_dim, resolution, up=2, fused=fused_modconv)
        self.conv1 = StyledConv(out_channels, out_channels, w_dim, resolution, fused=fused_modconv)
        self.to_rgb = ToRGB(out_channels, img_channels, w_dim, fused=fused_modconv)
        self.register_buffer("fir", fir_kernel(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.const is not None:
            nn.init.normal_(self.const)

    def forward(
        self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: NoiseMode = "random"
    ) -> tuple[Tensor, Tensor]:
        if self.conv0 is None:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)  # (B, C, 4, 4)
        else:
            x = self.conv0(x, ws[:, self.conv0.w_index], noise_mode)
        x = self.conv1(x, ws[:, self.conv1.w_index], noise_mode)
        rgb = self.to_rgb(x, ws[:, self.to_rgb.w_index])
        img = rgb if img is None else upsample2d(img, self.fir) + rgb
        return x, img


class DiscriminatorBlock(nn.Module):
    r"""The residual discriminator block (Figure 7c): two 3x3 convolutions, the second down-sampling, plus a
    down-sampling linear 1x1 skip without bias, summed and scaled by :math:`1/\sqrt{2}` to keep the variance.

    Args:
        in_channels: channels at this resolution.
        out_channels: channels at half the resolution.

    Shapes:
        - **x:** :math:`(B, C_{in}, R, R)`; **output:** :math:`(B, C_{out}, R/2, R/2)`.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor) -> Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)


# --- models -----------------------------------------------------------------------------------------------------------


class SynthesisNetwork(nn.Module):
    r"""The synthesis network :math:`g: \mathcal{W}^{\text{num\_ws}} \to` images, skip architecture (Figure 7b), from
    4x4 to ``resolution``; images come out roughly in [-1, 1] (no final non-linearity, as in the paper).

    Each modulated layer reads one row of the ``(B, num_ws, w_dim)`` stack, in order (its ``w_index``); a toRGB
    shares its row with the next resolution's first convolution, as in the official code, so there are
    ``2 * log2(resolution) - 2`` rows (18 at 1024x1024, 14 at 256x256).

    Args:
        resolution: output resolution, a power of two.
        img_channels: image channels.
        w_dim: dimensionality of :math:`w`.
        channel_base: channels are ``min(channel_base // r, channel_max)`` at resolution r.
        channel_max: see ``channel_base``.
        fused_modconv: see :class:`~paperzoo.generative.layers.stylegan2.ModulatedConv2d`.

    Shapes:
        - **ws:** :math:`(B, \text{num\_ws}, w_{dim})`; **output:** :math:`(B, C_{img}, R, R)`.
    """

    def __init__(
        self,
        resolution: int = 256,
        img_channels: int = 3,
        w_dim: int = 512,
        channel_base: int = 32768,
        channel_max: int = 512,
        fused_modconv: bool | None = None,
    ) -> None:
        super().__init__()
        log2 = _check_resolution(resolution)
        self.resolution = resolution
        self.img_channels = img_channels
        self.w_dim = w_dim
        resolutions = [2**i for i in range(2, log2 + 1)]
        channels = [channels_at(r, channel_base, channel_max) for r in resolutions]
        if min(channels) < 1:
            raise ConfigError(f"channel_base={channel_base} leaves no channels at {resolution}x{resolution}")
        self.blocks = nn.ModuleList(
            SynthesisBlock(channels[i - 1] if i else 0, channels[i], w_dim, r, img_channels, fused_modconv)
            for i, r in enumerate(resolutions)
        )
        index = 0
        for block in self.blocks:
            for conv in (block.conv0, block.conv1):
                if conv is not None:
                    conv.w_index = index
                    index += 1
            block.to_rgb.w_index = index
        self.num_ws = index + 1

    def forward(self, ws: Tensor, noise_mode: NoiseMode = "random") -> Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        x = img = None
        for block in self.blocks:
            x, img = block(x, img, ws, noise_mode)
        return img


class StyleGAN2Generator(nn.Module):
    r"""The StyleGAN2 generator (config F): :class:`MappingNetwork` then :class:`SynthesisNetwork`.

    Style mixing regularisation (StyleGAN, section 3.1; probability 0.9 in StyleGAN2's training) is
    :meth:`mix_styles`: the layers from a crossover index on read a second latent's :math:`w`, so that adjacent
    styles cannot rely on being correlated. The training module draws the crossover; :meth:`forward` is plain
    sampling with optional truncation.

    Args:
        resolution: output resolution, a power of two.
        img_channels: image channels.
        z_dim: dimensionality of :math:`z` (512).
        w_dim: dimensionality of :math:`w` (512).
        mapping_layers: depth of the mapping network (8).
        mapping_lr_multiplier: its learning-rate multiplier (0.01).
        channel_base: see :class:`SynthesisNetwork` (32768 in config F).
        channel_max: see :class:`SynthesisNetwork` (512).
        num_classes: classes of a conditional generator; 0 for unconditional.
        w_avg_beta: decay of the running mean of :math:`w` used by truncation.
        fused_modconv: see :class:`~paperzoo.generative.layers.stylegan2.ModulatedConv2d`.

    Shapes:
        - **z:** :math:`(B, z_{dim})`; **labels:** :math:`(B,)` or None; **output:** :math:`(B, C_{img}, R, R)`.
    """

    def __init__(
        self,
        resolution: int = 256,
        img_channels: int = 3,
        z_dim: int = 512,
        w_dim: int = 512,
        mapping_layers: int = 8,
        mapping_lr_multiplier: float = 0.01,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_classes: int = 0,
        w_avg_beta: float = 0.995,
        fused_modconv: bool | None = None,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.img_channels = img_channels
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.num_classes = num_classes
        self.synthesis = SynthesisNetwork(resolution, img_channels, w_dim, channel_base, channel_max, fused_modconv)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim, w_dim, self.num_ws, mapping_layers, num_classes, mapping_lr_multiplier, w_avg_beta
        )

    def forward(
        self,
        z: Tensor,
        labels: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: NoiseMode = "random",
    ) -> Tensor:
        ws = self.mapping(z, labels, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)

    @staticmethod
    def mix_styles(ws: Tensor, ws_mix: Tensor, crossover: int) -> Tensor:
        """``ws`` in the layers before ``crossover`` and ``ws_mix`` from it on; both ``(B, num_ws, w_dim)``."""
        return torch.cat([ws[:, :crossover], ws_mix[:, crossover:]], dim=1)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        device = self.synthesis.blocks[0].const.device
        z = torch.randn(batch_size, self.z_dim, device=device)
        if self.num_classes > 0:
            return z, torch.randint(0, self.num_classes, (batch_size,), device=device)
        return (z,)


class StyleGAN2Discriminator(nn.Module):
    r"""The residual StyleGAN2 discriminator (Figure 7c): fromRGB (1x1) at the full resolution, one
    :class:`DiscriminatorBlock` per resolution down to 4x4, then the epilogue: minibatch standard deviation, a 3x3
    convolution, a fully connected layer and the output layer. A class-conditional discriminator projects the output
    features onto an embedding of the label (Miyato & Koyama 2018, as StyleGAN2-ADA does), scaled by
    :math:`1/\sqrt{C}`.

    Args:
        resolution: input resolution, a power of two.
        img_channels: image channels.
        channel_base: channels are ``min(channel_base // r, channel_max)`` at resolution r (32768 in config F).
        channel_max: see ``channel_base`` (512).
        num_classes: classes of a conditional discriminator; 0 for unconditional.
        mbstd_group_size: group size of the minibatch standard deviation (4).
        mbstd_num_channels: its feature maps (1).

    Shapes:
        - **images:** :math:`(B, C_{img}, R, R)`; **labels:** :math:`(B,)` or None; **output:** logits :math:`(B,)`.
    """

    def __init__(
        self,
        resolution: int = 256,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_classes: int = 0,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
    ) -> None:
        super().__init__()
        log2 = _check_resolution(resolution)
        self.resolution = resolution
        self.img_channels = img_channels
        self.num_classes = num_classes
        resolutions = [2**i for i in range(log2, 1, -1)]  # R, R/2, ..., 4
        channels = {r: channels_at(r, channel_base, channel_max) for r in resolutions}
        if min(channels.values()) < 1:
            raise ConfigError(f"channel_base={channel_base} leaves no channels at {resolution}x{resolution}")
        self.from_rgb = EqualizedConv2d(img_channels, channels[resolution], 1, activation="lrelu")
        self.blocks = nn.Sequential(*(DiscriminatorBlock(channels[r], channels[r // 2]) for r in resolutions[:-1]))
        c4 = channels[4]
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_channels)
        self.conv = EqualizedConv2d(c4 + mbstd_num_channels, c4, 3, activation="lrelu")
        self.fc = EqualizedLinear(c4 * 4 * 4, c4, activation="lrelu")
        self.out = EqualizedLinear(c4, c4 if num_classes > 0 else 1)
        self.embed = EqualizedLinear(num_classes, c4) if num_classes > 0 else None

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.blocks(self.from_rgb(images))  # (B, C4, 4, 4)
        x = self.conv(self.mbstd(x))
        x = self.out(self.fc(x.flatten(1)))  # (B, 1) or (B, C4)
        if self.embed is None:
            return x.squeeze(1)
        if labels is None:
            raise ConfigError("a class-conditional discriminator needs labels")
        cmap = self.embed(F.one_hot(labels, self.num_classes).to(x.dtype))  # (B, C4)
        return (x * cmap).sum(dim=1) / math.sqrt(cmap.shape[1])

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        device = self.from_rgb.weight.device
        images = torch.randn(batch_size, self.img_channels, self.resolution, self.resolution, device=device)
        if self.num_classes > 0:
            return images, torch.randint(0, self.num_classes, (batch_size,), device=device)
        return (images,)


# --- builders ---------------------------------------------------------------------------------------------------------


@register_model
def stylegan2_generator(**kwargs) -> StyleGAN2Generator:
    """The StyleGAN2 config-F generator (256x256 by default; keywords as :class:`StyleGAN2Generator`)."""
    return StyleGAN2Generator(**kwargs)


@register_model
def stylegan2_discriminator(**kwargs) -> StyleGAN2Discriminator:
    """The StyleGAN2 config-F residual discriminator (256x256 by default; keywords as
    :class:`StyleGAN2Discriminator`)."""
    return StyleGAN2Discriminator(**kwargs)


SMALL_KWARGS: dict[str, dict] = {
    "stylegan2_generator": dict(resolution=8, z_dim=16, w_dim=16, mapping_layers=2, channel_base=64, channel_max=16),
    "stylegan2_discriminator": dict(resolution=8, channel_base=64, channel_max=16),
}
