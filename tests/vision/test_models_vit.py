"""Tests for the vision transformers: ViT, the ResNet hybrid and Swin (paperzoo.vision.models.vit, vit_hybrid, swin).

Parity with timm (random weights copied across), position-embedding interpolation against timm's, the Swin shifted
window mask and relative position index against the paper, and the invariants that catch their classic bugs. The
registry-generated checks (shapes, gradients, eval determinism) are in test_models.py.
"""

import itertools
from collections.abc import Callable

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import checkpoint_filter_fn
from torch import nn

from paperzoo.vision.layers.drop_path import DropPath
from paperzoo.vision.models import swin, vit, vit_hybrid
from paperzoo.vision.models.swin import SwinBlock, WindowAttention, relative_position_index, shifted_window_mask
from paperzoo.vision.models.vit import resize_pos_embed
from paperzoo.vision.models.vit_hybrid import ResNetGNWS
from paperzoo.vision.registry import create_model

PARITY_TOL = 1e-4

# name -> (our converter, batch size, a parameter of ours that a small change to must show in the logits)
PARITY_CASES: dict[str, tuple[Callable, int, str]] = {
    "vit_base_patch16_224": (vit.from_timm_state_dict, 1, "blocks.0.attn.qkv.weight"),
    "swin_tiny_patch4_window7_224": (swin.from_timm_state_dict, 2, "stages.0.blocks.1.attn.qkv.weight"),
    "vit_small_r26_s32_224": (vit_hybrid.from_timm_state_dict, 2, "patch_embed.backbone.stem.conv.weight"),
}


def _randomise_constant_init(model: nn.Module) -> None:
    """Random values where timm's init is constant (norm affines, biases, class token) or tiny (bias tables).

    With ones and zeros there, swapping two norms or dropping a bias would not show in the outputs.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
            elif isinstance(module, (nn.Linear, nn.Conv2d)) and module.bias is not None:
                module.bias.uniform_(-0.1, 0.1)
        for name, param in model.named_parameters():
            if name == "cls_token" or name.endswith("relative_position_bias_table"):
                param.normal_(0.0, 0.5)


def _reference_and_ours(name: str, **timm_kwargs) -> tuple[nn.Module, nn.Module]:
    converter = PARITY_CASES[name][0]
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False, **timm_kwargs)
    _randomise_constant_init(reference)
    ours = create_model(name)
    ours.load_state_dict(converter(reference.state_dict()))  # strict: same names and shapes on both sides
    return reference, ours


# --- parity with timm ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PARITY_CASES)
def test_parity_eval(name):
    _, batch, perturbed = PARITY_CASES[name]
    reference, ours = _reference_and_ours(name)
    reference.eval()
    ours.eval()
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(ours(x), expected, atol=PARITY_TOL, rtol=0)
        # the tolerance is tight enough to see a small change early in the network
        param = ours.get_parameter(perturbed)
        param.add_(1e-2 * param.std() * torch.randn_like(param))
        assert (ours(x) - expected).abs().max() > PARITY_TOL


@pytest.mark.parametrize("name", ["swin_tiny_patch4_window7_224", "vit_small_r26_s32_224"])
def test_parity_train_gradients(name):
    # no dropout or stochastic depth on either side (timm's Swin defaults to drop_path_rate=0.1), so train mode is
    # deterministic and the gradients must agree; ViT-B shares every layer with the hybrid's transformer
    reference, ours = _reference_and_ours(name, drop_path_rate=0.0)
    reference.train()
    ours.train()
    x = torch.randn(1, 3, 224, 224)
    projection = torch.randn(1, 1000)
    for model in (reference, ours):
        (model(x) * projection).sum().backward()
    ours_params = dict(ours.named_parameters())
    renamed = PARITY_CASES[name][0](dict(reference.named_parameters()))  # our name -> timm's parameter
    assert renamed.keys() == ours_params.keys()
    for param_name, ref_param in renamed.items():  # within 1e-4 of each tensor's largest gradient
        scale = ref_param.grad.abs().max().clamp_min(1e-6)
        ours_grad = ours_params[param_name].grad
        torch.testing.assert_close(ours_grad / scale, ref_param.grad / scale, atol=1e-4, rtol=0, msg=param_name)


# --- ViT position embeddings -----------------------------------------------------------------------------------------


def test_resize_pos_embed_keeps_the_class_token_and_is_the_identity_at_the_same_size():
    pos_embed = torch.randn(1, 1 + 6 * 4, 8)
    resized = resize_pos_embed(pos_embed, (3, 5), old_grid_size=(6, 4))
    assert resized.shape == (1, 1 + 3 * 5, 8)
    assert torch.equal(resized[:, 0], pos_embed[:, 0])
    assert resize_pos_embed(pos_embed, (6, 4), old_grid_size=(6, 4)) is pos_embed
    with pytest.raises(ValueError, match="not a square grid"):
        resize_pos_embed(pos_embed, 5)


def test_resize_pos_embed_resamples_along_the_right_axes():
    # an embedding that varies along the rows only must still vary along the rows only after resizing a
    # non-square grid; a row-major / column-major mix-up would break this
    rows = torch.linspace(-1, 1, 6).view(6, 1, 1).expand(6, 4, 3)  # (H, W, D)
    pos_embed = torch.cat([torch.zeros(1, 1, 3), rows.reshape(1, 24, 3)], dim=1)
    resized = resize_pos_embed(pos_embed, (9, 7), old_grid_size=(6, 4))[:, 1:].reshape(9, 7, 3)
    torch.testing.assert_close(resized, resized[:, :1].expand(9, 7, 3))
    assert (resized[1:, 0, 0] > resized[:-1, 0, 0]).all()


def _tiny_vit_pair(**timm_kwargs) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, **timm_kwargs).eval()
    _randomise_constant_init(reference)
    return reference, vit.from_timm_state_dict(reference.state_dict())


@pytest.mark.parametrize("size", [(160, 256), (288, 96)])
def test_dynamic_img_size_matches_timm(size):
    # non-square inputs, grids (10, 16) and (18, 6) from the trained (14, 14): up along one axis, down the other
    reference, state_dict = _tiny_vit_pair(dynamic_img_size=True)
    ours = create_model("vit_tiny_patch16_224", dynamic_img_size=True).eval()
    ours.load_state_dict(state_dict)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=PARITY_TOL, rtol=0)
    assert ours.min_input_size == 16


@pytest.mark.parametrize("img_size", [160, 288])
def test_loading_a_checkpoint_at_another_resolution_matches_timm(img_size):
    # timm resizes a 224 checkpoint for a model built at img_size with checkpoint_filter_fn; we use resize_pos_embed
    reference_224, state_dict = _tiny_vit_pair()
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=img_size).eval()
    reference.load_state_dict(checkpoint_filter_fn(reference_224.state_dict(), reference))
    ours = create_model("vit_tiny_patch16_224", img_size=img_size).eval()
    assert ours.grid_size == (img_size // 16, img_size // 16)
    ours.load_state_dict({**state_dict, "pos_embed": resize_pos_embed(state_dict["pos_embed"], ours.grid_size)})
    x = torch.randn(2, 3, img_size, img_size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=PARITY_TOL, rtol=0)


def test_vit_takes_only_its_image_size_unless_dynamic():
    model = create_model("vit_nano_patch4_32")
    assert model.min_input_size == 32 and model.grid_size == (8, 8)
    with pytest.raises(ValueError, match="takes 32x32 inputs"):
        model(torch.randn(1, 3, 28, 28))
    dynamic = create_model("vit_nano_patch4_32", dynamic_img_size=True)
    assert dynamic(torch.randn(1, 3, 28, 36)).shape == (1, 10)


def test_vit_sequence_is_class_token_then_patches_row_by_row():
    torch.manual_seed(0)
    model = create_model("vit_nano_patch4_28", depth=0).eval()  # no blocks: tokens are embeddings + positions
    x = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        tokens = model.forward_features(x)
        assert tokens.shape == (1, 1 + 49, 128)
        torch.testing.assert_close(tokens[:, 0], model.norm(model.cls_token + model.pos_embed[:, 0])[:, 0])
        # the patch at row 2, column 5 is token 1 + 2 * 7 + 5
        patch = x[:, :, 8:12, 20:24]
        embedded = F.conv2d(patch, model.patch_embed.proj.weight, model.patch_embed.proj.bias).flatten(1)
        torch.testing.assert_close(tokens[:, 1 + 2 * 7 + 5], model.norm(embedded + model.pos_embed[:, 1 + 2 * 7 + 5]))


# --- the hybrid's ResNet ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [61, 64])
def test_hybrid_backbone_same_padding_matches_timm(size):
    # odd and even sides: TensorFlow "SAME" pads asymmetrically, and differently for each
    torch.manual_seed(0)
    reference = timm.create_model("vit_small_r26_s32_224", pretrained=False).patch_embed.backbone.eval()
    _randomise_constant_init(reference)
    ours = ResNetGNWS((2, 2, 2, 2)).eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        out = ours(x)
        assert out.shape[-1] == ours.output_size(size) == 2
        torch.testing.assert_close(out, reference(x), atol=PARITY_TOL, rtol=0)


def test_standardized_convolution_uses_zero_mean_unit_variance_kernels():
    conv = ResNetGNWS((1,)).stem.conv
    weight = conv.standardized_weight()
    torch.testing.assert_close(weight.mean(dim=(1, 2, 3)), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(weight.var(dim=(1, 2, 3), unbiased=False), torch.ones(64), atol=1e-4, rtol=0)
    # invariant to an affine change of each kernel, so only the kernel's shape matters
    x = torch.randn(1, 3, 16, 16)
    out = conv(x)
    with torch.no_grad():
        conv.weight.mul_(3.0).add_(0.5)
    torch.testing.assert_close(conv(x), out, atol=1e-4, rtol=1e-4)


# --- Swin: shifted windows, mask, relative position bias -------------------------------------------------------------


def _shifted_block() -> SwinBlock:
    torch.manual_seed(0)
    # an 8x8 map in 4x4 windows, shifted by 2
    return SwinBlock(dim=16, num_heads=2, resolution=8, window_size=4, shift=True).eval()


def test_shifted_window_mask_blocks_attention_across_the_cyclic_shift():
    block = _shifted_block()
    assert block.shift_size == 2
    x = torch.randn(1, 8, 8, 16)
    # after rolling by -2, the bottom-right window (rolled rows and columns 4..7) holds original rows and columns
    # 6, 7 (neighbours of each other) and 0, 1 (wrapped around from the other border)
    query, same_region, other_region = (6, 6), (7, 7), (0, 0)

    def query_output_after_changing(token: tuple[int, int]) -> torch.Tensor:
        changed = x.clone()
        changed[0, token[0], token[1]] += 5.0 * torch.randn(16)
        with torch.no_grad():
            return block(changed)[0, query[0], query[1]]

    with torch.no_grad():
        out = block(x)[0, query[0], query[1]]
    torch.testing.assert_close(query_output_after_changing(other_region), out, atol=0, rtol=0)
    assert (query_output_after_changing(same_region) - out).abs().max() > 1e-3
    # without the mask the wrapped token leaks in: the two share a window, and the mask is what separates them
    block.attn_mask = None
    with torch.no_grad():
        out_unmasked = block(x)[0, query[0], query[1]]
    assert (query_output_after_changing(other_region) - out_unmasked).abs().max() > 1e-3


def test_shifted_window_mask_only_touches_windows_on_the_seams():
    mask = shifted_window_mask(resolution=8, window_size=4, shift_size=2)  # (4 windows, 16, 16)
    assert mask.shape == (4, 16, 16)
    assert not mask[0].any()  # the top-left window holds one contiguous region
    # windows on the right and bottom seams hold two regions of 8 tokens, the corner window four of 4
    for window, regions in ((1, 2), (2, 2), (3, 4)):
        allowed = (~mask[window]).sum(dim=1)
        assert allowed.tolist() == [16 // regions] * 16
    assert torch.equal(mask, mask.transpose(1, 2))


@pytest.mark.parametrize("window_size", [2, 4, 7])
def test_relative_position_index_is_the_papers(window_size):
    M = window_size
    index = relative_position_index(M)
    coords = list(itertools.product(range(M), range(M)))  # (y, x) of each token, row-major
    # Liu et al. 2021, section 3.2: offsets in [-M + 1, M - 1] per axis read a (2M - 1) x (2M - 1) table
    expected = torch.tensor(
        [[(yi - yj + M - 1) * (2 * M - 1) + (xi - xj + M - 1) for (yj, xj) in coords] for (yi, xi) in coords]
    )
    assert torch.equal(index, expected)
    assert set(index.flatten().tolist()) == set(range((2 * M - 1) ** 2))  # every table entry is used
    center = (M - 1) * (2 * M - 1) + (M - 1)
    assert (index.diagonal() == center).all()


def test_relative_position_bias_depends_only_on_the_offset():
    torch.manual_seed(0)
    attn = WindowAttention(dim=8, num_heads=2, window_size=3)
    assert attn.relative_position_bias_table.shape == (25, 2)
    bias = attn.relative_position_bias()  # (heads, 9, 9)
    coords = list(itertools.product(range(3), range(3)))
    for i, j in itertools.product(range(9), repeat=2):
        (yi, xi), (yj, xj) = coords[i], coords[j]
        table_row = (yi - yj + 2) * 5 + (xi - xj + 2)
        torch.testing.assert_close(bias[:, i, j], attn.relative_position_bias_table[table_row])


def test_swin_clips_windows_to_small_maps_and_shifts_only_inside_larger_ones():
    model = create_model("swin_nano_patch2_window4_32")
    assert model.min_input_size == 32
    blocks = [[(b.window_size, b.shift_size) for b in stage.blocks] for stage in model.stages]
    assert blocks == [[(4, 0), (4, 2)], [(4, 0), (4, 2)], [(4, 0), (4, 0)]]  # 16x16, 8x8, then one 4x4 window
    small_28 = create_model("swin_nano_patch2_window7_28")
    blocks_28 = [[(b.window_size, b.shift_size) for b in stage.blocks] for stage in small_28.stages]
    assert blocks_28 == [[(7, 0), (7, 3)], [(7, 0)] * 6]  # 14x14, then one 7x7 window
    with pytest.raises(ValueError, match="takes 32x32 inputs"):
        model(torch.randn(1, 3, 28, 28))


# --- shared layers and learning --------------------------------------------------------------------------------------


def test_drop_path_drops_whole_examples_and_keeps_the_expectation():
    torch.manual_seed(0)
    layer = DropPath(0.25)
    x = torch.ones(4000, 3, 2)
    out = layer(x)
    per_example = out.flatten(1)
    assert ((per_example == 0).all(1) | (per_example == 1 / 0.75).all(1)).all()
    assert abs(out.mean().item() - 1.0) < 0.05
    assert torch.equal(layer.eval()(x), x)


@pytest.mark.parametrize("name", ["vit_nano_patch4_28", "swin_nano_patch2_window4_32"])
def test_overfits_a_tiny_batch(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=1)
    size = model.min_input_size
    x, y = torch.randn(8, 1, size, size), torch.randint(0, 10, (8,))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 20
