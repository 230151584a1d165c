r"""The denoising UNet of Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models" (NeurIPS 2020,
arXiv 2006.11239), appendix B.

A PixelCNN++-style UNet (Salimans et al. 2017) built from Wide-ResNet residual blocks with group normalisation, one
single-head self-attention block after every residual block at the 16x16 resolution (and one in the middle), and the
diffusion time :math:`t` given to every residual block through a Transformer sinusoidal embedding (Vaswani et al.
2017) and a two-layer MLP. For CIFAR-10 (32x32): 128 base channels, multipliers (1, 2, 2, 2), two residual blocks per
resolution, dropout 0.1, 35.7M parameters; for the 256x256 datasets: multipliers (1, 1, 2, 2, 4, 4), no dropout,
114M parameters.

Optionally class-conditional, as in classifier-free guidance (Ho & Salimans 2021, "Classifier-Free Diffusion
Guidance", arXiv 2207.12598): a learned label embedding is added to the time embedding, and one extra "null" label
(index ``num_classes``) stands for "no label", so one network gives both the conditional and the unconditional
prediction.

The same network conditions a score model on its noise level :math:`\sigma`: the time input is any real number, and
:class:`~paperzoo.generative.modules.diffusion.ScoreModule` passes an affine function of :math:`\log\sigma`.

The architecture is the one diffusers' ``UNet2DModel`` builds with ``DownBlock2D``/``AttnDownBlock2D`` blocks,
``flip_sin_to_cos=False``, ``freq_shift=1``, ``downsample_padding=0`` (TensorFlow's "SAME" padding of a strided
convolution: one row and column of zeros after the input), ``norm_eps=1e-6`` and one attention head
(``attention_head_dim=None``); ``tests/generative/test_unet.py`` loads its weights into ours and compares the outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.registry import register_model


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=padding)


def _xavier_(module: nn.Conv2d | nn.Linear, gain: float = 1.0) -> None:
    """The initialisation of Ho et al.'s code: variance scaling, fan-average, uniform (Glorot), and zero biases.

    ``gain=0`` zeroes the weight: the paper's ``init_scale=1e-10`` on the last layer of every residual and attention
    branch and on the output layer, so each block starts as the identity and the network's output as zero.
    """
    if gain == 0:
        nn.init.zeros_(module.weight)
    else:
        nn.init.xavier_uniform_(module.weight, gain=gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class SinusoidalTimeEmbedding(nn.Module):
    r"""The Transformer's sinusoidal position embedding (Vaswani et al. 2017) of a diffusion time, as Ho et al. 2020
    write it (``get_timestep_embedding`` in their code):

    .. math::
        \mathrm{emb}(t)_i = \sin(t\,\omega_i), \qquad \mathrm{emb}(t)_{d/2 + i} = \cos(t\,\omega_i), \qquad
        \omega_i = \mathrm{max\_period}^{-i / (d/2 - 1)}, \quad i = 0, \dots, d/2 - 1

    so the frequencies run from 1 to ``1 / max_period``; an odd ``dim`` gets a zero last entry. It is computed in
    float32 (float64 for a float64 ``dtype``) whatever the input's type, so integer and real times both work.

    Args:
        dim: the embedding's width :math:`d`.
        max_period: the longest period, :math:`2\pi` times ``max_period``.

    Shapes:
        - **t:** :math:`(B,)`, integer or real.
        - **output:** :math:`(B, d)`.
    """

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        if dim < 4:
            raise ConfigError(f"the time embedding needs dim >= 4, got {dim}")
        self.dim = dim
        self.max_period = max_period

    def forward(self, t: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        dtype = torch.promote_types(dtype, torch.float32)
        half = self.dim // 2
        exponent = torch.arange(half, dtype=dtype, device=t.device) * (-math.log(self.max_period) / (half - 1))
        angles = t.to(dtype)[:, None] * torch.exp(exponent)[None, :]  # (B, d/2)
        embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (B, 2 * (d/2))
        return F.pad(embedding, (0, self.dim % 2))  # (B, d)

    def extra_repr(self) -> str:
        return f"{self.dim}, max_period={self.max_period:g}"


class TimeEmbedding(nn.Module):
    """Ho et al.'s time embedding: the sinusoid of width ``channels``, a Linear to ``4 * channels``, SiLU, a Linear.

    Args:
        channels: the sinusoid's width (the UNet's base channel count).
        embedding_dim: the output width (``4 * channels`` in the paper).

    Shapes:
        - **t:** :math:`(B,)`.
        - **output:** :math:`(B, E)`, E = ``embedding_dim``.
    """

    def __init__(self, channels: int, embedding_dim: int) -> None:
        super().__init__()
        self.sinusoid = SinusoidalTimeEmbedding(channels)
        self.linear_1 = nn.Linear(channels, embedding_dim)
        self.linear_2 = nn.Linear(embedding_dim, embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _xavier_(self.linear_1)
        _xavier_(self.linear_2)

    def forward(self, t: Tensor) -> Tensor:
        embedding = self.sinusoid(t, self.linear_1.weight.dtype).to(self.linear_1.weight.dtype)
        return self.linear_2(F.silu(self.linear_1(embedding)))


class ResidualBlock(nn.Module):
    r"""The residual block of Ho et al. 2020 (a Wide-ResNet block with group normalisation and the time embedding):

    .. math::
        h = \mathrm{conv}_1(\mathrm{SiLU}(\mathrm{GN}(x))) + W_t\,\mathrm{SiLU}(e_t), \qquad
        y = \mathrm{skip}(x) + \mathrm{conv}_2(\mathrm{dropout}(\mathrm{SiLU}(\mathrm{GN}(h))))

    where :math:`e_t` is the time (and label) embedding, added to every pixel, and the skip is a 1x1 convolution when
    the channel count changes (the identity otherwise). ``conv2`` starts at zero, so the block starts as the skip.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        embedding_dim: width of the time embedding :math:`e_t`.
        dropout: dropout probability before ``conv2`` (0.1 for CIFAR-10 in the paper).
        num_groups: groups of both group normalisations (32 in the paper).
        eps: the group normalisations' epsilon (1e-6, TensorFlow's default, in the paper's code).

    Shapes:
        - **x:** :math:`(B, C_{in}, H, W)`.
        - **embedding:** :math:`(B, \text{embedding\_dim})`.
        - **output:** :math:`(B, C_{out}, H, W)`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        embedding_dim: int,
        dropout: float = 0.0,
        num_groups: int = 32,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm1 = nn.GroupNorm(num_groups, in_channels, eps=eps)
        self.conv1 = _conv3x3(in_channels, out_channels)
        self.time_proj = nn.Linear(embedding_dim, out_channels)
        self.norm2 = nn.GroupNorm(num_groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()
        _xavier_(self.conv1)
        _xavier_(self.time_proj)
        _xavier_(self.conv2, gain=0.0)
        if isinstance(self.skip, nn.Conv2d):
            _xavier_(self.skip)

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_proj(F.silu(embedding))[:, :, None, None]  # (B, C_out, 1, 1) broadcast over pixels
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"


class AttentionBlock(nn.Module):
    r"""The self-attention block of Ho et al. 2020 (the non-local block of Wang et al. 2018, with group norm):

    .. math::
        q, k, v = W_{q,k,v}\,\mathrm{GN}(x), \qquad
        y = x + W_o\,\mathrm{softmax}\!\Big(\frac{q k^\top}{\sqrt{d}}\Big) v

    over the :math:`H W` pixels, each a token of :math:`C` channels; :math:`W_{q,k,v}` (one Linear layer giving all
    three, ``qkv``) and :math:`W_o` (``proj_out``) act per pixel, as the paper's "network-in-network" 1x1 layers. The
    paper uses one head (:math:`d = C`); with ``num_heads`` > 1 the channels split into heads of :math:`d = C /
    \text{heads}`. :math:`W_o` starts at zero, so the block starts as the identity. The attention runs in
    ``F.scaled_dot_product_attention`` on tokens whose channels are contiguous, which lets it pick a fused kernel.

    Args:
        channels: channels :math:`C`.
        num_heads: attention heads; must divide ``channels``.
        num_groups: groups of the group normalisation.
        eps: the group normalisation's epsilon.

    Shapes:
        - **x:** :math:`(B, C, H, W)`.
        - **output:** :math:`(B, C, H, W)`.
    """

    def __init__(self, channels: int, num_heads: int = 1, num_groups: int = 32, eps: float = 1e-6) -> None:
        super().__init__()
        if channels % num_heads:
            raise ConfigError(f"num_heads={num_heads} must divide the {channels} channels of an attention block")
        self.channels = channels
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(num_groups, channels, eps=eps)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj_out = nn.Linear(channels, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.norm.reset_parameters()
        _xavier_(self.qkv)
        for weight in self.qkv.weight.detach().view(3, self.channels, self.channels):
            nn.init.xavier_uniform_(weight)  # q, k and v each a (C, C) layer, as in the paper's code
        _xavier_(self.proj_out, gain=0.0)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        qkv = self.qkv(tokens).view(batch, height * width, 3, self.num_heads, channels // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, HW, d)
        h = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, d)
        h = self.proj_out(h.transpose(1, 2).reshape(batch, height * width, channels))  # (B, HW, C)
        return x + h.transpose(1, 2).reshape(batch, channels, height, width)

    def extra_repr(self) -> str:
        return f"{self.channels}, num_heads={self.num_heads}"


class Downsample(nn.Module):
    """Halve the resolution with a 3x3 convolution of stride 2, padded as TensorFlow's "SAME" (zeros after the
    input only), as in Ho et al.'s code.

    Shapes:
        - **x:** :math:`(B, C, H, W)`, even H and W.
        - **output:** :math:`(B, C, H/2, W/2)`.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = _conv3x3(channels, channels, stride=2, padding=0)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _xavier_(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour upsampling, then a 3x3 convolution.

    Shapes:
        - **x:** :math:`(B, C, H, W)`.
        - **output:** :math:`(B, C, 2H, 2W)`.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = _conv3x3(channels, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _xavier_(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNetLevel(nn.Module):
    """One resolution of the UNet: residual blocks, each followed by an attention block where the level has them,
    then a change of resolution (or none at the end of the path)."""

    def __init__(self, res_blocks: list[ResidualBlock], attentions: list[AttentionBlock], resample: nn.Module | None):
        super().__init__()
        self.res_blocks = nn.ModuleList(res_blocks)
        self.attentions = nn.ModuleList(attentions)
        self.resample = resample


class DDPMUNet(nn.Module):
    r"""The noise-prediction network :math:`\epsilon_\theta(x_t, t)` of Ho et al. 2020, appendix B.

    The down path applies, at each resolution, ``num_res_blocks`` residual blocks (each followed by self-attention
    at the resolutions in ``attention_resolutions``) and then a strided convolution (except at the lowest
    resolution); the middle is a residual block, self-attention and a residual block; the up path mirrors the down
    path with one more residual block per resolution, each taking the concatenation of its input and the matching
    down-path activation (the output of ``conv_in``, of every residual/attention block and of every downsampling),
    and then nearest-neighbour upsampling and a convolution. The output is GroupNorm, SiLU and a 3x3 convolution
    (starting at zero). Every residual block receives the time embedding, plus the label embedding of a
    class-conditional network.

    Args:
        image_size: height and width of the input; must be divisible by ``2 ** (len(channel_mult) - 1)``.
        in_channels: image channels.
        out_channels: output channels; ``None`` for ``in_channels`` (the predicted noise has the image's shape).
        base_channels: channels of the first resolution and the time-sinusoid width (128 in the paper); the time
            embedding is ``4 * base_channels`` wide.
        channel_mult: channel multiplier of each resolution, from the input's down; ``(1, 2, 2, 2)`` for 32x32,
            ``(1, 1, 2, 2, 4, 4)`` for 256x256 in the paper.
        num_res_blocks: residual blocks per resolution on the down path (the up path has one more).
        attention_resolutions: the resolutions (heights) whose residual blocks are followed by self-attention;
            ``(16,)`` in the paper.
        dropout: dropout in every residual block (0.1 for CIFAR-10, 0 for the 256x256 models).
        num_heads: heads of every attention block (1 in the paper).
        num_groups: groups of every group normalisation (32 in the paper); must divide every channel count.
        norm_eps: epsilon of every group normalisation.
        num_classes: for a class-conditional network, the number of classes: a label embedding with one extra
            "null" row (index ``num_classes``, the unconditional model of classifier-free guidance) is added to the
            time embedding; ``None`` for an unconditional network.

    Shapes:
        - **x:** :math:`(B, C_{in}, H, W)` with :math:`H = W = \text{image\_size}`.
        - **t:** :math:`(B,)` or a scalar, integer or real.
        - **labels:** :math:`(B,)` integers in ``[0, num_classes]`` (``num_classes`` for "no label"), or ``None``
          (all "no label"); only for a class-conditional network.
        - **output:** :math:`(B, C_{out}, H, W)`.
    """

    def __init__(
        self,
        image_size: int = 32,
        in_channels: int = 3,
        out_channels: int | None = None,
        base_channels: int = 128,
        channel_mult: Sequence[int] = (1, 2, 2, 2),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (16,),
        dropout: float = 0.1,
        num_heads: int = 1,
        num_groups: int = 32,
        norm_eps: float = 1e-6,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        channel_mult = tuple(channel_mult)
        levels = len(channel_mult)
        if levels < 1 or num_res_blocks < 1 or image_size % 2 ** (levels - 1):
            raise ConfigError(
                f"image_size={image_size} must be divisible by 2 ** (len(channel_mult) - 1) = {2 ** (levels - 1)}, "
                f"with at least one level and one residual block (num_res_blocks={num_res_blocks})"
            )
        widths = [base_channels * mult for mult in channel_mult]
        if any(width % num_groups for width in widths):
            raise ConfigError(f"num_groups={num_groups} must divide every level's channel count {widths}")
        resolutions = [image_size // 2**level for level in range(levels)]
        unknown = sorted(set(attention_resolutions) - set(resolutions))
        if unknown:
            raise ConfigError(f"attention_resolutions {unknown} are not resolutions of this UNet: {resolutions}")
        if num_classes is not None and num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1 or None, got {num_classes}")
        self.image_size = image_size
        self.in_channels = in_channels
        self.out_channels = out_channels or in_channels
        self.num_classes = num_classes
        self.attention_resolutions = tuple(attention_resolutions)
        embedding_dim = 4 * base_channels

        def residual(cin: int, cout: int) -> ResidualBlock:
            return ResidualBlock(cin, cout, embedding_dim, dropout, num_groups, norm_eps)

        def attention(channels: int) -> AttentionBlock:
            return AttentionBlock(channels, num_heads, num_groups, norm_eps)

        self.time_embedding = TimeEmbedding(base_channels, embedding_dim)
        self.label_embedding = nn.Embedding(num_classes + 1, embedding_dim) if num_classes is not None else None
        self.conv_in = _conv3x3(in_channels, base_channels)

        skip_channels = [base_channels]
        channels = base_channels
        self.down = nn.ModuleList()
        for level, width in enumerate(widths):
            blocks, attentions = [], []
            for _ in range(num_res_blocks):
                blocks.append(residual(channels, width))
                channels = width
                if resolutions[level] in self.attention_resolutions:
                    attentions.append(attention(channels))
                skip_channels.append(channels)
            last = level == levels - 1
            self.down.append(UNetLevel(blocks, attentions, None if last else Downsample(channels)))
            if not last:
                skip_channels.append(channels)

        self.mid_block1 = residual(channels, channels)
        self.mid_attention = attention(channels)
        self.mid_block2 = residual(channels, channels)

        self.up = nn.ModuleList()
        for level in reversed(range(levels)):
            blocks, attentions = [], []
            for _ in range(num_res_blocks + 1):
                blocks.append(residual(channels + skip_channels.pop(), widths[level]))
                channels = widths[level]
                if resolutions[level] in self.attention_resolutions:
                    attentions.append(attention(channels))
            self.up.append(UNetLevel(blocks, attentions, Upsample(channels) if level > 0 else None))

        self.norm_out = nn.GroupNorm(num_groups, channels, eps=norm_eps)
        self.conv_out = _conv3x3(channels, self.out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's initialisation for the layers owned here (each block resets its own)."""
        _xavier_(self.conv_in)
        self.norm_out.reset_parameters()
        _xavier_(self.conv_out, gain=0.0)
        if self.label_embedding is not None:
            nn.init.normal_(self.label_embedding.weight)

    @property
    def null_label(self) -> int:
        """The label index that means "no label" in a class-conditional network (``num_classes``)."""
        if self.num_classes is None:
            raise AttributeError("an unconditional DDPMUNet has no null label")
        return self.num_classes

    def embed(self, t: Tensor, labels: Tensor | None, batch_size: int) -> Tensor:
        """The time embedding, plus the label embedding of a class-conditional network: ``(B, 4 * base_channels)``."""
        if t.ndim == 0:
            t = t.expand(batch_size)
        embedding = self.time_embedding(t)  # (B, E)
        if self.label_embedding is not None:
            if labels is None:
                labels = torch.full((batch_size,), self.null_label, dtype=torch.long, device=t.device)
            embedding = embedding + self.label_embedding(labels)
        elif labels is not None:
            raise ValueError("labels were given to an unconditional DDPMUNet; build it with num_classes")
        return embedding

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        embedding = self.embed(torch.as_tensor(t, device=x.device), labels, x.shape[0])
        h = self.conv_in(x)
        skips = [h]
        for level in self.down:
            for index, block in enumerate(level.res_blocks):
                h = block(h, embedding)
                if level.attentions:
                    h = level.attentions[index](h)
                skips.append(h)
            if level.resample is not None:
                h = level.resample(h)
                skips.append(h)
        h = self.mid_block2(self.mid_attention(self.mid_block1(h, embedding)), embedding)
        for level in self.up:
            for index, block in enumerate(level.res_blocks):
                h = block(torch.cat([h, skips.pop()], dim=1), embedding)  # (B, C + C_skip, H, W) in
                if level.attentions:
                    h = level.attentions[index](h)
            if level.resample is not None:
                h = level.resample(h)
        return self.conv_out(F.silu(self.norm_out(h)))

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        """Random images, random integer times in ``[0, 1000)`` and, if class-conditional, random labels."""
        device = self.conv_in.weight.device
        x = torch.randn(batch_size, self.in_channels, self.image_size, self.image_size, device=device)
        t = torch.randint(0, 1000, (batch_size,), device=device)
        if self.num_classes is None:
            return x, t
        return x, t, torch.randint(0, self.num_classes, (batch_size,), device=device)


_DIFFUSERS_RESNET_NAMES = {"time_emb_proj": "time_proj", "conv_shortcut": "skip"}


def convert_diffusers_unet_state_dict(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """A diffusers ``UNet2DModel`` state dict (of the configuration in this module's docstring) in our names.

    Residual blocks keep their layer names but ``time_emb_proj`` -> ``time_proj`` and ``conv_shortcut`` -> ``skip``;
    an attention block's ``to_q``, ``to_k``, ``to_v`` stack into our ``qkv``, ``to_out.0`` becomes ``proj_out`` and
    ``group_norm`` ``norm``; ``down_blocks``/``up_blocks`` are ``down``/``up`` with ``resnets`` -> ``res_blocks``
    and ``downsamplers.0``/``upsamplers.0`` -> ``resample``; ``mid_block``'s two resnets and its attention are
    ``mid_block1``, ``mid_block2``, ``mid_attention``; ``class_embedding`` is ``label_embedding`` and
    ``conv_norm_out`` is ``norm_out``. This loads, e.g., the weights Ho et al. released (as ``google/ddpm-cifar10-32``
    in diffusers' format) into :func:`ddpm_unet_cifar10`.
    """
    converted: dict[str, Tensor] = {}
    attention_parts: dict[str, dict[str, Tensor]] = {}
    for name, value in state_dict.items():
        parts = name.split(".")
        if parts[0] in ("down_blocks", "up_blocks"):
            prefix = ["down" if parts[0] == "down_blocks" else "up", parts[1]]
            kind, rest = parts[2], parts[3:]
            if kind == "resnets":
                converted[".".join([*prefix, "res_blocks", rest[0], *_resnet_names(rest[1:])])] = value
            elif kind in ("downsamplers", "upsamplers"):
                converted[".".join([*prefix, "resample", *rest[1:]])] = value
            elif kind == "attentions":
                attention_parts.setdefault(".".join([*prefix, "attentions", rest[0]]), {})[".".join(rest[1:])] = value
            else:
                raise KeyError(f"unexpected diffusers UNet parameter {name}")
        elif parts[0] == "mid_block":
            if parts[1] == "resnets":
                converted[".".join([f"mid_block{int(parts[2]) + 1}", *_resnet_names(parts[3:])])] = value
            else:
                attention_parts.setdefault("mid_attention", {})[".".join(parts[3:])] = value
        else:
            renamed = {"class_embedding": "label_embedding", "conv_norm_out": "norm_out"}.get(parts[0], parts[0])
            converted[".".join([renamed, *parts[1:]])] = value
    for prefix, tensors in attention_parts.items():
        converted[f"{prefix}.norm.weight"] = tensors["group_norm.weight"]
        converted[f"{prefix}.norm.bias"] = tensors["group_norm.bias"]
        converted[f"{prefix}.qkv.weight"] = torch.cat([tensors[f"to_{x}.weight"] for x in "qkv"])  # (3C, C)
        converted[f"{prefix}.qkv.bias"] = torch.cat([tensors[f"to_{x}.bias"] for x in "qkv"])
        converted[f"{prefix}.proj_out.weight"] = tensors["to_out.0.weight"]
        converted[f"{prefix}.proj_out.bias"] = tensors["to_out.0.bias"]
    return converted


def _resnet_names(parts: list[str]) -> list[str]:
    return [_DIFFUSERS_RESNET_NAMES.get(parts[0], parts[0]), *parts[1:]]


@register_model
def ddpm_unet(**kwargs) -> DDPMUNet:
    """A :class:`DDPMUNet` configured by keyword; the defaults are Ho et al.'s CIFAR-10 network."""
    return DDPMUNet(**kwargs)


@register_model
def ddpm_unet_cifar10(**kwargs) -> DDPMUNet:
    """Ho et al. 2020's CIFAR-10 network: 32x32, 128 channels x (1, 2, 2, 2), 2 residual blocks per resolution,
    attention at 16x16, dropout 0.1; 35.7M parameters."""
    config = dict(
        image_size=32,
        in_channels=3,
        base_channels=128,
        channel_mult=(1, 2, 2, 2),
        num_res_blocks=2,
        attention_resolutions=(16,),
        dropout=0.1,
    )
    return DDPMUNet(**{**config, **kwargs})


@register_model
def ddpm_unet_256(**kwargs) -> DDPMUNet:
    """Ho et al. 2020's network for the 256x256 datasets (CelebA-HQ, LSUN): 128 channels x (1, 1, 2, 2, 4, 4),
    2 residual blocks per resolution, attention at 16x16, no dropout; 114M parameters."""
    config = dict(
        image_size=256,
        in_channels=3,
        base_channels=128,
        channel_mult=(1, 1, 2, 2, 4, 4),
        num_res_blocks=2,
        attention_resolutions=(16,),
        dropout=0.0,
    )
    return DDPMUNet(**{**config, **kwargs})


_TINY = dict(image_size=8, base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(4,))
SMALL_KWARGS: dict[str, dict] = {
    "ddpm_unet": dict(_TINY, num_groups=4, num_classes=3),
    "ddpm_unet_cifar10": dict(_TINY, num_groups=4),
    "ddpm_unet_256": dict(_TINY, num_groups=4),
}
