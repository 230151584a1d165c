"""Autoencoders and VAEs: shapes, the losses against hand computation, the IWAE bound, and short training runs."""

import math
from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.errors import ConfigError
from paperzoo.generative.losses import (
    bits_per_dim,
    diagonal_gaussian_log_density,
    gaussian_kl,
    importance_weighted_bound,
    kl_sparsity_penalty,
    l1_sparsity_penalty,
    log_importance_weights,
    log_mean_exp,
    standard_normal_log_density,
    to_unit_interval,
)
from paperzoo.generative.models.autoencoder import ConvAutoencoder, MLPAutoencoder
from paperzoo.generative.models.vae import MLPVAE, ConvVAE
from paperzoo.generative.modules.autoencoder import AutoencoderModule, VAEModule


def _patterns(num_images: int = 64, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Four random binary 8x8 prototypes, repeated: images in {-1, 1}, labels 0..3."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.bernoulli(torch.full((4, 1, size, size), 0.5), generator=g) * 2 - 1
    labels = torch.arange(num_images) % 4
    return prototypes[labels], labels


def _fit(module: L.LightningModule, images: torch.Tensor, labels: torch.Tensor, steps: int, val: bool = False):
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True)
    trainer = L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        limit_val_batches=1 if val else 0,
        num_sanity_val_steps=0,
    )
    val_loader = DataLoader(TensorDataset(images[:16], labels[:16]), batch_size=16) if val else None
    trainer.fit(module, loader, val_loader)
    return trainer


def _adam(lr: float):
    return lambda params: torch.optim.Adam(params, lr=lr)


# ----------------------------------------------------------------------------------------------- autoencoders


@pytest.mark.parametrize("tied", [True, False])
def test_mlp_autoencoder_shapes_over_and_under_complete(tied):
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    over = MLPAutoencoder(image_size=8, code_dim=100, tied_weights=tied)  # 100 > 64 inputs
    logits, code = over(x)
    assert logits.shape == (3, 1, 8, 8) and code.shape == (3, 100)
    assert ((code > 0) & (code < 1)).all()  # sigmoid codes
    under = MLPAutoencoder(image_size=8, hidden_dims=(32,), code_dim=4, activation="relu", tied_weights=tied)
    logits, code = under(x)
    assert logits.shape == (3, 1, 8, 8) and code.shape == (3, 4)


def test_tied_weights_decode_with_the_transposed_encoder_weight():
    torch.manual_seed(0)
    model = MLPAutoencoder(image_size=4, code_dim=20, tied_weights=True)
    untied = MLPAutoencoder(image_size=4, code_dim=20, tied_weights=False)
    assert sum(p.numel() for p in model.parameters()) == 16 * 20 + 20 + 16
    assert sum(p.numel() for p in untied.parameters()) == 2 * 16 * 20 + 20 + 16
    x = torch.rand(2, 1, 4, 4) * 2 - 1
    weight, bias = model.encoder_layers[0].weight, model.encoder_layers[0].bias
    with torch.no_grad():
        model.decoder_biases[0].normal_()
    code = torch.sigmoid(x.flatten(1) @ weight.t() + bias)
    expected = code @ weight + model.decoder_biases[0]
    logits, got_code = model(x)
    torch.testing.assert_close(got_code, code)
    torch.testing.assert_close(logits.flatten(1), expected)


def test_conv_autoencoder_shapes_and_size_check():
    model = ConvAutoencoder(in_channels=3, image_size=16, channels=(4, 8), code_dim=6)
    logits, code = model(torch.rand(2, 3, 16, 16))
    assert logits.shape == (2, 3, 16, 16) and code.shape == (2, 6)
    with pytest.raises(ConfigError, match="divisible"):
        ConvAutoencoder(image_size=10, channels=(4, 8))


def test_sparsity_penalties_match_the_formulas():
    activations = torch.tensor([[0.2, 0.5], [0.4, 0.7]])  # unit means 0.3 and 0.6
    rho = 0.1
    expected = sum(rho * math.log(rho / m) + (1 - rho) * math.log((1 - rho) / (1 - m)) for m in (0.3, 0.6))
    assert kl_sparsity_penalty(activations, rho).item() == pytest.approx(expected, rel=1e-5)
    assert kl_sparsity_penalty(torch.full((5, 3), rho), rho).item() == pytest.approx(0.0, abs=1e-6)
    # the penalty pushes a unit whose mean is above the target down
    activations.requires_grad_(True)
    kl_sparsity_penalty(activations, rho).backward()
    assert (activations.grad > 0).all()
    assert l1_sparsity_penalty(torch.tensor([[1.0, -2.0], [0.0, 3.0]])).item() == pytest.approx(3.0)
    with pytest.raises(ConfigError):
        kl_sparsity_penalty(activations, 1.5)


def test_corruption_masks_the_requested_fraction_and_adds_gaussian_noise():
    x01 = torch.ones(200, 1, 8, 8)
    masking = AutoencoderModule(MLPAutoencoder(image_size=8, code_dim=4), corruption="mask", corruption_level=0.3)
    g = torch.Generator().manual_seed(0)
    masked = masking.corrupt(x01, g)
    assert set(masked.unique().tolist()) == {0.0, 1.0}
    assert (masked == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    noisy = AutoencoderModule(MLPAutoencoder(image_size=8, code_dim=4), corruption="gaussian", corruption_level=0.2)
    assert (noisy.corrupt(x01, g) - x01).std().item() == pytest.approx(0.2, abs=0.01)
    with pytest.raises(ConfigError, match="sigmoid"):
        AutoencoderModule(MLPAutoencoder(image_size=8, code_dim=4, code_activation="relu"), sparsity="kl")


def test_denoising_loss_reconstructs_the_clean_input(monkeypatch):
    torch.manual_seed(0)
    module = AutoencoderModule(MLPAutoencoder(image_size=8, code_dim=80), corruption="mask", corruption_level=0.5)
    monkeypatch.setattr(module, "log", lambda *a, **k: None)
    x, y = _patterns(4)
    torch.manual_seed(1)
    loss = module.training_step((x, y), 0)
    torch.manual_seed(1)
    target = to_unit_interval(x)
    logits, _ = module.network(module.corrupt(target) * 2 - 1)
    expected = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(x)
    torch.testing.assert_close(loss, expected)
    corrupted_target = (module.corrupt(target) * 2 - 1 + 1) / 2
    assert not torch.allclose(loss, F.binary_cross_entropy_with_logits(logits, corrupted_target, reduction="sum") / 4)


@pytest.mark.parametrize(
    "network, kwargs",
    [
        (lambda: MLPAutoencoder(image_size=8, hidden_dims=(32,), code_dim=8, activation="relu"), dict(loss="bce")),
        (lambda: ConvAutoencoder(image_size=8, channels=(4, 8), code_dim=8), dict(loss="mse")),
        (
            lambda: MLPAutoencoder(image_size=8, code_dim=100),
            dict(loss="mse", sparsity="kl", sparsity_weight=0.3, sparsity_target=0.05),
        ),
        (lambda: MLPAutoencoder(image_size=8, code_dim=100), dict(corruption="mask", corruption_level=0.25)),
    ],
    ids=["mlp-bce", "conv-mse", "sparse-kl", "denoising"],
)
def test_autoencoder_module_loss_falls(network, kwargs):
    torch.manual_seed(0)
    x, y = _patterns()
    module = AutoencoderModule(network(), optimizer=_adam(1e-2), **kwargs)
    target = to_unit_interval(x)

    def clean_mse():
        with torch.no_grad():
            return (torch.sigmoid(module.network(x)[0]) - target).pow(2).mean().item()

    before = clean_mse()
    code_before = module.network(x)[1].mean().item()
    trainer = _fit(module, x, y, steps=60, val=True)
    assert clean_mse() < 0.3 * before
    assert {"val/loss", "val/mse"} <= trainer.callback_metrics.keys()
    if kwargs.get("sparsity") == "kl":  # the mean code activation moves from about 0.5 towards rho
        assert module.network(x)[1].mean().item() < 0.5 * code_before
    sheets = module.preview(6)
    assert sheets["inputs"].shape == sheets["reconstructions"].shape == (6, 1, 8, 8)
    assert sheets["reconstructions"].min() >= -1 and sheets["reconstructions"].max() <= 1
    assert ("corrupted" in sheets) == ("corruption" in kwargs)


# ----------------------------------------------------------------------------------------------- VAE


@pytest.mark.parametrize(
    "network",
    [
        lambda c: MLPVAE(in_channels=3, image_size=8, hidden_dims=(16,), latent_dim=5, num_classes=c),
        lambda c: ConvVAE(in_channels=3, image_size=8, channels=(4, 8), latent_dim=5, num_classes=c),
    ],
    ids=["mlp", "conv"],
)
@pytest.mark.parametrize("num_classes", [0, 4])
def test_vae_shapes_and_conditioning(network, num_classes):
    torch.manual_seed(0)
    model = network(num_classes)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    labels = torch.tensor([0, 3]) if num_classes else None
    decoded, mu, logvar, z = model(x, labels)
    assert decoded.shape == (2, 3, 8, 8) and mu.shape == logvar.shape == z.shape == (2, 5)
    if num_classes:
        other = torch.tensor([1, 2])
        assert not torch.allclose(model.decode(z, labels), model.decode(z, other))  # the label reaches the decoder
        assert not torch.allclose(model.encode(x, labels)[0], model.encode(x, other)[0])  # and the encoder
        with pytest.raises(ConfigError, match="labels"):
            model(x)


def _tiny_fixed_vae(likelihood: str) -> MLPVAE:
    """A 2x2-pixel VAE whose encoder and decoder ignore their inputs: mu = 0.5, logvar = log 0.25, and fixed decoder
    outputs, so the ELBO is deterministic."""
    model = MLPVAE(image_size=2, hidden_dims=(), latent_dim=1, likelihood=likelihood, obs_std=0.5)
    encoder, decoder = model.encoder[0], model.decoder[0][0]
    with torch.no_grad():
        encoder.weight.zero_()
        encoder.bias.copy_(torch.tensor([0.5, math.log(0.25)]))
        decoder.weight.zero_()
        outputs = [0.0, math.log(3), -math.log(3), 2.0] if likelihood == "bernoulli" else [0.9, 0.2, 0.6, 0.5]
        decoder.bias.copy_(torch.tensor(outputs))
    return model


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_equals_the_hand_computed_value(monkeypatch, likelihood):
    x = torch.tensor([1.0, -1.0, 1.0, -1.0]).view(1, 1, 2, 2)  # pixels 1, 0, 1, 0 in [0, 1]
    kl = 0.5 * (0.5**2 + 0.25 - 1 - math.log(0.25))
    if likelihood == "bernoulli":  # p = sigmoid(logit): 0.5, 0.75, 0.25, sigmoid(2)
        log_px = math.log(0.5) + math.log(0.25) + math.log(0.25) - math.log(1 + math.exp(2))
    else:  # N(t; m, 0.5^2) with means 0.9, 0.2, 0.6, 0.5
        log_px = sum(
            -0.5 * ((t - m) / 0.5) ** 2 - math.log(0.5) - 0.5 * math.log(2 * math.pi)
            for t, m in zip((1, 0, 1, 0), (0.9, 0.2, 0.6, 0.5), strict=True)
        )
    logged = {}
    for beta in (1.0, 4.0):
        module = VAEModule(_tiny_fixed_vae(likelihood), beta=beta, iwae_samples=0)
        monkeypatch.setattr(
            module, "log", lambda name, value, **k: logged.__setitem__(name, float(torch.as_tensor(value).detach()))
        )
        loss = module.training_step((x, torch.zeros(1, dtype=torch.long)), 0)
        assert loss.item() == pytest.approx(-log_px + beta * kl, rel=1e-5)
        module.validation_step((x, torch.zeros(1, dtype=torch.long)), 0)
        assert logged["val/elbo"] == pytest.approx(log_px - kl, rel=1e-5)
        assert logged["val/kl"] == pytest.approx(kl, rel=1e-5)


def test_reparameterisation_passes_gradients_to_mu_and_logvar():
    torch.manual_seed(0)
    mu = torch.randn(3, 4, requires_grad=True)
    logvar = torch.randn(3, 4, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    z = MLPVAE.reparameterize(mu, logvar, g)
    z.sum().backward()
    eps = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps)
    torch.testing.assert_close(mu.grad, torch.ones(3, 4))
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar) * eps)
    # through a whole VAE: the reconstruction term alone trains both halves of the encoder's output layer
    model = MLPVAE(image_size=4, hidden_dims=(8,), latent_dim=2)
    x = torch.rand(5, 1, 4, 4) * 2 - 1
    decoded, *_ = model(x)
    (-model.log_likelihood(decoded, to_unit_interval(x)).mean()).backward()
    grad = model.encoder[-1].weight.grad  # rows: 2 for mu, 2 for logvar
    assert grad[:2].abs().sum() > 0 and grad[2:].abs().sum() > 0


def test_kl_and_log_densities_agree_by_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(1, 3), torch.randn(1, 3)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 3)
    log_ratio = standard_normal_log_density(z) - diagonal_gaussian_log_density(z, mu, logvar)
    tolerance = 4 * log_ratio.std().item() / math.sqrt(len(z))
    assert log_ratio.mean().item() == pytest.approx(-gaussian_kl(mu, logvar).item(), abs=tolerance)


def _exact_log_px(model: MLPVAE, target: torch.Tensor) -> torch.Tensor:
    """log p(x) of a 1-d latent VAE by quadrature over z in [-12, 12]."""
    grid = torch.linspace(-12, 12, 24001, dtype=torch.float64)
    dz = (grid[1] - grid[0]).item()
    with torch.no_grad():
        decoded = model.decode(grid.float().unsqueeze(1))  # (Z, C, H, W)
        log_px_z = torch.stack([model.log_likelihood(decoded, t.expand_as(decoded)) for t in target])  # (B, Z)
    log_joint = log_px_z.double() + standard_normal_log_density(grid.unsqueeze(1))
    return torch.logsumexp(log_joint, dim=1) + math.log(dz)


def test_iwae_bound_is_the_elbo_at_k1_and_rises_with_k_towards_log_px():
    torch.manual_seed(0)
    model = MLPVAE(image_size=2, hidden_dims=(8,), latent_dim=1)
    with torch.no_grad():  # a sharper likelihood: posteriors narrower than q, so a clear gap and light-tailed weights
        for parameter in model.decoder.parameters():
            parameter.mul_(3)
    x = torch.tensor([[1.0, -1, 1, -1], [1, 1, -1, -1], [-1, -1, -1, 1]]).view(3, 1, 2, 2)
    target = to_unit_interval(x)
    # K = 1 with a shared seed: exactly the one-sample ELBO estimate log p(x|z) + log p(z) - log q(z|x)
    mu, logvar = model.encode(x)
    z = model.reparameterize(mu, logvar, torch.Generator().manual_seed(5))
    elbo_one_sample = (
        model.log_likelihood(model.decode(z), target)
        + standard_normal_log_density(z)
        - diagonal_gaussian_log_density(z, mu, logvar)
    )
    bound = importance_weighted_bound(model, x, target, 1, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(bound, elbo_one_sample)
    # many weights: L_K averaged over groups of K, each K from its own independent draws, rises with K (averaged
    # over the images too, as an image whose posterior q matches well has almost no gap)
    num = 30_000
    with torch.no_grad():
        log_w = log_importance_weights(
            model, x, target, num, chunk_size=5000, generator=torch.Generator().manual_seed(1)
        )
    parts = log_w.chunk(3)  # (10000, 3) each
    bounds = [log_mean_exp(part.view(-1, k, 3), dim=1).mean() for part, k in zip(parts, (1, 10, 100), strict=True)]
    assert bounds[0] < bounds[1] - 0.01 and bounds[1] < bounds[2]
    # L_1 averages to the ELBO, below log p(x); with all the weights the estimate reaches log p(x) within five
    # standard errors (delta method: relative std of the weights / sqrt(N))
    exact = _exact_log_px(model, target).float()
    assert exact.mean() - bounds[0] > 0.05
    weights = torch.exp(log_w - log_w.max(dim=0).values)
    standard_error = weights.std(dim=0) / weights.mean(dim=0) / math.sqrt(num)
    assert ((log_mean_exp(log_w, dim=0) - exact).abs() < 5 * standard_error).all()


def test_bits_per_dim():
    assert bits_per_dim(64 * math.log(2), 64) == pytest.approx(1.0)
    assert bits_per_dim(torch.tensor(784 * 2 * math.log(2)), 784).item() == pytest.approx(2.0)


def test_the_network_must_fit_the_data():
    data = SimpleNamespace(channels=1, resolution=32, num_classes=10)
    module = VAEModule(MLPVAE(image_size=28, num_classes=10))
    module.trainer = SimpleNamespace(datamodule=data)
    with pytest.raises(ConfigError, match="image_size=28 but the data has resolution=32"):
        module.setup("fit")
    module = VAEModule(MLPVAE(image_size=32, num_classes=4))
    module.trainer = SimpleNamespace(datamodule=data)
    with pytest.raises(ConfigError, match="num_classes=4 but the data has num_classes=10"):
        module.setup("fit")
    module = AutoencoderModule(MLPAutoencoder(image_size=32))  # an autoencoder ignores the classes
    module.trainer = SimpleNamespace(datamodule=data)
    module.setup("fit")


def test_kl_warmup_ramps_beta(monkeypatch):
    module = VAEModule(MLPVAE(image_size=2, hidden_dims=(), latent_dim=1), beta=2.0, kl_warmup_steps=100)
    for step, expected in ((0, 0.0), (50, 1.0), (100, 2.0), (500, 2.0)):
        monkeypatch.setattr(VAEModule, "global_step", property(lambda self, s=step: s))
        assert module.current_beta() == pytest.approx(expected)


@pytest.mark.parametrize("num_classes", [0, 4])
def test_vae_module_trains_samples_and_previews(num_classes):
    torch.manual_seed(0)
    x, y = _patterns()
    network = MLPVAE(image_size=8, hidden_dims=(32,), latent_dim=4, num_classes=num_classes)
    module = VAEModule(network, iwae_samples=50, iwae_num_images=16, interpolation_steps=4, optimizer=_adam(1e-2))
    labels = y if num_classes else None

    def neg_elbo():
        with torch.no_grad():
            log_px, kl = module.elbo_terms(x, to_unit_interval(x), labels, torch.Generator().manual_seed(0))
            return (kl - log_px).mean().item()

    before = neg_elbo()
    trainer = _fit(module, x, y, steps=80, val=True)
    assert neg_elbo() < 0.5 * before
    metrics = trainer.callback_metrics
    # on the same 16 images, the 50-sample bound is above the ELBO (up to sampling noise) and bpd is its rescaling
    assert metrics["val/nll_iw"] < -metrics["val/elbo"] + 0.5
    assert metrics["val/bpd_iw"].item() == pytest.approx(metrics["val/nll_iw"].item() / (64 * math.log(2)), rel=1e-5)

    samples = module.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 8, 8) and samples.min() >= -1 and samples.max() <= 1
    again = module.sample(5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(samples, again)
    sheets = module.preview(8, generator=torch.Generator().manual_seed(0))
    interpolations, per_row = sheets["interpolations"]
    assert interpolations.shape == (2 * 4, 1, 8, 8) and per_row == 4
    assert sheets["reconstructions"].shape == sheets["inputs"].shape == (8, 1, 8, 8)
    # interpolation rows start and end at the reconstructions of the pair
    torch.testing.assert_close(interpolations[0], sheets["reconstructions"][0])
    end = module.reconstruct(sheets["inputs"][1:2], y[:1] if num_classes else None)  # decoded with x_a's label
    torch.testing.assert_close(interpolations[3], end[0])
    if num_classes:
        by_class, per_row = sheets["samples_by_class"]
        assert by_class.shape == (4 * 2, 1, 8, 8) and per_row == 2
        fixed = module.sample(4, generator=torch.Generator().manual_seed(1), labels=torch.tensor([0, 1, 2, 3]))
        assert fixed.shape == (4, 1, 8, 8)
        # each class decodes to its own prototype: the conditioning was learnt
        prototypes = x[:4]
        z = torch.zeros(4, 4)
        decoded = module.decode_to_images(z, torch.arange(4))
        assert ((decoded - prototypes).abs().mean(dim=(1, 2, 3)) < 0.5).all()
