"""DCGAN networks and GANModule: shapes, the paper's initialisation, the WGAN Lipschitz constraints, the
critic/generator step ratio, previews, and a discriminator that learns."""

import functools

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.errors import ConfigError
from paperzoo.generative.models.dcgan import DCGANDiscriminator, DCGANGenerator, wgan_critic
from paperzoo.generative.modules.gan import GANModule, gradient_penalty

LATENT = 8


def _trainer(**kwargs) -> L.Trainer:
    defaults = dict(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    return L.Trainer(**{**defaults, **kwargs})


def _images(n: int = 32, size: int = 8) -> TensorDataset:
    """Saddle-shaped images in [-1, 1] at random contrasts: one structured mode a tiny GAN can tell from noise."""
    g = torch.Generator().manual_seed(1)
    ramp = torch.linspace(-1, 1, size)
    saddle = (ramp[None, :] * ramp[:, None]).expand(n, 3, size, size)  # (n, 3, S, S)
    images = saddle * (0.5 + 0.5 * torch.rand(n, 1, 1, 1, generator=g))
    return TensorDataset(images.contiguous(), torch.zeros(n, dtype=torch.long))


def _gan(size: int = 8, norm: str = "batch", num_classes: int = 0, **kwargs) -> GANModule:
    generator = DCGANGenerator(
        latent_dim=LATENT, image_size=size, out_channels=3, base_channels=8, num_classes=num_classes
    )
    discriminator = DCGANDiscriminator(
        image_size=size, in_channels=3, base_channels=8, norm=norm, num_classes=num_classes
    )
    return GANModule(generator, discriminator, num_preview=6, interpolation_rows=2, interpolation_steps=4, **kwargs)


# ------------------------------------------------------------------------------------------------------------ models


@pytest.mark.parametrize("size", [8, 16, 32, 64])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_dcgan_shapes_at_each_resolution(size, num_classes):
    generator = DCGANGenerator(
        latent_dim=LATENT, image_size=size, out_channels=1, base_channels=4, num_classes=num_classes
    )
    discriminator = DCGANDiscriminator(image_size=size, in_channels=1, base_channels=4, num_classes=num_classes)
    images = generator(*generator.example_inputs(3))
    assert images.shape == (3, 1, size, size)
    assert images.abs().max() < 1
    labels = generator.example_inputs(3)[1:]
    assert discriminator(images, *labels).shape == (3,)
    # one stride-2 layer per doubling above 4x4, in both networks
    doublings = size.bit_length() - 3
    strided = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    transposed = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2)]
    assert len(strided) == len(transposed) == doublings


@pytest.mark.parametrize("size", [4, 24, 48])
def test_dcgan_rejects_sizes_that_are_not_powers_of_two(size):
    with pytest.raises(ConfigError, match="power of two"):
        DCGANGenerator(image_size=size)
    with pytest.raises(ConfigError, match="power of two"):
        DCGANDiscriminator(image_size=size)


def test_dcgan_paper_architecture():
    generator = DCGANGenerator()  # Fig. 1: 100 -> 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3
    widths = [m.out_channels for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert widths == [1024, 512, 256, 128, 3]
    assert isinstance(generator.net[-1], nn.Tanh)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in generator.modules()) == 4  # all but the output layer
    discriminator = DCGANDiscriminator()
    layers = list(discriminator.net)
    # no batch norm on the first layer, LeakyReLU 0.2, no pooling and no fully connected layer
    assert isinstance(layers[0], nn.Conv2d) and isinstance(layers[1], nn.LeakyReLU)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules()) == 3
    assert all(m.negative_slope == 0.2 for m in discriminator.modules() if isinstance(m, nn.LeakyReLU))
    assert not any(isinstance(m, nn.Linear | nn.MaxPool2d | nn.AvgPool2d | nn.Sigmoid) for m in discriminator.modules())
    critic = wgan_critic(image_size=16, base_channels=4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())
    assert sum(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in critic.modules()) == 1


def test_dcgan_parameter_counts_match_the_reference_layout():
    """The PyTorch DCGAN example (ngf = ndf = 64, no biases) has 3,576,704 generator and 2,765,568 discriminator
    parameters; ours adds a bias to each layer that no batch norm follows (G's output, D's first and last)."""
    generator = DCGANGenerator(base_channels=64)
    discriminator = DCGANDiscriminator(base_channels=64)
    assert sum(p.numel() for p in generator.parameters()) == 3_576_704 + 3
    assert sum(p.numel() for p in discriminator.parameters()) == 2_765_568 + 64 + 1


def test_dcgan_initialisation_statistics():
    torch.manual_seed(0)
    generator = DCGANGenerator(latent_dim=100, image_size=32, base_channels=64)
    discriminator = DCGANDiscriminator(image_size=32, base_channels=64)
    for network in (generator, discriminator):
        for m in network.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d) and m.weight.numel() > 10_000:
                assert abs(m.weight.mean().item()) < 0.002
                assert m.weight.std().item() == pytest.approx(0.02, rel=0.05)
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d) and m.bias is not None:
                assert torch.count_nonzero(m.bias) == 0
            if isinstance(m, nn.BatchNorm2d):
                assert m.weight.mean().item() == pytest.approx(1.0, abs=0.01)
                assert m.weight.std().item() == pytest.approx(0.02, rel=0.3)


def test_conditional_generator_uses_its_labels():
    torch.manual_seed(0)
    generator = DCGANGenerator(latent_dim=LATENT, image_size=8, base_channels=4, num_classes=4).eval()
    discriminator = DCGANDiscriminator(image_size=8, base_channels=4, num_classes=4).eval()
    z = torch.randn(1, LATENT).expand(4, LATENT)
    images = generator(z, torch.arange(4))
    assert not torch.allclose(images[0], images[1])
    x = images[:1].expand(4, -1, -1, -1)
    scores = discriminator(x, torch.arange(4))
    assert not torch.allclose(scores[0], scores[1])


# ------------------------------------------------------------------------------------------------------------ losses


def test_gradient_penalty_of_a_linear_critic_is_the_squared_norm_gap():
    torch.manual_seed(0)
    linear = nn.Linear(3 * 4 * 4, 1)

    def critic(x):
        return linear(x.flatten(1)).flatten()

    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    penalty = gradient_penalty(critic, real, fake)
    # the gradient of w.x + b is w at every interpolate
    norm = linear.weight.norm()
    torch.testing.assert_close(penalty, (norm - 1) ** 2)
    (grad_w,) = torch.autograd.grad(penalty, linear.weight)
    torch.testing.assert_close(grad_w, 2 * (norm - 1) * linear.weight / norm)


def test_gradient_penalty_evaluates_at_random_interpolates():
    torch.manual_seed(0)
    real, fake = torch.randn(6, 2, 3, 3), torch.randn(6, 2, 3, 3)

    def critic(x):  # 0.5 ||x||^2: its gradient is the interpolate itself
        return 0.5 * x.flatten(1).pow(2).sum(1)

    penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    eps = torch.rand(6, 1, 1, 1, generator=torch.Generator().manual_seed(3))
    mixed = eps * real + (1 - eps) * fake
    expected = ((mixed.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(penalty, expected)
    assert not torch.allclose(penalty, ((real.flatten(1).norm(dim=1) - 1) ** 2).mean())


def test_bce_and_wasserstein_losses():
    real_out, fake_out = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    bce = _gan()
    expected_d = -(torch.sigmoid(real_out).log().mean() + (1 - torch.sigmoid(fake_out)).log().mean())
    torch.testing.assert_close(bce.discriminator_loss(real_out, fake_out), expected_d)
    torch.testing.assert_close(bce.generator_loss(fake_out), -torch.sigmoid(fake_out).log().mean())  # non-saturating
    wgan = _gan(loss="wasserstein", clip_value=0.01)
    torch.testing.assert_close(wgan.discriminator_loss(real_out, fake_out), fake_out.mean() - real_out.mean())
    torch.testing.assert_close(wgan.generator_loss(fake_out), -fake_out.mean())


def test_bad_configurations_are_refused():
    with pytest.raises(ConfigError, match="without batch norm"):
        _gan(size=16, loss="wasserstein", gp_weight=10.0)
    with pytest.raises(ConfigError, match="clip_value"):
        _gan(loss="wasserstein", clip_value=0.0)
    with pytest.raises(ConfigError, match="n_critic"):
        _gan(n_critic=0)
    with pytest.raises(ConfigError, match="loss"):
        _gan(loss="hinge")


# ------------------------------------------------------------------------------------------------------------ training


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_weight_clipping_bounds_every_critic_parameter():
    torch.manual_seed(0)
    rmsprop = functools.partial(torch.optim.RMSprop, lr=0.05)  # a large step that leaves [-c, c] unless clipped
    model = _gan(loss="wasserstein", clip_value=0.01, n_critic=5, optimizer=rmsprop, discriminator_optimizer=rmsprop)
    _trainer(max_epochs=1, limit_train_batches=2).fit(model, DataLoader(_images(), batch_size=8))
    params = torch.cat([p.detach().flatten() for p in model.discriminator.parameters()])
    assert params.abs().max().item() == pytest.approx(0.01)  # the bound is reached: clipping was needed
    assert (params.abs() <= 0.01).all()


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_n_critic_discriminator_steps_per_generator_step():
    torch.manual_seed(0)
    step_lr = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    model = _gan(loss="wasserstein", clip_value=0.01, n_critic=5, lr_scheduler=step_lr)
    # 3 epochs of 4 batches: the count runs across epochs, so epochs shorter than n_critic still train G
    trainer = _trainer(max_epochs=3, limit_train_batches=4)
    trainer.fit(model, DataLoader(_images(), batch_size=8))
    g_opt, d_opt = (opt.optimizer for opt in model.optimizers())
    g_steps = {int(state["step"]) for state in g_opt.state.values()}
    d_steps = {int(state["step"]) for state in d_opt.state.values()}
    assert (g_steps, d_steps) == ({2}, {12})
    assert trainer.global_step == 14
    # each schedule steps with its own optimiser
    assert g_opt.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5**2)
    assert d_opt.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5**12)
    # the count survives a checkpoint
    checkpoint = {}
    model.on_save_checkpoint(checkpoint)
    resumed = _gan(loss="wasserstein", clip_value=0.01, n_critic=5)
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.critic_steps == 12


def _discriminator_report(model: GANModule, images: torch.Tensor) -> tuple[float, float, float]:
    """Loss, mean accuracy on real and generated images, and critic gap, in eval mode on fixed samples."""
    model.eval()
    with torch.no_grad():
        fake = model.sample(len(images), generator=torch.Generator().manual_seed(5))
        real_out, fake_out = model.discriminate(images), model.discriminate(fake)
    model.train()
    accuracy = 0.5 * ((real_out > 0).float().mean() + (fake_out < 0).float().mean())
    loss = model.discriminator_loss(real_out, fake_out)
    return loss.item(), accuracy.item(), (real_out.mean() - fake_out.mean()).item()


def test_dcgan_discriminator_learns():
    L.seed_everything(0, verbose=False)
    data = _images()
    model = _gan()
    loss_before, acc_before, _ = _discriminator_report(model, data.tensors[0])
    trainer = _trainer(max_epochs=10)
    trainer.fit(model, DataLoader(data, batch_size=8, shuffle=True), DataLoader(data, batch_size=16))
    loss_after, acc_after, _ = _discriminator_report(model, data.tensors[0])
    assert acc_after >= 0.9 and acc_after > acc_before
    assert loss_after < loss_before - 0.01
    assert {"train/d_loss", "train/g_loss", "train/d_real_acc", "val/d_loss", "val/d_real_acc"} <= set(
        trainer.callback_metrics
    )


def test_wgan_gp_critic_learns_a_gap():
    L.seed_everything(0, verbose=False)
    data = _images()
    adam = functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.9))
    model = _gan(
        norm="layer", loss="wasserstein", gp_weight=10.0, n_critic=5, optimizer=adam, discriminator_optimizer=adam
    )
    _, _, gap_before = _discriminator_report(model, data.tensors[0])
    trainer = _trainer(max_epochs=10)
    trainer.fit(model, DataLoader(data, batch_size=8, shuffle=True), DataLoader(data, batch_size=16))
    _, _, gap_after = _discriminator_report(model, data.tensors[0])
    assert abs(gap_before) < 0.02 and gap_after > 0.1
    metrics = trainer.callback_metrics
    assert {"train/wasserstein", "train/gp", "train/g_loss", "val/wasserstein"} <= set(metrics)
    assert 0 < metrics["train/gp"] < 1  # the penalty has moved the critic's gradient norm off 0 towards 1


# ------------------------------------------------------------------------------------------------------------ sampling


@pytest.mark.parametrize("num_classes", [0, 3])
def test_sample_and_preview(num_classes):
    torch.manual_seed(0)
    model = _gan(size=16, num_classes=num_classes).eval()
    samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 3, 16, 16) and samples.abs().max() <= 1
    torch.testing.assert_close(samples, model.sample(5, generator=torch.Generator().manual_seed(0)))
    if num_classes:
        fixed = torch.zeros(5, dtype=torch.long)
        z = torch.randn(5, LATENT, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(model.sample(5, torch.Generator().manual_seed(0), labels=fixed), model(z, fixed))

    preview = model.preview(4)
    interpolation, nrow = preview["interpolation"]
    assert nrow == 4
    assert preview["samples"].shape == (4, 3, 16, 16)
    assert interpolation.shape == (2 * 4, 3, 16, 16)
    # the fixed latents: the same sheet every time, whatever the global RNG does
    torch.manual_seed(123)
    torch.testing.assert_close(model.preview(4)["samples"], preview["samples"])
    # each row runs from G(z_start) to G(z_end) of its pair of fixed latents
    labels = torch.zeros(2, dtype=torch.long) if num_classes else None
    ends = model(model.interpolation_z[0], labels)
    torch.testing.assert_close(interpolation[0], ends[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(interpolation[3], ends[1], atol=1e-5, rtol=1e-5)
    assert model.preview(8)["samples"].shape == (8, 3, 16, 16)  # beyond num_preview=6: two more are drawn


def test_fixed_latents_are_saved_with_the_module():
    first, second = _gan(preview_seed=0), _gan(preview_seed=1)
    assert not torch.equal(first.preview_z, second.preview_z)
    second.load_state_dict(first.state_dict())
    assert torch.equal(first.preview_z, second.preview_z)
    assert torch.equal(first.interpolation_z, second.interpolation_z)
