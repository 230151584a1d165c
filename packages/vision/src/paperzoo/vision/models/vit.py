"""Vision Transformer (ViT) from Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale" (ICLR 2021, arXiv 2010.11929).

The image is cut into P x P patches, each flattened and linearly projected to width D (Eq. 1); a learned class token is
prepended and learned 1D position embeddings are added; L pre-norm encoder blocks follow (Eq. 2-3); the class token's
final state, layer-normed (Eq. 4), feeds a linear classifier. Section 3.2: to fine-tune at another resolution the
position embeddings are interpolated in 2D (:func:`resize_pos_embed`, or ``dynamic_img_size=True``).

Parameter names are timm's (``timm.models.vision_transformer.VisionTransformer``), so :func:`from_timm_state_dict` only
copies. The hybrid (a CNN's feature map as the patch grid, section 3.1) is this class with a ``backbone``; see
:mod:`paperzoo.vision.models.vit_hybrid`.

Registered variants (width D, depth L, heads; the MLP is always 4D wide). The ImageNet ones default to 1000 classes,
the small-image ones to 10:

=========================  ===  ==  =====  =====  =====  =============================================
name                         D   L  heads  patch  input  source
=========================  ===  ==  =====  =====  =====  =============================================
``vit_tiny_patch16_224``   192  12      3     16    224  DeiT-Ti (Touvron et al. 2021, Table 1)
``vit_small_patch16_224``  384  12      6     16    224  DeiT-S (Touvron et al. 2021, Table 1)
``vit_base_patch16_224``   768  12     12     16    224  ViT-B/16 (the paper's Table 1)
``vit_tiny_patch4_32``     192  12      3      4     32  ViT-Ti widths on CIFAR-10 (8x8 = 64 tokens)
``vit_tiny_patch4_28``     192  12      3      4     28  ViT-Ti widths on (Fashion-)MNIST (7x7 tokens)
``vit_nano_patch4_32``     128   6      4      4     32  a CPU-sized ViT for CIFAR-10
``vit_nano_patch4_28``     128   6      4      4     28  a CPU-sized ViT for (Fashion-)MNIST
=========================  ===  ==  =====  =====  =====  =============================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.vision.layers.drop_path import DropPath
from paperzoo.vision.layers.mlp import Mlp
from paperzoo.vision.registry import register_model

LAYER_NORM_EPS = 1e-6  # the JAX release's (and timm's) LayerNorm epsilon, not PyTorch's 1e-5


def resize_pos_embed(
    pos_embed: torch.Tensor,
    new_grid_size: int | tuple[int, int],
    old_grid_size: int | tuple[int, int] | None = None,
    num_prefix_tokens: int = 1,
    interpolation: str = "bicubic",
    antialias: bool = True,
) -> torch.Tensor:
    """Interpolate learned position embeddings to a new patch grid (Dosovitskiy et al. 2021, section 3.2).

    The embeddings of the patch tokens are laid out on their ``(H, W)`` grid and resampled in 2D "according to their
    location in the original image"; those of the prefix (class) tokens have no location and are kept. Use it on a
    checkpoint's ``pos_embed`` before loading it into a model built for another ``img_size``. Bicubic with
    antialiasing is timm's default (``resample_abs_pos_embed``), so timm checkpoints resize the way timm does.

    Args:
        pos_embed: embeddings of ``num_prefix_tokens`` prefix tokens followed by the grid, row by row.
        new_grid_size: ``(H_new, W_new)``, or one int for a square grid.
        old_grid_size: ``(H_old, W_old)``; ``None`` for a square grid, inferred from the number of tokens.
        num_prefix_tokens: leading tokens without a grid position (1 for the class token).
        interpolation: ``torch.nn.functional.interpolate`` mode.
        antialias: low-pass filter when downsampling (bilinear and bicubic modes only).

    Returns:
        The resized embeddings, in the input's dtype.

    Shapes:
        - pos_embed: :math:`(1, T + H_{old} W_{old}, D)`
        - output: :math:`(1, T + H_{new} W_{new}, D)`
    """
    new_h, new_w = (new_grid_size, new_grid_size) if isinstance(new_grid_size, int) else new_grid_size
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    if old_grid_size is None:
        side = math.isqrt(grid.shape[1])
        if side * side != grid.shape[1]:
            raise ValueError(f"{grid.shape[1]} grid tokens are not a square grid; pass old_grid_size")
        old_grid_size = side
    old_h, old_w = (old_grid_size, old_grid_size) if isinstance(old_grid_size, int) else old_grid_size
    if old_h * old_w != grid.shape[1]:
        raise ValueError(f"old grid {old_h}x{old_w} does not hold the {grid.shape[1]} grid tokens")
    if (old_h, old_w) == (new_h, new_w):
        return pos_embed
    dim = grid.shape[-1]
    grid = grid.reshape(1, old_h, old_w, dim).permute(0, 3, 1, 2)  # (1, D, H_old, W_old)
    grid = F.interpolate(grid.float(), size=(new_h, new_w), mode=interpolation, antialias=antialias)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_h * new_w, dim).to(pos_embed.dtype)  # (1, H_new W_new, D)
    return torch.cat([prefix, grid], dim=1)


class PatchEmbed(nn.Module):
    """Patch embedding from Dosovitskiy et al. 2021, Eq. 1, optionally on a CNN feature map (section 3.1).

    Cutting the input into non-overlapping P x P patches, flattening each and multiplying by the matrix E is one
    convolution with kernel and stride P, which is how it is computed. With a ``backbone`` (the paper's hybrid) the
    patches are cut from the CNN's feature map instead of the image; the paper uses P = 1 there, so each position of
    the feature map becomes a token.

    Args:
        in_chans: channels of the image.
        embed_dim: token width D.
        patch_size: P, in pixels of the image (or positions of the backbone's feature map).
        backbone: CNN applied first; it must have ``num_features`` (its output channels), ``reduction`` (its total
            stride) and ``output_size(input_size)`` (the side of its feature map).

    Shapes:
        - input: :math:`(B, C, H, W)`
        - output: :math:`(B, H', W', D)`, with :math:`H' =` ``grid_size(H)`` and :math:`W' =` ``grid_size(W)``
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.backbone = backbone
        proj_in = in_chans if backbone is None else backbone.num_features
        self.proj = nn.Conv2d(proj_in, embed_dim, kernel_size=patch_size, stride=patch_size)
        # input pixels per token along one side
        self.reduction = patch_size * (1 if backbone is None else backbone.reduction)

    def grid_size(self, input_size: int) -> int:
        """Number of tokens along a side of ``input_size`` pixels."""
        if self.backbone is not None:
            input_size = self.backbone.output_size(input_size)
        return input_size // self.patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backbone is not None:
            x = self.backbone(x)  # (B, C_backbone, H / r, W / r)
        return self.proj(x).permute(0, 2, 3, 1)  # (B, H', W', D)


class Attention(nn.Module):
    r"""Multi-head self-attention from Vaswani et al. 2017, as ViT uses it (Dosovitskiy et al. 2021, appendix A).

    .. math::
        [q, k, v] = z U_{qkv}, \quad \mathrm{SA}(z) = \mathrm{softmax}(q k^\top / \sqrt{D_h})\, v, \quad
        \mathrm{MSA}(z) = [\mathrm{SA}_1(z); \dots; \mathrm{SA}_k(z)]\, U_{msa}

    with :math:`D_h = D / k`, computed by ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        dim: token width D.
        num_heads: number of heads k.
        qkv_bias: learn a bias in the q, k, v projection.
        attn_dropout: dropout on the attention weights (training only).
        proj_dropout: dropout after the output projection.

    Shapes:
        - input: :math:`(B, N, D)`
        - output: :math:`(B, N, D)`
    """

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool = True, attn_dropout: float = 0.0, proj_dropout: float = 0.0
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_dropout = attn_dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, k, N, D_h)
        q, k, v = qkv.unbind(0)
        dropout_p = self.attn_dropout if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)  # (B, k, N, D_h)
        x = x.transpose(1, 2).reshape(B, N, D)  # (B, N, D), heads concatenated
        return self.proj_drop(self.proj(x))


class EncoderBlock(nn.Module):
    r"""Pre-norm transformer encoder block from Dosovitskiy et al. 2021, Eq. 2-3.

    .. math::
        z' = \mathrm{MSA}(\mathrm{LN}(z)) + z, \qquad z'' = \mathrm{MLP}(\mathrm{LN}(z')) + z'

    Layer norm before every block (rather than after, as in Vaswani et al. 2017) is the paper's choice.

    Args:
        dim: token width D.
        num_heads: attention heads.
        mlp_ratio: MLP width as a multiple of D.
        qkv_bias: learn a bias in the q, k, v projection.
        dropout: dropout after the MLP's dense layers and the attention's output projection.
        attn_dropout: dropout on the attention weights.
        drop_path: stochastic depth probability of both residual branches.

    Shapes:
        - input: :math:`(B, N, D)`
        - output: :math:`(B, N, D)`
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_dropout, dropout)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout)
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """Vision Transformer from Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", section 3.1.

    Patch embedding (Eq. 1), a learned class token, learned position embeddings, ``depth`` pre-norm encoder blocks
    (Eq. 2-3), a final layer norm and a linear classifier on the class token (Eq. 4). The model is built for
    ``img_size`` x ``img_size`` inputs; other sizes need ``dynamic_img_size=True`` (the position embeddings are then
    interpolated to every input's grid, section 3.2) or a rebuilt model loading :func:`resize_pos_embed`'s output.

    Args:
        img_size: side of the square input the position embeddings are learned for.
        patch_size: side P of the square patches (of the backbone's feature map when there is one).
        in_chans: input image channels.
        num_classes: number of output logits.
        embed_dim: token width D.
        depth: number of encoder blocks L.
        num_heads: attention heads per block.
        mlp_ratio: MLP width as a multiple of D.
        qkv_bias: learn a bias in the q, k, v projections.
        dropout: dropout after the position embeddings and every dense layer but q, k, v (the paper's appendix B.1).
        attn_dropout: dropout on the attention weights.
        drop_path_rate: stochastic depth probability of the last block, rising linearly from 0 at the first (the
            paper uses none; DeiT uses 0.1).
        dynamic_img_size: accept any input size, interpolating the position embeddings to its grid on each forward.
        backbone: CNN whose feature map is cut into patches instead of the image (the hybrid of section 3.1); see
            :class:`PatchEmbed` for what it must provide.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path_rate: float = 0.0,
        dynamic_img_size: bool = False,
        backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.num_features = embed_dim
        self.dynamic_img_size = dynamic_img_size
        self.num_prefix_tokens = 1

        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size, backbone)
        side = self.patch_embed.grid_size(img_size)
        if side < 1:
            raise ValueError(f"img_size={img_size} gives no patch of {self.patch_embed.reduction} pixels")
        self.grid_size = (side, side)
        # without interpolation only img_size fits the position embeddings; with it, one token is enough
        self.min_input_size = self.patch_embed.reduction if dynamic_img_size else img_size
        self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.empty(1, self.num_prefix_tokens + side * side, embed_dim))
        self.pos_drop = nn.Dropout(dropout)
        drop_paths = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(
            *(
                EncoderBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, dropout, attn_dropout, drop_path)
                for drop_path in drop_paths
            )
        )
        self.norm = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(embed_dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal (std 0.02) position embeddings and linear weights, zero biases and class token.

        timm's default (its ``trunc_normal_(std=0.02)`` truncates at +-2, 100 standard deviations out: a plain
        normal); the released JAX code draws the position embeddings the same way. The CNN backbone of a hybrid
        keeps its own initialisation.
        """
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.zeros_(self.cls_token)
        self.patch_embed.proj.reset_parameters()
        for module in (self.blocks, self.norm, self.head):
            for layer in module.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, std=0.02)
                    if layer.bias is not None:
                        nn.init.zeros_(layer.bias)
                elif isinstance(layer, nn.LayerNorm):
                    layer.reset_parameters()

    def _pos_embed_for(self, grid_size: tuple[int, int]) -> torch.Tensor:
        if grid_size == self.grid_size:
            return self.pos_embed
        return resize_pos_embed(self.pos_embed, grid_size, self.grid_size, self.num_prefix_tokens)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Layer-normed tokens after the last block, the class token first: ``(B, 1 + H' W', D)``."""
        if not self.dynamic_img_size and x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"this model takes {self.img_size}x{self.img_size} inputs, got {tuple(x.shape[-2:])}; "
                "build it with img_size=... or dynamic_img_size=True"
            )
        x = self.patch_embed(x)  # (B, H', W', D)
        B, H, W, D = x.shape
        x = torch.cat([self.cls_token.expand(B, -1, -1), x.reshape(B, H * W, D)], dim=1)  # (B, 1 + H'W', D)
        x = self.pos_drop(x + self._pos_embed_for((H, W)))
        x = self.blocks(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the class token's final state (Eq. 4)."""
        return self.head(x[:, 0])  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def from_timm_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict from that of a timm ``VisionTransformer`` with a class token and ``global_pool="token"``.

    The names are equal on both sides, so this is a copy: ``cls_token``, ``pos_embed``, ``patch_embed.proj`` (and
    ``patch_embed.backbone`` in a hybrid), ``blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``,
    ``norm`` and ``head``. A checkpoint trained at another resolution also needs :func:`resize_pos_embed` on
    ``pos_embed``.
    """
    return dict(state_dict)


# (img_size, patch_size, embed_dim, depth, num_heads, num_classes) of the registered variants; see the module docstring
_ARCHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "vit_tiny_patch16_224": (224, 16, 192, 12, 3, 1000),
    "vit_small_patch16_224": (224, 16, 384, 12, 6, 1000),
    "vit_base_patch16_224": (224, 16, 768, 12, 12, 1000),
    "vit_tiny_patch4_32": (32, 4, 192, 12, 3, 10),
    "vit_tiny_patch4_28": (28, 4, 192, 12, 3, 10),
    "vit_nano_patch4_32": (32, 4, 128, 6, 4, 10),
    "vit_nano_patch4_28": (28, 4, 128, 6, 4, 10),
}


def _create_vit(variant: str, **kwargs) -> VisionTransformer:
    img_size, patch_size, embed_dim, depth, num_heads, num_classes = _ARCHS[variant]
    arch = dict(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads)
    return VisionTransformer(**{**arch, "num_classes": num_classes, **kwargs})


@register_model
def vit_tiny_patch16_224(**kwargs) -> VisionTransformer:
    """ViT-Ti/16 at 224 (DeiT-Ti of Touvron et al. 2021): D = 192, 12 blocks, 3 heads; 5.7M parameters."""
    return _create_vit("vit_tiny_patch16_224", **kwargs)


@register_model
def vit_small_patch16_224(**kwargs) -> VisionTransformer:
    """ViT-S/16 at 224 (DeiT-S of Touvron et al. 2021): D = 384, 12 blocks, 6 heads; 22M parameters."""
    return _create_vit("vit_small_patch16_224", **kwargs)


@register_model
def vit_base_patch16_224(**kwargs) -> VisionTransformer:
    """ViT-B/16 at 224 (Dosovitskiy et al. 2021, Table 1): D = 768, 12 blocks, 12 heads; 86M parameters."""
    return _create_vit("vit_base_patch16_224", **kwargs)


@register_model
def vit_tiny_patch4_32(**kwargs) -> VisionTransformer:
    """ViT-Ti widths with 4x4 patches on 32x32 images (CIFAR-10): 64 tokens, 5.4M parameters."""
    return _create_vit("vit_tiny_patch4_32", **kwargs)


@register_model
def vit_tiny_patch4_28(**kwargs) -> VisionTransformer:
    """ViT-Ti widths with 4x4 patches on 28x28 images ((Fashion-)MNIST): 49 tokens, 5.4M parameters."""
    return _create_vit("vit_tiny_patch4_28", **kwargs)


@register_model
def vit_nano_patch4_32(**kwargs) -> VisionTransformer:
    """A CPU-sized ViT for 32x32 images (CIFAR-10): D = 128, 6 blocks, 4 heads, 4x4 patches; 1.2M parameters."""
    return _create_vit("vit_nano_patch4_32", **kwargs)


@register_model
def vit_nano_patch4_28(**kwargs) -> VisionTransformer:
    """A CPU-sized ViT for 28x28 images ((Fashion-)MNIST): D = 128, 6 blocks, 4 heads, 4x4 patches; 1.2M parameters."""
    return _create_vit("vit_nano_patch4_28", **kwargs)
