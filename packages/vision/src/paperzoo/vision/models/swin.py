"""Swin Transformer from Liu et al. 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows"
(ICCV 2021, arXiv 2103.14030).

A 4x4 patch embedding, then stages of transformer blocks whose self-attention is restricted to non-overlapping
M x M windows (W-MSA, section 3.2), alternating with windows shifted by M/2 (SW-MSA) so that information crosses
window borders. The shift is computed as a cyclic shift of the feature map (``torch.roll``) plus an attention mask
that keeps tokens from attending across the seams the roll creates (Fig. 4). Attention carries a learned relative
position bias indexed by the offset between two tokens of a window (Eq. 4). Patch merging halves the resolution and
doubles the width between stages (section 3.1).

Parameter names are timm's (``timm.models.swin_transformer.SwinTransformer``) except ``stages`` for timm's
``layers`` (the paper's word) and a plain linear ``head`` for timm's ``head.fc``: :func:`from_timm_state_dict` renames.

Registered variants (C is the width of stage 1; each later stage doubles it). The ImageNet ones default to 1000 classes,
the small-image ones to 10:

=================================  ==  =============  ==============  =====  ======  ================================
name                                C  depths         heads           patch  window  input
=================================  ==  =============  ==============  =====  ======  ================================
``swin_tiny_patch4_window7_224``   96  (2, 2, 6, 2)   (3, 6, 12, 24)      4       7  224 (Swin-T, section 3.3)
``swin_small_patch4_window7_224``  96  (2, 2, 18, 2)  (3, 6, 12, 24)      4       7  224 (Swin-S)
``swin_nano_patch2_window4_32``    64  (2, 2, 2)      (2, 4, 8)           2       4  32: maps 16, 8, 4 (CIFAR-10)
``swin_nano_patch2_window7_28``    64  (2, 6)         (2, 4)              2       7  28: maps 14, 7 ((Fashion-)MNIST)
=================================  ==  =============  ==============  =====  ======  ================================

A stage whose feature map is no larger than the window has one window, nothing to shift and a window clipped to the
map, as in the paper's code (stage 4 at 224, the last stage of the small variants).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.vision.layers.drop_path import DropPath
from paperzoo.vision.layers.mlp import Mlp
from paperzoo.vision.models.vit import Attention
from paperzoo.vision.registry import register_model


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Cut a feature map into non-overlapping windows, in row-major window order within each image.

    Shapes:
        - input: :math:`(B, H, W, C)`
        - output: :math:`(B \\cdot H/M \\cdot W/M, M^2, C)`, tokens row-major within a window
    """
    B, H, W, C = x.shape
    M = window_size
    x = x.view(B, H // M, M, W // M, M, C).permute(0, 1, 3, 2, 4, 5)  # (B, H/M, W/M, M, M, C)
    return x.reshape(-1, M * M, C)


def window_reverse(windows: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`.

    Shapes:
        - input: :math:`(B \\cdot H/M \\cdot W/M, M^2, C)`
        - output: :math:`(B, H, W, C)`
    """
    M = window_size
    C = windows.shape[-1]
    x = windows.view(-1, height // M, width // M, M, M, C).permute(0, 1, 3, 2, 4, 5)  # (B, H/M, M, W/M, M, C)
    return x.reshape(-1, height, width, C)


def relative_position_index(window_size: int) -> torch.Tensor:
    """Index into the bias table of every (query, key) pair of an M x M window (Liu et al. 2021, section 3.2).

    The offset between tokens at :math:`(y_i, x_i)` and :math:`(y_j, x_j)` lies in :math:`[-M + 1, M - 1]` along each
    axis, so the biases form a :math:`(2M - 1) \\times (2M - 1)` table :math:`\\hat B`, read at
    :math:`((y_i - y_j + M - 1)(2M - 1) + (x_i - x_j + M - 1))`.

    Shapes:
        - output: :math:`(M^2, M^2)`, long, values in :math:`[0, (2M - 1)^2)`
    """
    M = window_size
    rows, cols = torch.meshgrid(torch.arange(M), torch.arange(M), indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()])  # (2, M^2): (y, x) of each token
    offsets = coords[:, :, None] - coords[:, None, :] + (M - 1)  # (2, M^2, M^2), in [0, 2M - 2]
    return offsets[0] * (2 * M - 1) + offsets[1]


def shifted_window_mask(resolution: int, window_size: int, shift_size: int) -> torch.Tensor:
    """Which (query, key) pairs of each shifted window must not attend (Liu et al. 2021, Fig. 4).

    After the feature map is rolled up and left by ``shift_size``, the last ``shift_size`` rows (and columns) hold
    tokens from the opposite border of the image. Labelling the rolled map's regions ``[0, H - M)``,
    ``[H - M, H - s)`` and ``[H - s, H)`` along each axis, two tokens of a window may attend to each other only if
    they carry the same label, i.e. were neighbours before the roll.

    Args:
        resolution: side H of the (square) feature map.
        window_size: M.
        shift_size: s.

    Shapes:
        - output: :math:`(H^2 / M^2, M^2, M^2)`, bool, ``True`` where attention is blocked
    """
    M, s = window_size, shift_size
    region = torch.zeros(resolution, resolution, dtype=torch.long)
    bounds = (slice(0, -M), slice(-M, -s), slice(-s, None))
    for i, rows in enumerate(bounds):
        for j, cols in enumerate(bounds):
            region[rows, cols] = 3 * i + j
    windows = window_partition(region.view(1, resolution, resolution, 1), M).squeeze(-1)  # (nW, M^2)
    return windows[:, :, None] != windows[:, None, :]  # (nW, M^2, M^2)


class WindowAttention(Attention):
    r"""Window multi-head self-attention with relative position bias from Liu et al. 2021, Eq. 4.

    .. math::
        \mathrm{Attention}(Q, K, V) = \mathrm{softmax}(Q K^\top / \sqrt d + B)\, V

    within each window, with :math:`B_{ij} = \hat B[\text{index}(i, j)]` per head (:func:`relative_position_index`)
    and, for shifted windows, :math:`-\infty` added where the mask blocks a pair. Computed by
    ``torch.nn.functional.scaled_dot_product_attention`` with ``B`` (plus the mask) as its additive ``attn_mask``.

    Args:
        dim: token width.
        num_heads: attention heads.
        window_size: side M of the square window.
        qkv_bias: learn a bias in the q, k, v projection.
        attn_dropout: dropout on the attention weights (training only).
        proj_dropout: dropout after the output projection.

    Shapes:
        - input: :math:`(B \cdot n_W, M^2, C)` and an optional mask :math:`(n_W, M^2, M^2)` (bool, ``True`` blocks)
        - output: :math:`(B \cdot n_W, M^2, C)`
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        qkv_bias: bool = True,
        attn_dropout: float = 0.0,
        proj_dropout: float = 0.0,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias=qkv_bias, attn_dropout=attn_dropout, proj_dropout=proj_dropout)
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> torch.Tensor:
        """The bias :math:`B` of every head: ``(num_heads, M^2, M^2)``."""
        bias = self.relative_position_bias_table[self.relative_position_index]  # (M^2, M^2, heads)
        return bias.permute(2, 0, 1)  # (heads, M^2, M^2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        Bw, N, C = x.shape
        qkv = self.qkv(x).reshape(Bw, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, Bw, h, N, d)
        q, k, v = qkv.unbind(0)
        attn_bias = self.relative_position_bias()  # (h, N, N)
        if mask is not None:
            num_windows = mask.shape[0]
            # window w of every image gets mask[w]: split the batch of windows into (images, windows) and broadcast
            q, k, v = (t.view(-1, num_windows, self.num_heads, N, self.head_dim) for t in (q, k, v))  # (B, nW, h, N, d)
            attn_bias = attn_bias.masked_fill(mask[:, None], float("-inf"))  # (nW, h, N, N)
        dropout_p = self.attn_dropout if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, dropout_p=dropout_p)
        x = x.reshape(Bw, self.num_heads, N, self.head_dim).transpose(1, 2).reshape(Bw, N, C)  # heads concatenated
        return self.proj_drop(self.proj(x))


class SwinBlock(nn.Module):
    r"""Swin Transformer block from Liu et al. 2021, Eq. 3: pre-norm (S)W-MSA and MLP, each with a residual.

    .. math::
        \hat z = \text{(S)W-MSA}(\mathrm{LN}(z)) + z, \qquad z' = \mathrm{MLP}(\mathrm{LN}(\hat z)) + \hat z

    With ``shift=True`` the normed map is rolled by :math:`(-\lfloor M/2 \rfloor, -\lfloor M/2 \rfloor)` before
    window partition and rolled back after, with :func:`shifted_window_mask` blocking attention across the seams.
    When the map is no larger than the window the window is clipped to it and nothing is shifted.

    Args:
        dim: token width.
        num_heads: attention heads.
        resolution: side of the (square) feature map the block works on.
        window_size: side M of the window.
        shift: shift the windows (the odd blocks of every stage).
        mlp_ratio: MLP width as a multiple of ``dim``.
        qkv_bias: learn a bias in the q, k, v projection.
        dropout: dropout after the MLP's layers and the attention's output projection.
        attn_dropout: dropout on the attention weights.
        drop_path: stochastic depth probability of both residual branches.

    Shapes:
        - input: :math:`(B, H, W, C)`
        - output: :math:`(B, H, W, C)`
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        resolution: int,
        window_size: int = 7,
        shift: bool = False,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if resolution <= window_size:
            window_size, shift = resolution, False
        if resolution % window_size:
            raise ValueError(f"a {resolution}x{resolution} map cannot be cut into {window_size}x{window_size} windows")
        self.resolution = resolution
        self.window_size = window_size
        self.shift_size = window_size // 2 if shift else 0
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, qkv_bias, attn_dropout, dropout)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout)
        self.drop_path2 = DropPath(drop_path)
        mask = shifted_window_mask(resolution, window_size, self.shift_size) if self.shift_size else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:3] != (self.resolution, self.resolution):
            raise ValueError(f"this block works on {self.resolution}x{self.resolution} maps, got {tuple(x.shape[1:3])}")
        shortcut = x
        x = self.norm1(x)
        s = self.shift_size
        if s:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))  # the cyclic shift: windows now straddle old borders
        windows = window_partition(x, self.window_size)  # (B nW, M^2, C)
        windows = self.attn(windows, self.attn_mask)
        x = window_reverse(windows, self.window_size, self.resolution, self.resolution)  # (B, H, W, C)
        if s:
            x = torch.roll(x, shifts=(s, s), dims=(1, 2))
        x = shortcut + self.drop_path1(x)
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Patch merging from Liu et al. 2021, section 3.1: concatenate each 2x2 group of tokens, norm, project to 2C.

    The four tokens are concatenated in the paper's code's order, (0, 0), (1, 0), (0, 1), (1, 1) as (row, column)
    offsets, which is what its weights (and timm's) expect.

    Args:
        dim: input width C.

    Shapes:
        - input: :math:`(B, H, W, C)` with even H and W
        - output: :math:`(B, H/2, W/2, 2C)`
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        group = [x[:, row::2, col::2] for col in (0, 1) for row in (0, 1)]  # (0, 0), (1, 0), (0, 1), (1, 1)
        x = torch.cat(group, dim=-1)  # (B, H/2, W/2, 4C)
        return self.reduction(self.norm(x))  # (B, H/2, W/2, 2C)


class SwinStage(nn.Module):
    """One stage of Liu et al. 2021 (Fig. 3): optional patch merging, then blocks alternating W-MSA and SW-MSA.

    Merging opens the stage (timm's layout; the paper's code closes the previous stage with it, the same network).

    Args:
        dim: width of the stage's blocks.
        depth: number of blocks.
        num_heads: attention heads.
        resolution: side of the stage's feature map (after merging).
        window_size: side of the window.
        downsample: open with :class:`PatchMerging` from ``dim / 2`` channels at twice the resolution.
        drop_paths: stochastic depth probability of each block.
        block_kwargs: the remaining :class:`SwinBlock` arguments.

    Shapes:
        - input: :math:`(B, 2R, 2R, C/2)` with ``downsample``, else :math:`(B, R, R, C)`
        - output: :math:`(B, R, R, C)`
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        resolution: int,
        window_size: int,
        downsample: bool,
        drop_paths: Sequence[float],
        **block_kwargs,
    ) -> None:
        super().__init__()
        self.downsample = PatchMerging(dim // 2) if downsample else nn.Identity()
        self.blocks = nn.Sequential(
            *(
                SwinBlock(dim, num_heads, resolution, window_size, i % 2 == 1, drop_path=drop_paths[i], **block_kwargs)
                for i in range(depth)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class PatchEmbed(nn.Module):
    """Swin's patch partition and linear embedding (Liu et al. 2021, section 3.1), followed by a layer norm.

    Args:
        in_chans: input image channels.
        embed_dim: width C of stage 1.
        patch_size: side of the square patches (4 in the paper).

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, H/P, W/P, C)`
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))  # (B, H/P, W/P, C)


class SwinTransformer(nn.Module):
    """Swin Transformer from Liu et al. 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted
    Windows", section 3 and Fig. 3.

    Patch embedding, stages of :class:`SwinBlock` with patch merging between them (width doubling, resolution
    halving), a final layer norm, global average pooling and a linear classifier. Built for ``img_size`` x
    ``img_size`` inputs: the windows, shifts and masks are fixed by the resolution of every stage.

    Args:
        img_size: side of the square input.
        patch_size: side of the square patches.
        in_chans: input image channels.
        num_classes: number of output logits.
        embed_dim: width C of stage 1; stage i has width :math:`2^{i} C`.
        depths: number of blocks in each stage.
        num_heads: attention heads in each stage.
        window_size: side M of the attention windows.
        mlp_ratio: MLP width as a multiple of the stage width.
        qkv_bias: learn a bias in the q, k, v projections.
        dropout: dropout after the patch embedding and after the MLPs' and attention output projections.
        attn_dropout: dropout on the attention weights.
        drop_path_rate: stochastic depth probability of the last block, rising linearly from 0 at the first. The
            paper trains Swin-T with 0.2 and Swin-S with 0.3 (section 4.1); the default is 0 so that the model, not
            the recipe, is what this class fixes.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {tuple(depths)} and num_heads {tuple(num_heads)} differ in length")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.min_input_size = img_size
        self.num_features = embed_dim * 2 ** (len(depths) - 1)

        resolution = img_size // patch_size
        if resolution * patch_size != img_size or resolution % 2 ** (len(depths) - 1):
            raise ValueError(
                f"img_size={img_size} must be patch_size={patch_size} times a multiple of {2 ** (len(depths) - 1)}"
            )
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size)
        self.pos_drop = nn.Dropout(dropout)
        drop_paths = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        block_kwargs = dict(mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, dropout=dropout, attn_dropout=attn_dropout)
        stages = []
        for index, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
            stage_paths, drop_paths = drop_paths[:depth], drop_paths[depth:]
            dim = embed_dim * 2**index
            stage_resolution = resolution // 2**index
            stages.append(
                SwinStage(dim, depth, heads, stage_resolution, window_size, index > 0, stage_paths, **block_kwargs)
            )
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal (std 0.02) linear weights and bias tables, zero biases.

        The paper's code and timm call ``trunc_normal_(std=0.02)`` with bounds of +-2, 100 standard deviations out:
        a plain normal.
        """
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.LayerNorm, nn.Conv2d, WindowAttention)):
                module.reset_parameters()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Layer-normed feature map of the last stage, channels last: ``(B, H/32, W/32, 8C)`` for Swin-T."""
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"this model takes {self.img_size}x{self.img_size} inputs, got {tuple(x.shape[-2:])}; "
                "build it with img_size=..."
            )
        x = self.pos_drop(self.patch_embed(x))  # (B, H/P, W/P, C)
        x = self.stages(x)  # (B, H/P/2^(S-1), W/P/2^(S-1), 2^(S-1) C)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the average of the last stage's tokens."""
        return self.head(x.mean(dim=(1, 2)))  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# timm's name prefix -> ours; every other name is equal
_TIMM_RENAMES: tuple[tuple[str, str], ...] = (
    ("layers.", "stages."),
    ("head.fc.", "head."),
)


def from_timm_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict from that of a timm ``SwinTransformer`` (``swin_tiny_patch4_window7_224`` and relatives).

    ==================================================  ==================================================
    timm                                                ours
    ==================================================  ==================================================
    ``layers.{i}.downsample.{norm,reduction}``          ``stages.{i}.downsample.{norm,reduction}``
    ``layers.{i}.blocks.{j}.*``                         ``stages.{i}.blocks.{j}.*``
    ``head.fc``                                         ``head``
    ``patch_embed.{proj,norm}``, ``norm``               the same
    ==================================================  ==================================================
    """
    converted = {}
    for name, tensor in state_dict.items():
        for old, new in _TIMM_RENAMES:
            if name.startswith(old):
                name = new + name.removeprefix(old)
                break
        converted[name] = tensor
    return converted


# (img_size, patch_size, embed_dim, depths, num_heads, window_size, num_classes) of the registered variants
_ARCHS: dict[str, tuple[int, int, int, tuple[int, ...], tuple[int, ...], int, int]] = {
    "swin_tiny_patch4_window7_224": (224, 4, 96, (2, 2, 6, 2), (3, 6, 12, 24), 7, 1000),
    "swin_small_patch4_window7_224": (224, 4, 96, (2, 2, 18, 2), (3, 6, 12, 24), 7, 1000),
    "swin_nano_patch2_window4_32": (32, 2, 64, (2, 2, 2), (2, 4, 8), 4, 10),
    "swin_nano_patch2_window7_28": (28, 2, 64, (2, 6), (2, 4), 7, 10),
}


def _create_swin(variant: str, **kwargs) -> SwinTransformer:
    img_size, patch_size, embed_dim, depths, num_heads, window_size, num_classes = _ARCHS[variant]
    arch = dict(
        img_size=img_size,
        patch_size=patch_size,
        embed_dim=embed_dim,
        depths=depths,
        num_heads=num_heads,
        window_size=window_size,
        num_classes=num_classes,
    )
    return SwinTransformer(**{**arch, **kwargs})


@register_model
def swin_tiny_patch4_window7_224(**kwargs) -> SwinTransformer:
    """Swin-T (Liu et al. 2021, section 3.3): C = 96, depths (2, 2, 6, 2), 7x7 windows at 224; 28M parameters."""
    return _create_swin("swin_tiny_patch4_window7_224", **kwargs)


@register_model
def swin_small_patch4_window7_224(**kwargs) -> SwinTransformer:
    """Swin-S (Liu et al. 2021, section 3.3): C = 96, depths (2, 2, 18, 2), 7x7 windows at 224; 50M parameters."""
    return _create_swin("swin_small_patch4_window7_224", **kwargs)


@register_model
def swin_nano_patch2_window4_32(**kwargs) -> SwinTransformer:
    """A small Swin for 32x32 images (CIFAR-10): 2x2 patches, 4x4 windows on 16x16, 8x8, 4x4 maps; 2.2M parameters."""
    return _create_swin("swin_nano_patch2_window4_32", **kwargs)


@register_model
def swin_nano_patch2_window7_28(**kwargs) -> SwinTransformer:
    """A small Swin for 28x28 images ((Fashion-)MNIST): 2x2 patches, 7x7 windows on 14x14, 7x7 maps; 1.3M parameters."""
    return _create_swin("swin_nano_patch2_window7_28", **kwargs)
