"""The DDPM UNet (paperzoo.generative.models.unet): parameter counts, the time embedding, attention placement, and
parity with diffusers' UNet2DModel of the same configuration (its weights loaded into ours)."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import UNet2DModel
from diffusers.models.embeddings import get_timestep_embedding

from paperzoo.core.errors import ConfigError
from paperzoo.generative.models.unet import (
    SMALL_KWARGS,
    AttentionBlock,
    DDPMUNet,
    ResidualBlock,
    SinusoidalTimeEmbedding,
    convert_diffusers_unet_state_dict,
    ddpm_unet_256,
    ddpm_unet_cifar10,
)
from paperzoo.generative.registry import create_model

# A tiny version of the paper's layout: three resolutions (16, 8, 4), attention at 8x8 only (the "16x16 of 32x32").
TINY = dict(
    image_size=16,
    in_channels=3,
    base_channels=16,
    channel_mult=(1, 2, 2),
    num_res_blocks=2,
    attention_resolutions=(8,),
    num_groups=8,
)


def diffusers_unet(dropout: float = 0.0, num_class_embeds: int | None = None) -> UNet2DModel:
    """diffusers' UNet2DModel configured as Ho et al.'s network (TINY's sizes)."""
    return UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32, 32),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=None,  # one head of all channels
        norm_num_groups=8,
        norm_eps=1e-6,
        downsample_padding=0,  # TensorFlow "SAME" padding of the strided convolution
        flip_sin_to_cos=False,  # [sin, cos], as Ho et al.
        freq_shift=1,  # frequencies 10000^(-i / (d/2 - 1))
        dropout=dropout,
        num_class_embeds=num_class_embeds,
    )


def loaded_pair(dropout: float = 0.0, num_classes: int | None = None) -> tuple[UNet2DModel, DDPMUNet]:
    torch.manual_seed(0)
    reference = diffusers_unet(dropout, None if num_classes is None else num_classes + 1)
    ours = DDPMUNet(**TINY, dropout=dropout, num_classes=num_classes)
    ours.load_state_dict(convert_diffusers_unet_state_dict(reference.state_dict()))  # strict: every name maps
    return reference, ours


def randomize(model: DDPMUNet) -> DDPMUNet:
    """Perturb every weight, so the layers that start at zero pass on their inputs."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def test_parameter_counts_are_the_papers():
    """35.7M for CIFAR-10 and 114M for the 256x256 models (Ho et al. 2020, appendix B)."""
    with torch.device("meta"):
        cifar = sum(p.numel() for p in ddpm_unet_cifar10().parameters())
        large = sum(p.numel() for p in ddpm_unet_256().parameters())
        reference = UNet2DModel(
            sample_size=32,
            block_out_channels=(128, 256, 256, 256),
            down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=None,
        )
        reference_count = sum(p.numel() for p in reference.parameters())
    assert round(cifar / 1e6, 1) == 35.7
    assert cifar == reference_count
    assert round(large / 1e6) == 114


def test_sinusoid_values():
    """[sin(t w_i), cos(t w_i)] with w_i = 10000^(-i / (d/2 - 1)), by hand and as diffusers computes it."""
    t = torch.tensor([0, 1, 17, 999])
    embedding = SinusoidalTimeEmbedding(8)(t)
    frequencies = [10000 ** (-i / 3) for i in range(4)]
    expected = torch.tensor(
        [[math.sin(s * w) for w in frequencies] + [math.cos(s * w) for w in frequencies] for s in t.tolist()]
    )
    torch.testing.assert_close(embedding, expected, atol=1e-4, rtol=0)  # float32 of t * w up to 999
    reference = get_timestep_embedding(t, 8, flip_sin_to_cos=False, downscale_freq_shift=1)
    torch.testing.assert_close(embedding, reference, atol=1e-5, rtol=0)
    assert SinusoidalTimeEmbedding(7)(t)[:, -1].abs().max() == 0  # odd width: a zero last entry
    assert SinusoidalTimeEmbedding(8)(t.double(), torch.float64).dtype == torch.float64


@pytest.mark.parametrize("num_classes", [None, 4])
def test_shapes_and_time_inputs(num_classes):
    model = DDPMUNet(**TINY, out_channels=6, num_classes=num_classes).eval()
    randomize(model)
    x = torch.randn(2, 3, 16, 16)
    labels = None if num_classes is None else torch.tensor([0, 3])
    out = model(x, torch.tensor([5, 5]), labels)
    assert out.shape == (2, 6, 16, 16)
    torch.testing.assert_close(model(x, 5, labels), out)  # a scalar time is broadcast
    torch.testing.assert_close(model(x, torch.tensor(5.0), labels), out)  # and may be real
    assert not torch.allclose(model(x, torch.tensor([6, 6]), labels), out)


def test_initial_output_is_zero_and_blocks_start_as_identity():
    """conv2 of every residual block, proj_out of every attention and conv_out start at zero (Ho et al.'s code)."""
    model = DDPMUNet(**TINY).eval()
    x = torch.randn(2, 3, 16, 16)
    assert model(x, torch.tensor([1, 2])).abs().max() == 0
    block = AttentionBlock(16, num_groups=8)
    h = torch.randn(2, 16, 4, 4)
    torch.testing.assert_close(block(h), h)
    residual = ResidualBlock(16, 16, 32, num_groups=8)
    torch.testing.assert_close(residual(h, torch.randn(2, 32)), h)


def test_attention_only_at_the_configured_resolution():
    model = DDPMUNet(**TINY).eval()
    assert [len(level.attentions) for level in model.down] == [0, 2, 0]  # one per residual block at 8x8
    assert [len(level.attentions) for level in model.up] == [0, 3, 0]  # up path: deepest level first
    seen = []
    for module in model.modules():
        if isinstance(module, AttentionBlock):
            module.register_forward_hook(lambda m, inputs, output: seen.append(inputs[0].shape[-1]))
    model(torch.randn(1, 3, 16, 16), torch.tensor([3]))
    assert sorted(seen) == [4] + [8] * 5  # the middle block's attention at 4x4, the rest at 8x8
    with pytest.raises(ConfigError, match="attention_resolutions"):
        DDPMUNet(**{**TINY, "attention_resolutions": (32,)})
    with pytest.raises(ConfigError, match="num_groups"):
        DDPMUNet(**{**TINY, "num_groups": 32})


def test_labels_and_the_null_label():
    conditional = randomize(DDPMUNet(**TINY, num_classes=3).eval())
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([9, 9])
    null = torch.full((2,), conditional.null_label)
    assert conditional.null_label == 3
    torch.testing.assert_close(conditional(x, t), conditional(x, t, null))  # no labels = the null label
    assert not torch.allclose(conditional(x, t, torch.tensor([0, 1])), conditional(x, t, null))
    with pytest.raises(ValueError, match="unconditional"):
        DDPMUNet(**TINY)(x, t, torch.tensor([0, 1]))


@pytest.mark.parametrize("num_classes", [None, 5])
def test_matches_diffusers_unet2dmodel_in_eval_mode(num_classes):
    """diffusers' UNet2DModel with our configuration, its weights loaded into ours: the same noise prediction."""
    reference, ours = loaded_pair(dropout=0.1, num_classes=num_classes)
    reference.eval(), ours.eval()
    x, t = torch.randn(3, 3, 16, 16), torch.tensor([0, 500, 999])
    labels = None if num_classes is None else torch.tensor([0, 3, num_classes])
    with torch.no_grad():
        expected = reference(x, t, labels).sample
        assert expected.abs().max() > 0.1
        assert relative_difference(ours(x, t, labels), expected) < 1e-5  # float32


def test_matches_diffusers_unet2dmodel_gradients_in_train_mode():
    """Train mode with dropout 0 (train and eval differ only in dropout; its masks cannot be matched, because diffusers'
    activations after an attention block have channels-last strides and a mask is drawn in memory order): the same
    output and the same gradient for every parameter."""
    reference, ours = loaded_pair(dropout=0.0)
    x, t = torch.randn(3, 3, 16, 16), torch.tensor([1, 250, 998])
    expected, actual = reference(x, t).sample, ours(x, t)
    assert relative_difference(actual, expected) < 1e-5
    expected.square().sum().backward()
    actual.square().sum().backward()
    reference_grads = convert_diffusers_unet_state_dict({n: p.grad for n, p in reference.named_parameters()})
    for name, parameter in ours.named_parameters():
        assert relative_difference(parameter.grad, reference_grads[name]) < 1e-4, name


def test_dropout_acts_in_train_mode_only():
    _, ours = loaded_pair(dropout=0.5)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([3, 4])
    evaluation = ours.eval()(x, t)
    torch.testing.assert_close(ours(x, t), evaluation)
    assert not torch.allclose(ours.train()(x, t), evaluation)


@pytest.mark.parametrize("name", sorted(SMALL_KWARGS))
def test_registered_small_models_train(name):
    model = create_model(name, **SMALL_KWARGS[name])
    model(*model.example_inputs()).sum().backward()  # the output starts at zero: sum, not a square, has gradients
    assert model.conv_out.weight.grad.abs().sum() > 0
