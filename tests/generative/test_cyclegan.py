"""CycleGAN: the ResNet generator keeps the image shape, the PatchGAN sees exactly 70x70 pixels, the history
buffer's semantics, the losses and the learning-rate decay, translation sheets, and a short run that learns."""

import functools

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.errors import ConfigError
from paperzoo.generative.models.cyclegan import (
    PatchGANDiscriminator,
    ResidualBlock,
    ResnetGenerator,
    cyclegan_resnet_generator,
    patchgan_discriminator,
)
from paperzoo.generative.modules.cyclegan import CycleGANModule, ImageHistoryBuffer, LinearDecay

# ------------------------------------------------------------------------------------------------------------ models


@pytest.mark.parametrize("size", [8, 16, 32])
@pytest.mark.parametrize("channels", [(3, 3), (1, 3)])
def test_resnet_generator_keeps_the_input_shape(size, channels):
    generator = ResnetGenerator(in_channels=channels[0], out_channels=channels[1], base_channels=4, num_blocks=2)
    x = torch.rand(2, channels[0], size, size) * 2 - 1
    y = generator(x)
    assert y.shape == (2, channels[1], size, size)
    assert y.abs().max() < 1  # tanh


def test_resnet_generator_paper_layout():
    generator = cyclegan_resnet_generator()
    convs = [m for m in generator.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    # c7s1-64, d128, d256, R256 x 9 (two convolutions each), u128, u64, c7s1-3
    kinds = [(type(m).__name__, m.kernel_size[0], m.stride[0], m.out_channels) for m in convs]
    assert kinds[:3] == [("Conv2d", 7, 1, 64), ("Conv2d", 3, 2, 128), ("Conv2d", 3, 2, 256)]
    assert kinds[3:21] == [("Conv2d", 3, 1, 256)] * 18
    assert kinds[21:] == [("ConvTranspose2d", 3, 2, 128), ("ConvTranspose2d", 3, 2, 64), ("Conv2d", 7, 1, 3)]
    assert sum(isinstance(m, ResidualBlock) for m in generator.modules()) == 9
    assert sum(isinstance(m, ResidualBlock) for m in cyclegan_resnet_generator(num_blocks=6).modules()) == 6
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in generator.modules()) == 3 + 18 + 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in generator.modules())
    # reflection padding, never zero padding, around every stride-1 convolution
    assert all(m.padding == (0, 0) for m in convs if m.stride == (1, 1))
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in generator.modules()) == 2 + 18


def test_parameter_counts_match_the_authors_code():
    """The authors' CycleGAN code prints 11.378 M parameters for the 9-block generator and 2.765 M for the 70x70
    PatchGAN; it gives a bias to the convolutions that instance norm follows, which the norm cancels and ours drop."""

    def count_with_cancelled_biases(network):
        count = sum(p.numel() for p in network.parameters())
        return count + sum(
            m.out_channels
            for m in network.modules()
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d) and m.bias is None
        )

    assert round(count_with_cancelled_biases(cyclegan_resnet_generator()) / 1e6, 3) == 11.378
    assert round(count_with_cancelled_biases(patchgan_discriminator()) / 1e6, 3) == 2.765


def test_residual_block_adds_its_input():
    torch.manual_seed(0)
    block = ResidualBlock(4)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(block(x), x + block.body(x))


def test_patchgan_paper_layout_and_output_shape():
    discriminator = patchgan_discriminator()
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.stride[0]) for m in convs] == [(64, 2), (128, 2), (256, 2), (512, 1), (1, 1)]
    assert all(m.kernel_size == (4, 4) for m in convs)
    layers = list(discriminator.net)
    assert isinstance(layers[1], nn.LeakyReLU)  # no norm on C64
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in discriminator.modules()) == 3
    assert discriminator.receptive_field == 70
    small = PatchGANDiscriminator(base_channels=2)
    assert small(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)  # the 30x30 map of pix2pix at 256x256


@pytest.mark.parametrize(("num_layers", "field"), [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field_from_the_gradient(num_layers, field):
    """One output value depends on exactly a ``field`` x ``field`` window of the input.

    Instance norm's statistics span the whole image, so the window is measured on the same network without it.
    """
    torch.manual_seed(0)
    discriminator = PatchGANDiscriminator(base_channels=2, num_layers=num_layers, norm="none").double()
    assert discriminator.receptive_field == field
    x = torch.randn(1, 3, 96, 96, dtype=torch.float64, requires_grad=True)
    out = discriminator(x)  # (1, 1, H', W')
    i, j = out.shape[2] // 2, out.shape[3] // 2
    (grad,) = torch.autograd.grad(out[0, 0, i, j], x)
    reached = grad[0].abs().sum(0) != 0  # (96, 96)
    rows, cols = reached.any(1).nonzero().flatten(), reached.any(0).nonzero().flatten()
    assert rows[-1] - rows[0] + 1 == field and cols[-1] - cols[0] + 1 == field
    assert min(rows[0], cols[0]) > 0 and max(rows[-1], cols[-1]) < 95  # inside: not cut by the padding
    assert reached.sum() == field * field  # every pixel of the window, none outside


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="norm"):
        PatchGANDiscriminator(norm="group")
    with pytest.raises(ConfigError, match="num_blocks"):
        ResnetGenerator(num_blocks=-1)
    with pytest.raises(ConfigError, match="capacity"):
        ImageHistoryBuffer(-1)


# ------------------------------------------------------------------------------------------------------------ history


def _constant_images(values) -> torch.Tensor:
    """One 1x2x2 image per value, filled with it, so an image is identified by its value."""
    return torch.tensor(values, dtype=torch.float32)[:, None, None, None].expand(-1, 1, 2, 2).clone()


def _ids(images: torch.Tensor) -> list[float]:
    return images[:, 0, 0, 0].tolist()


def test_history_returns_the_current_images_until_full():
    history = ImageHistoryBuffer(5, generator=torch.Generator().manual_seed(0))
    first = _constant_images([0, 1, 2])
    assert _ids(history.query(first)) == [0, 1, 2] and len(history) == 3
    assert _ids(history.query(_constant_images([3, 4]))) == [3, 4] and len(history) == 5
    assert sorted(_ids(torch.stack(history.images))) == [0, 1, 2, 3, 4]


def test_history_mixes_in_older_images_once_full():
    history = ImageHistoryBuffer(10, generator=torch.Generator().manual_seed(0))
    history.query(_constant_images(range(10)))
    stored = set(range(10))
    old = 0
    for start in range(10, 1010, 8):
        ids = list(range(start, start + 8))
        returned = _ids(history.query(_constant_images(ids)))
        for new, out in zip(ids, returned, strict=True):
            if out != new:  # swapped: a stored, older image comes back and the new one takes its place
                assert out in stored and out < new
                stored = (stored - {out}) | {new}
                old += 1
        assert len(history) == 10  # the size bound
        assert set(_ids(torch.stack(history.images))) == stored
    assert 0.45 < old / 1000 < 0.55  # each image swapped with probability 1/2


def test_history_of_zero_passes_images_through():
    images = torch.randn(4, 3, 2, 2)
    assert torch.equal(ImageHistoryBuffer(0).query(images), images)


# ------------------------------------------------------------------------------------------------------------ losses


class _Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * x


def _module(generator_ab=None, generator_ba=None, **kwargs) -> CycleGANModule:
    def gen():
        return ResnetGenerator(base_channels=8, num_blocks=1)

    def dis():
        return PatchGANDiscriminator(base_channels=8, num_layers=2)

    return CycleGANModule(generator_ab or gen(), generator_ba or gen(), dis(), dis(), **kwargs)


def test_cycle_and_identity_losses_vanish_for_identity_generators():
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    model = _module(nn.Identity(), nn.Identity())
    losses, fake_a, fake_b = model.generator_losses(a, b)
    assert losses["cycle_loss"] == 0 and losses["identity_loss"] == 0
    assert torch.equal(fake_a, b) and torch.equal(fake_b, a)
    # G halves and F triples: F(G(a)) = 1.5 a, G(F(b)) = 1.5 b, G(b) = b / 2, F(a) = 3 a
    model = _module(_Scale(0.5), _Scale(3.0))
    losses, _, _ = model.generator_losses(a, b)
    torch.testing.assert_close(losses["cycle_loss"], 0.5 * a.abs().mean() + 0.5 * b.abs().mean())
    torch.testing.assert_close(losses["identity_loss"], 0.5 * b.abs().mean() + 2.0 * a.abs().mean())
    gan = F.mse_loss(model.discriminator_b(0.5 * a), torch.ones(2, 1, 2, 2)) + F.mse_loss(
        model.discriminator_a(3 * b), torch.ones(2, 1, 2, 2)
    )
    torch.testing.assert_close(losses["gan_loss"], gan)
    torch.testing.assert_close(
        losses["g_loss"], gan + 10 * losses["cycle_loss"] + 5 * losses["identity_loss"], rtol=1e-5, atol=1e-5
    )


def test_least_squares_discriminator_loss():
    torch.manual_seed(0)
    discriminator = PatchGANDiscriminator(base_channels=4, num_layers=2)
    real, fake = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    expected = 0.5 * ((discriminator(real) - 1).pow(2).mean() + discriminator(fake).pow(2).mean())
    torch.testing.assert_close(CycleGANModule.discriminator_loss(discriminator, real, fake), expected)


def test_linear_decay_of_the_learning_rate():
    decay = LinearDecay(constant_epochs=100, decay_epochs=100)
    assert [decay(e) for e in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert decay(100) == pytest.approx(100 / 101)
    assert decay(150) == pytest.approx(50 / 101)
    assert decay(199) == pytest.approx(1 / 101)
    assert decay(200) == 0.0 and decay(300) == 0.0
    # strictly linear over the decay epochs
    steps = [decay(e) - decay(e + 1) for e in range(99, 199)]
    assert max(steps) == pytest.approx(min(steps))
    assert LinearDecay(5, 0)(1000) == 1.0


# ------------------------------------------------------------------------------------------------------------ training


def _unpaired(n: int = 16, size: int = 16) -> TensorDataset:
    """Domain A: horizontal ramps, domain B: vertical ramps, at random contrasts."""
    g = torch.Generator().manual_seed(1)
    ramp = torch.linspace(-1, 1, size)
    a = ramp[None, :].expand(n, 3, size, size) * (0.5 + 0.5 * torch.rand(n, 1, 1, 1, generator=g))
    b = ramp[:, None].expand(n, 3, size, size) * (0.5 + 0.5 * torch.rand(n, 1, 1, 1, generator=g))
    return TensorDataset(a.contiguous(), b.contiguous())


def _report(model: CycleGANModule, a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        losses, fake_a, fake_b = model.generator_losses(a, b)
        d_loss = model.discriminator_loss(model.discriminator_a, a, fake_a)
        d_loss = d_loss + model.discriminator_loss(model.discriminator_b, b, fake_b)
    return losses["cycle_loss"].item(), d_loss.item()


def test_cyclegan_learns_translates_and_decays_its_learning_rate():
    L.seed_everything(0, verbose=False)
    data = _unpaired()
    a, b = data.tensors
    adam = functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.999))
    model = _module(constant_epochs=1, decay_epochs=2, sample_pool_size=6, optimizer=adam, discriminator_optimizer=adam)
    with pytest.raises(RuntimeError, match="stored images"):
        model.sample(2)
    cycle_before, d_before = _report(model, a, b)
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    val = DataLoader(TensorDataset(b.flip(0), a.flip(0)), batch_size=4)  # two batches, A and B swapped to tell apart
    trainer.fit(model, DataLoader(data, batch_size=4, shuffle=True), val)
    cycle_after, d_after = _report(model, a, b)
    assert cycle_after < 0.75 * cycle_before
    assert d_after < 0.5 * d_before
    metrics = trainer.callback_metrics
    assert {"train/g_loss", "train/cycle_loss", "train/identity_loss", "train/d_a_loss", "val/cycle_loss"} <= set(
        metrics
    )
    # lr factor after two epoch ends: LinearDecay(1, 2)(2) = 1/3, for both optimisers
    for optimizer in model.optimizers():
        assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 / 3)

    # sample() translates the stored validation images of domain A (the first 6, across both batches)
    samples = model.sample(8)
    assert samples.shape == (8, 3, 16, 16) and samples.abs().max() <= 1
    pool_a = b.flip(0)[:6]
    with torch.no_grad():
        torch.testing.assert_close(samples[:6], model.translate_a_to_b(pool_a))
        torch.testing.assert_close(samples[6:], samples[:2])  # cycling through the pool
        sheets = {name: images for name, (images, nrow) in model.preview(3).items() if nrow == 3}
        assert sheets["a_to_b"].shape == sheets["b_to_a"].shape == (9, 3, 16, 16)
        row = sheets["a_to_b"][3:6]  # [a, G(a), F(G(a))] of the second stored image
        torch.testing.assert_close(row[0], pool_a[1])
        torch.testing.assert_close(row[1], model.translate_a_to_b(pool_a[1:2])[0])
        torch.testing.assert_close(row[2], model.translate_b_to_a(model.translate_a_to_b(pool_a[1:2]))[0])
        row = sheets["b_to_a"][:3]  # [b, F(b), G(F(b))]
        torch.testing.assert_close(row[0], a.flip(0)[0])
        torch.testing.assert_close(row[2], model.translate_a_to_b(model.translate_b_to_a(a.flip(0)[:1]))[0])
        # the sample metrics compare domain B's test images with the translations of domain A's
        real, fake = model.metric_images((pool_a[:2], a[:2]))
        torch.testing.assert_close(real, a[:2])
        torch.testing.assert_close(fake, model.translate_a_to_b(pool_a[:2]).clamp(-1, 1))


def test_a_checkpoint_tested_on_its_own_stores_test_images_for_its_sheets():
    # `paperzoo test --ckpt_path ...` runs no training or validation batch before the preview sheets are drawn
    L.seed_everything(0, verbose=False)
    a, b = _unpaired().tensors
    model = _module(sample_pool_size=5)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    tested = trainer.test(model, DataLoader(TensorDataset(a, b), batch_size=4), verbose=False)[0]
    assert {"test/cycle_loss", "test/identity_loss", "test/gan_loss"} <= set(tested)
    sheets = model.preview(5)
    assert sheets["a_to_b"][0].shape == (15, 3, 16, 16)
    torch.testing.assert_close(sheets["a_to_b"][0][::3], a[:5])  # the first 5 test images of domain A, across batches
