"""Tests for StyleGAN2 (Karras et al. 2020): each mechanism against the paper's definition, on tiny sizes.

paperzoo.generative.layers.stylegan2, paperzoo.generative.models.stylegan2, paperzoo.generative.modules.stylegan2.
"""

import math
import statistics

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.errors import ConfigError
from paperzoo.generative.layers.stylegan2 import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    ModulatedConv2d,
    NoiseInjection,
    StyledConv,
    ToRGB,
    blur2d,
    downsample2d,
    fir_kernel,
    upsample2d,
)
from paperzoo.generative.models.stylegan2 import (
    SMALL_KWARGS,
    MappingNetwork,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    stylegan2_discriminator,
    stylegan2_generator,
)
from paperzoo.generative.modules.stylegan2 import StyleGAN2Module, path_lengths, r1_penalty
from paperzoo.generative.registry import create_model

TINY = dict(z_dim=16, w_dim=16, mapping_layers=2, channel_base=64, channel_max=16)


def tiny_generator(resolution: int = 8, **kwargs) -> StyleGAN2Generator:
    return stylegan2_generator(resolution=resolution, **{**TINY, **kwargs})


def tiny_discriminator(resolution: int = 8, **kwargs) -> StyleGAN2Discriminator:
    return stylegan2_discriminator(resolution=resolution, channel_base=64, channel_max=16, **kwargs)


def styled_layers(generator: StyleGAN2Generator) -> list:
    """Every modulated layer (StyledConv and ToRGB) of the synthesis network."""
    return [m for m in generator.synthesis.modules() if isinstance(m, StyledConv | ToRGB)]


# --- equalised learning rate ------------------------------------------------------------------------------------------


def test_equalized_linear_stores_unit_weights_and_scales_at_run_time():
    torch.manual_seed(0)
    layer = EqualizedLinear(256, 128, bias_init=0.5)
    assert abs(layer.weight.std().item() - 1.0) < 0.02  # stored N(0, 1), not N(0, 1/fan_in)
    slow = EqualizedLinear(256, 128, lr_multiplier=0.01)
    assert abs(slow.weight.std().item() - 100.0) < 2.0  # stored N(0, 1/lambda^2): effective init is the same
    x = torch.randn(4, 256)
    gain = 1 / math.sqrt(256)
    torch.testing.assert_close(layer(x), x @ (layer.weight * gain).t() + 0.5)
    torch.testing.assert_close(slow(x), x @ (slow.weight * 0.01 * gain).t())
    # the scale is applied in forward: doubling the stored weight doubles the weight's contribution
    before = layer(x) - 0.5
    with torch.no_grad():
        layer.weight.mul_(2)
    torch.testing.assert_close(layer(x) - 0.5, 2 * before)
    # and the gradient with respect to the stored weight carries the scale: dL/dW = c * dL/dW_eff
    slow(x).sum().backward()
    expected = (0.01 * gain) * x.sum(dim=0).expand(128, 256)
    torch.testing.assert_close(slow.weight.grad, expected)
    torch.testing.assert_close(slow.bias.grad, torch.full((128,), 4 * 0.01))


def test_equalized_linear_lrelu_has_gain_sqrt2():
    torch.manual_seed(0)
    layer = EqualizedLinear(8, 8, activation="lrelu")
    x = torch.randn(3, 8)
    pre = x @ (layer.weight / math.sqrt(8)).t()
    torch.testing.assert_close(layer(x), torch.where(pre > 0, pre, 0.2 * pre) * math.sqrt(2))
    with pytest.raises(ConfigError):
        EqualizedLinear(8, 8, activation="relu")


def test_equalized_conv_scales_at_run_time():
    torch.manual_seed(0)
    conv = EqualizedConv2d(32, 16, 3)
    assert abs(conv.weight.std().item() - 1.0) < 0.03
    x = torch.randn(2, 32, 6, 6)
    gain = 1 / math.sqrt(32 * 9)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * gain, conv.bias, padding=1))
    conv(x).sum().backward()
    weight = (conv.weight * gain).detach().requires_grad_(True)
    F.conv2d(x, weight, padding=1).sum().backward()
    torch.testing.assert_close(conv.weight.grad, gain * weight.grad)


def test_equalized_conv_down_is_conv_then_fir_downsample_inside():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    k = fir_kernel()
    conv = EqualizedConv2d(4, 5, 3, bias=False, down=2)
    reference = downsample2d(F.conv2d(x, conv.weight * conv.weight_gain, padding=1), k)
    out = conv(x)
    assert out.shape == (2, 5, 4, 4)
    # the two orders differ only where zero padding enters (one pixel of border at the output)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1])
    skip = EqualizedConv2d(4, 5, 1, bias=False, down=2)
    torch.testing.assert_close(skip(x), F.conv2d(downsample2d(x, k), skip.weight * skip.weight_gain))


# --- modulation and demodulation --------------------------------------------------------------------------------------


def naive_modulated_conv(x, weight, styles, demodulate, eps=1e-8):
    """Eq. 1-3 of the paper, one sample at a time: w' = s_i w_ijk, w'' = w' / sqrt(sum_ik w'^2 + eps)."""
    outputs = []
    for b in range(x.shape[0]):
        w = weight * styles[b].view(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + eps).sqrt()
        outputs.append(F.conv2d(x[b : b + 1], w, padding=weight.shape[-1] // 2))
    return torch.cat(outputs)


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_grouped_equals_per_sample_loop_and_input_scaling(demodulate):
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 3, demodulate=demodulate, fused=True)
    x, styles = torch.randn(3, 6, 7, 7), torch.randn(3, 6)
    weight = conv.weight * conv.weight_gain
    grouped = conv(x, styles)
    torch.testing.assert_close(grouped, naive_modulated_conv(x, weight, styles, demodulate))
    conv.fused = False
    torch.testing.assert_close(conv(x, styles), grouped)
    if not demodulate:
        # modulation is the convolution of the input scaled per input channel
        torch.testing.assert_close(grouped, F.conv2d(x * styles[:, :, None, None], weight, padding=1))


def test_modulated_conv_up_equals_upsample_then_conv_inside():
    torch.manual_seed(0)
    x, styles = torch.randn(2, 4, 6, 6), torch.randn(2, 4)
    conv = ModulatedConv2d(4, 5, 3, demodulate=True, up=2, fused=True)
    out = conv(x, styles)
    assert out.shape == (2, 5, 12, 12)
    conv.fused = False
    torch.testing.assert_close(conv(x, styles), out)
    reference = naive_modulated_conv(upsample2d(x, fir_kernel()), conv.weight * conv.weight_gain, styles, True)
    # equal where the zero padding of the two orders does not enter
    torch.testing.assert_close(out[..., 2:-2, 2:-2], reference[..., 2:-2, 2:-2])


def test_demodulation_restores_unit_variance_of_iid_inputs():
    torch.manual_seed(0)
    x = torch.randn(8, 64, 16, 16)
    styles = 3 * torch.rand(8, 64) + 0.1  # far from 1: without demodulation the variance would not be 1
    inside = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    with torch.no_grad():
        demodulated = ModulatedConv2d(64, 32, 3, demodulate=True, fused=False)(x, styles)[inside]
        plain = ModulatedConv2d(64, 32, 3, demodulate=False, fused=False)(x, styles)[inside]
    per_channel = demodulated.var(dim=(0, 2, 3))
    assert abs(per_channel.mean().item() - 1.0) < 0.05
    assert ((per_channel - 1).abs() < 0.2).all()
    assert plain.var().item() > 2.0


# --- noise, FIR filters, toRGB ----------------------------------------------------------------------------------------


def test_noise_strength_starts_at_zero_and_scales_per_channel():
    torch.manual_seed(0)
    layer = StyledConv(4, 3, w_dim=8, resolution=6, fused=False)
    assert (layer.noise.strength == 0).all()
    x, w = torch.randn(2, 4, 6, 6), torch.randn(2, 8)
    without = layer(x, w, noise_mode="none")
    torch.testing.assert_close(layer(x, w, noise_mode="random"), without)  # zero strength: noise has no effect
    with torch.no_grad():
        layer.noise.strength.copy_(torch.tensor([0.5, 1.0, 2.0]))
    assert not torch.allclose(layer(x, w, noise_mode="random"), layer(x, w, noise_mode="random"))
    torch.testing.assert_close(layer(x, w, noise_mode="const"), layer(x, w, noise_mode="const"))
    injection = NoiseInjection(3, 6)
    with torch.no_grad():
        injection.strength.copy_(torch.tensor([0.5, 1.0, 2.0]))
    h = torch.randn(2, 3, 6, 6)
    expected = h + injection.noise_const * torch.tensor([0.5, 1.0, 2.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(injection(h, "const"), expected)


def test_fir_upsample_matches_hand_computation():
    # 1-D: zero insertion then [1, 3, 3, 1] / 8 * 2 with padding (2, 1): out = (3a, 3a + b, a + 3b, 3b) / 4
    up = torch.tensor([[3.0, 0.0], [3.0, 1.0], [1.0, 3.0], [0.0, 3.0]]) / 4
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    expected = up @ x @ up.t()  # separable filter
    out = upsample2d(torch.stack([x, -x]).unsqueeze(0), fir_kernel())  # two channels, filtered separately
    torch.testing.assert_close(out[0, 0], expected)
    torch.testing.assert_close(out[0, 1], -expected)
    torch.testing.assert_close(upsample2d(torch.ones(1, 1, 4, 4), fir_kernel())[0, 0, 1:-1, 1:-1], torch.ones(6, 6))


def test_fir_downsample_and_blur_match_hand_computation():
    # padding 1, [1, 3, 3, 1] / 8, stride 2: out = (3a + 3b + c, b + 3c + 3d) / 8
    down = torch.tensor([[3.0, 3.0, 1.0, 0.0], [0.0, 1.0, 3.0, 3.0]]) / 8
    x = torch.arange(16.0).view(4, 4)
    torch.testing.assert_close(downsample2d(x.view(1, 1, 4, 4), fir_kernel())[0, 0], down @ x @ down.t())
    delta = torch.zeros(1, 1, 5, 5)
    delta[0, 0, 2, 2] = 1.0
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    blurred = blur2d(delta, fir_kernel(), (2, 1))  # 5 + 2 + 1 - 4 + 1 = 5 pixels; output o sees inputs o-2..o+1
    expected = torch.zeros(5, 5)
    expected[1:5, 1:5] = torch.outer(taps, taps) / 64  # the delta at 2 reaches outputs 1..4
    torch.testing.assert_close(blurred[0, 0], expected)


def test_to_rgb_modulates_without_demodulation():
    torch.manual_seed(0)
    layer = ToRGB(4, 3, w_dim=8)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x, w = torch.randn(2, 4, 5, 5), torch.randn(2, 8)
    styles = layer.affine(w)
    weight = layer.conv.weight / math.sqrt(4)
    expected = F.conv2d(x * styles[:, :, None, None], weight) + layer.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(layer(x, w), expected)
    torch.testing.assert_close(
        layer(2 * x, w) - layer.bias.view(1, 3, 1, 1), 2 * (expected - layer.bias.view(1, 3, 1, 1))
    )


# --- minibatch standard deviation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [8, 6])
def test_minibatch_stddev_matches_hand_computation(batch):
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 2, 2)
    out = MinibatchStdDev(group_size=4, num_channels=1)(x)
    group = 4 if batch == 8 else 3  # 4 does not divide 6: the largest group size below it that does
    per_group = batch // group
    assert out.shape == (batch, 4, 2, 2)
    torch.testing.assert_close(out[:, :3], x)
    for n in range(batch):
        members = [n % per_group + j * per_group for j in range(group)]  # samples m, m + B/G, m + 2B/G, ...
        stds = [
            math.sqrt(statistics.pvariance([x[i, c, h, w].item() for i in members]) + 1e-8)
            for c in range(3)
            for h in range(2)
            for w in range(2)
        ]
        torch.testing.assert_close(out[n, 3], torch.full((2, 2), sum(stds) / len(stds)))


# --- the regularisers -------------------------------------------------------------------------------------------------


def test_r1_penalty_is_squared_gradient_norm_on_reals():
    torch.manual_seed(0)
    a = torch.randn(3, 4, 4, requires_grad=True)

    def discriminator(x):
        return (x * a).sum(dim=(1, 2, 3)) + x.square().sum(dim=(1, 2, 3))  # gradient: a + 2x

    reals = torch.randn(5, 3, 4, 4)
    penalty = r1_penalty(discriminator, reals)
    expected = (a + 2 * reals).square().sum(dim=(1, 2, 3))
    torch.testing.assert_close(penalty, expected)
    penalty.sum().backward()  # the penalty has a graph: d/da sum_b |a + 2x_b|^2 = sum_b 2 (a + 2x_b)
    torch.testing.assert_close(a.grad, 2 * (a + 2 * reals).sum(dim=0).detach())


def test_path_lengths_are_norms_of_jacobian_transpose_products():
    torch.manual_seed(0)
    ws = torch.randn(3, 4, 5, requires_grad=True)  # (B, num_ws, w_dim)
    maps = torch.randn(4, 5, 2 * 3 * 3)  # a linear "synthesis": images = sum_n ws[:, n] @ maps[n]
    images = torch.einsum("bnd,ndp->bp", ws, maps).view(3, 2, 3, 3)
    noise = torch.randn(3, 2, 3, 3)
    lengths = path_lengths(images, ws, noise)
    jty = torch.einsum("ndp,bp->bnd", maps, noise.view(3, -1))  # J_w^T y, per copy of w
    torch.testing.assert_close(lengths, jty.square().sum(dim=2).mean(dim=1).sqrt())


def test_path_length_penalty_keeps_a_running_mean_and_scales_the_noise():
    torch.manual_seed(0)
    module = StyleGAN2Module(tiny_generator(), tiny_discriminator(), style_mixing_prob=0.0, pl_decay=0.01)
    torch.manual_seed(1)
    penalty, lengths = module.path_length_penalty(4)
    first_mean = 0.01 * lengths.mean().item()
    assert module.pl_mean.item() == pytest.approx(first_mean, rel=1e-5)
    torch.testing.assert_close(penalty, (lengths - first_mean).square().mean())
    # the lengths are those of pl noise scaled by 1/sqrt(H*W): redo the draws by hand
    torch.manual_seed(1)
    images, ws = module.generate(4)
    noise = torch.randn_like(images) / math.sqrt(8 * 8)
    torch.testing.assert_close(lengths, path_lengths(images, ws, noise))
    penalty, lengths = module.path_length_penalty(4)
    second_mean = first_mean + 0.01 * (lengths.mean().item() - first_mean)
    assert module.pl_mean.item() == pytest.approx(second_mean, rel=1e-5)
    torch.testing.assert_close(penalty, (lengths - second_mean).square().mean())


# --- mapping, truncation, style mixing, skip generator ----------------------------------------------------------------


def test_mapping_normalises_z_and_uses_lr_multiplier():
    torch.manual_seed(0)
    mapping = MappingNetwork(z_dim=8, w_dim=8, num_ws=3, num_layers=2)
    z = torch.randn(4, 8)
    torch.testing.assert_close(mapping(z), mapping(5 * z))  # pixel norm: the scale of z is irrelevant
    assert all(layer.lr_multiplier == 0.01 for layer in mapping.layers)
    ws = mapping(z)
    assert ws.shape == (4, 3, 8) and torch.equal(ws[:, 0], ws[:, 2])


def test_truncation_psi_interpolates_towards_w_avg_and_w_avg_is_an_ema():
    torch.manual_seed(0)
    mapping = MappingNetwork(z_dim=8, w_dim=8, num_ws=4, num_layers=2, w_avg_beta=0.9)
    with torch.no_grad():
        mapping.w_avg.copy_(torch.randn(8))
    z = torch.randn(5, 8)
    ws = mapping(z)
    torch.testing.assert_close(mapping(z, truncation_psi=0.0), mapping.w_avg.expand(5, 4, 8))
    torch.testing.assert_close(mapping(z, truncation_psi=1.0), ws)
    torch.testing.assert_close(mapping(z, truncation_psi=0.5), (ws + mapping.w_avg) / 2)
    cut = mapping(z, truncation_psi=0.0, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], mapping.w_avg.expand(5, 2, 8))
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])
    old = mapping.w_avg.clone()
    ws = mapping(z, update_w_avg=True)
    torch.testing.assert_close(mapping.w_avg, 0.9 * old + 0.1 * ws[:, 0].mean(dim=0))


def record_styles(generator: StyleGAN2Generator) -> tuple[dict, list]:
    """Forward hooks that record the w each modulated layer's affine receives, keyed by the layer's w_index."""
    seen: dict[int, list[torch.Tensor]] = {}
    handles = []
    for layer in styled_layers(generator):

        def hook(module, inputs, output, index=layer.w_index):
            seen.setdefault(index, []).append(inputs[0].detach().clone())

        handles.append(layer.affine.register_forward_hook(hook))
    return seen, handles


def test_style_mixing_feeds_the_second_w_after_the_crossover_layer():
    torch.manual_seed(0)
    generator = tiny_generator(resolution=16)
    assert generator.num_ws == 6  # 2 * log2(16) - 2
    assert sorted({layer.w_index for layer in styled_layers(generator)}) == list(range(6))
    ws1, ws2 = generator.mapping(torch.randn(2, 16)), generator.mapping(torch.randn(2, 16))
    seen, handles = record_styles(generator)
    generator.synthesis(generator.mix_styles(ws1, ws2, crossover=3))
    for handle in handles:
        handle.remove()
    for index, inputs in seen.items():
        for w in inputs:
            torch.testing.assert_close(w, (ws1 if index < 3 else ws2)[:, index])


@pytest.mark.parametrize("probability", [1.0, 0.0])
def test_module_style_mixing_switches_w_once(probability):
    torch.manual_seed(0)
    module = StyleGAN2Module(tiny_generator(resolution=16), tiny_discriminator(16), style_mixing_prob=probability)
    seen, handles = record_styles(module.generator)
    crossovers = set()
    for _ in range(6):
        seen.clear()
        module.generate(2)
        rows = [seen[i][0] for i in range(module.generator.num_ws)]
        changes = [i for i in range(1, len(rows)) if not torch.equal(rows[i], rows[i - 1])]
        assert len(changes) == (1 if probability else 0)
        crossovers.update(changes)
    for handle in handles:
        handle.remove()
    assert crossovers <= set(range(1, module.generator.num_ws))
    if probability:
        assert len(crossovers) > 1  # the crossover is drawn, not fixed


def test_skip_generator_sums_upsampled_rgb_of_every_resolution():
    torch.manual_seed(0)
    generator = tiny_generator(resolution=16)
    rgbs = []
    handles = [
        block.to_rgb.register_forward_hook(lambda module, inputs, output: rgbs.append(output))
        for block in generator.synthesis.blocks
    ]
    images = generator(torch.randn(2, 16), noise_mode="const")
    for handle in handles:
        handle.remove()
    assert [rgb.shape[-1] for rgb in rgbs] == [4, 8, 16]
    k = fir_kernel()
    expected = upsample2d(upsample2d(rgbs[0], k) + rgbs[1], k) + rgbs[2]
    torch.testing.assert_close(images, expected)


def test_generator_and_discriminator_shapes_widths_and_conditioning():
    generator = create_model("stylegan2_generator", **SMALL_KWARGS["stylegan2_generator"])
    assert generator(*generator.example_inputs(3)).shape == (3, 3, 8, 8)
    # config F widths: min(32768 / r, 512)
    widths = [b.conv1.conv.out_channels for b in stylegan2_generator(resolution=256, z_dim=8, w_dim=8).synthesis.blocks]
    assert widths == [512, 512, 512, 512, 512, 256, 128]
    conditional = tiny_generator(num_classes=3)
    z, labels = conditional.example_inputs(4)
    out = conditional(z, labels, noise_mode="const")
    assert not torch.allclose(out, conditional(z, (labels + 1) % 3, noise_mode="const"))
    discriminator = tiny_discriminator(num_classes=3)
    images, labels = discriminator.example_inputs(4)
    logits = discriminator(images, labels)
    assert logits.shape == (4,) and not torch.allclose(logits, discriminator(images, (labels + 1) % 3))
    with pytest.raises(ConfigError, match="power of two"):
        stylegan2_generator(resolution=24)


# --- the training module ----------------------------------------------------------------------------------------------


def test_ema_update_has_the_half_life_of_ema_kimg():
    torch.manual_seed(0)
    module = StyleGAN2Module(tiny_generator(), tiny_discriminator(), ema_kimg=10.0)
    with torch.no_grad():
        for p in module.generator.parameters():
            p.normal_()
        module.generator.mapping.w_avg.normal_()
    before = [p.clone() for p in module.generator_ema.parameters()]
    beta = module.update_ema(batch_size=4)
    assert beta == pytest.approx(0.5 ** (4 / 10_000))
    for old, new, p in zip(before, module.generator_ema.parameters(), module.generator.parameters(), strict=True):
        torch.testing.assert_close(new, p + beta * (old - p))
    torch.testing.assert_close(module.generator_ema.mapping.w_avg, module.generator.mapping.w_avg)
    ramped = StyleGAN2Module(tiny_generator(), tiny_discriminator(), ema_kimg=10.0, ema_rampup=0.05)
    ramped.images_seen.fill_(1000)
    assert ramped.update_ema(batch_size=4) == pytest.approx(0.5 ** (4 / 50))  # min(10 000, 0.05 * 1000) images


def test_lazy_regularization_corrects_adam_lr_and_betas():
    module = StyleGAN2Module(tiny_generator(), tiny_discriminator())
    generator_optimizer, discriminator_optimizer = module.configure_optimizers()
    g, d = generator_optimizer.param_groups[0], discriminator_optimizer.param_groups[0]
    assert g["lr"] == pytest.approx(0.002 * 4 / 5) and d["lr"] == pytest.approx(0.002 * 16 / 17)
    assert g["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5))) and d["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert g["eps"] == 1e-8
    plain = StyleGAN2Module(tiny_generator(), tiny_discriminator(), lazy_regularization=False)
    assert plain.configure_optimizers()[1].param_groups[0]["betas"] == (0.0, 0.99)


def discriminator_loss(module: StyleGAN2Module, reals: torch.Tensor, fakes: torch.Tensor) -> float:
    with torch.no_grad():
        return (F.softplus(module.discriminator(fakes)).mean() + F.softplus(-module.discriminator(reals)).mean()).item()


def test_trainer_run_trains_both_networks_and_samples():
    torch.manual_seed(0)
    module = StyleGAN2Module(tiny_generator(), tiny_discriminator(), r1_interval=2, pl_interval=2, ema_rampup=0.05)
    reals = torch.tanh(torch.randn(16, 3, 8, 8) + torch.linspace(-2, 2, 8))  # a left-to-right ramp plus noise
    loader = DataLoader(TensorDataset(reals, torch.zeros(16, dtype=torch.long)), batch_size=4)
    fixed_fakes = module.sample(8, generator=torch.Generator().manual_seed(0))
    loss_before = discriminator_loss(module, reals, fixed_fakes)
    generator_before = [p.clone() for p in module.generator.parameters()]
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(module, loader, loader)
    assert int(module.iteration) == 8 and int(module.images_seen) == 32
    # per batch: G and D steps, plus a path-length step and an R1 step every other batch
    assert trainer.global_step == 8 * 2 + 4 + 4
    loss_after = discriminator_loss(module, reals, fixed_fakes)
    assert math.isfinite(loss_after) and abs(loss_after - loss_before) > 1e-3
    assert any(not torch.equal(a, b) for a, b in zip(generator_before, module.generator.parameters(), strict=True))
    assert module.pl_mean.item() > 0 and module.generator.mapping.w_avg.abs().sum() > 0
    metrics = trainer.callback_metrics
    for name in ("train/loss_g", "train/loss_d", "train/r1_penalty", "train/pl_penalty", "val/loss_d"):
        assert torch.isfinite(metrics[name]), name
    samples = module.sample(5, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (5, 3, 8, 8) and samples.min() >= -1 and samples.max() <= 1
    torch.testing.assert_close(samples, module.sample(5, generator=torch.Generator().manual_seed(1)))
    sheets = module.preview(10)
    assert sheets["samples"].shape == sheets["truncated"].shape == (10, 3, 8, 8)
    mixing, nrow = sheets["style_mixing"]
    assert mixing.shape == (9, 3, 8, 8) and nrow == 3  # (k + 1)^2 with k = 2, k + 1 a row
    torch.testing.assert_close(sheets["samples"], module.preview(10)["samples"])  # fixed latents


def test_sample_uses_the_ema_generator_and_truncation():
    torch.manual_seed(0)
    module = StyleGAN2Module(tiny_generator(), tiny_discriminator())
    with torch.no_grad():
        for p in module.generator.parameters():
            p.add_(1.0)  # the training generator moves; the EMA one has not been updated
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(2))
    expected = module.generator_ema(z, noise_mode="const").clamp(-1, 1)
    torch.testing.assert_close(module.sample(3, generator=torch.Generator().manual_seed(2)), expected)
    mean_image = module.sample(3, truncation_psi=0.0)
    torch.testing.assert_close(mean_image, mean_image[:1].expand(3, -1, -1, -1))  # psi = 0: every sample is w_avg's


def test_style_mixing_sheet_takes_coarse_styles_from_rows_and_fine_from_columns():
    torch.manual_seed(0)
    module = StyleGAN2Module(tiny_generator(resolution=16), tiny_discriminator(16), preview_mixing_crossover=2)
    images, nrow = module.preview(16)["style_mixing"]
    assert nrow == 4 and images.shape == (16, 3, 16, 16)  # k = 3: a blank, 3 columns; 3 rows of a source and 3 cells
    g = module.generator_ema
    ws = g.mapping(torch.randn(16, 16, generator=torch.Generator().manual_seed(0)))
    columns, rows = ws[:3], ws[3:6]
    torch.testing.assert_close(images[1:4], g.synthesis(columns, noise_mode="const").clamp(-1, 1))
    torch.testing.assert_close(images[4::4], g.synthesis(rows, noise_mode="const").clamp(-1, 1))
    for i in range(3):
        for j in range(3):
            mixed = torch.cat([rows[i, :2], columns[j, 2:]]).unsqueeze(0)
            expected = g.synthesis(mixed, noise_mode="const").clamp(-1, 1)[0]
            torch.testing.assert_close(images[4 * (i + 1) + j + 1], expected)
