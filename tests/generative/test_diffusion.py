"""Diffusion (paperzoo.generative.diffusion and modules.diffusion): schedules and sampler steps equal to diffusers'
DDPMScheduler and DDIMScheduler step for step, classifier-free guidance, score matching on a known Gaussian, and the
Lightning modules training and sampling."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.errors import ConfigError
from paperzoo.generative.diffusion.ddim import ddim_sample, ddim_step
from paperzoo.generative.diffusion.ddpm import ddpm_sample, ddpm_step, q_sample
from paperzoo.generative.diffusion.guidance import classifier_free_guidance, drop_labels, guided_epsilon
from paperzoo.generative.diffusion.schedules import NoiseSchedule, cosine_betas, sampling_timesteps
from paperzoo.generative.diffusion.score import annealed_langevin_dynamics, dsm_loss, geometric_sigmas
from paperzoo.generative.models.unet import DDPMUNet
from paperzoo.generative.modules.diffusion import DiffusionModule, ScoreModule

DIFFUSERS_SCHEDULE = {"linear": "linear", "cosine": "squaredcos_cap_v2"}
# Step-for-step tolerance in float64: both sides evaluate the same closed forms from the same betas.
STEP_TOL = 1e-10


def float64_pair(scheduler_class, kind: str = "linear", **config):
    """A diffusers scheduler whose products are recomputed in float64 from its own (float32) betas, and our schedule
    from the same betas: both then compute in float64, so a step differs only by rounding."""
    scheduler = scheduler_class(beta_schedule=DIFFUSERS_SCHEDULE[kind], **config)
    betas = scheduler.betas.double()
    scheduler.betas = betas
    scheduler.alphas = 1 - betas
    scheduler.alphas_cumprod = torch.cumprod(scheduler.alphas, dim=0)
    scheduler.one = torch.tensor(1.0, dtype=torch.float64)
    scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return scheduler, NoiseSchedule.from_betas(betas)


def fake_epsilon(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A deterministic stand-in for the network that depends on the sample and the step, with outputs large enough
    that the predicted x0 leaves [-1, 1] early in the chain (so clipping matters)."""
    t = t.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
    return torch.tanh(1.5 * x + torch.sin(t / 37.0)) + 0.3 * torch.cos(3 * x)


# --- schedules --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedules_match_diffusers(kind):
    """Our float64 betas and alphas_cumprod against diffusers' float32 ones, within float32 rounding."""
    reference = DDPMScheduler(beta_schedule=DIFFUSERS_SCHEDULE[kind])
    ours = NoiseSchedule(kind)
    assert ours.betas.dtype == torch.float64 and ours.num_timesteps == 1000
    torch.testing.assert_close(ours.betas, reference.betas.double(), rtol=2e-7, atol=0)
    torch.testing.assert_close(ours.alphas_cumprod, reference.alphas_cumprod.double(), rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.alphas_cumprod, torch.cumprod(1 - ours.betas, 0), rtol=1e-12, atol=0)


def test_schedule_endpoints_are_the_papers():
    linear = NoiseSchedule("linear")
    assert linear.betas[0].item() == pytest.approx(1e-4) and linear.betas[-1].item() == pytest.approx(0.02)
    assert linear.alphas_cumprod[-1].item() == pytest.approx(4.0358e-5, rel=1e-3)  # x_T is almost pure noise
    cosine = cosine_betas(1000)
    assert cosine.max().item() == pytest.approx(0.999)  # the cap binds at the end
    t = torch.arange(1, 1001, dtype=torch.float64)
    f = torch.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
    f0 = math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    alpha_bar = NoiseSchedule("cosine").alphas_cumprod
    torch.testing.assert_close(alpha_bar[:-1], (f / f0)[:-1], rtol=1e-9, atol=0)  # Eq. 17, before the cap
    assert NoiseSchedule("linear").alpha_bar(-1) == 1.0


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_sampling_timesteps_match_diffusers(spacing):
    for num_steps in (1, 7, 10, 48, 50, 61, 100, 999, 1000):
        reference = DDIMScheduler(timestep_spacing=spacing)
        reference.set_timesteps(num_steps)
        ours = sampling_timesteps(1000, num_steps, spacing)
        assert len(ours) == num_steps and ours == sorted(ours, reverse=True)
        # diffusers' float arange gives one step too many (a step -1) for some trailing lengths, e.g. 61
        assert reference.timesteps.tolist()[:num_steps] == ours, num_steps
    assert sampling_timesteps(1000, None) == list(range(999, -1, -1))
    with pytest.raises(ConfigError):
        sampling_timesteps(1000, 1001)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_add_noise_matches_diffusers(kind):
    scheduler, schedule = float64_pair(DDPMScheduler, kind)
    x0 = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 1, 500, 998, 999])
    torch.testing.assert_close(q_sample(schedule, x0, t, noise), scheduler.add_noise(x0, noise, t), rtol=0, atol=1e-12)
    # float32 data with diffusers' own float32 schedule: 1 - alpha_bar near t = 0 carries float32's rounding of
    # alpha_bar (~6e-8 of ~3e-4), a 1e-4 relative difference in its square root
    reference = DDPMScheduler(beta_schedule=DIFFUSERS_SCHEDULE[kind])
    ours = q_sample(NoiseSchedule(kind), x0.float(), t, noise.float())
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, reference.add_noise(x0.float(), noise.float(), t), rtol=0, atol=1e-5)


# --- DDPM -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_steps, variance, clip",
    [
        (None, "fixed_small", True),  # the paper's sampler, all 1000 steps
        (None, "fixed_large", False),
        *[(50, variance, clip) for variance in ("fixed_small", "fixed_large") for clip in (True, False)],
    ],
)
def test_ddpm_sampler_matches_diffusers_step_for_step(num_steps, variance, clip):
    """The whole chain (1000 steps, or 50 of them) from the same x_T, with the same model and the same generator
    seed on both sides (so the same step noise): every x_{t-1} agrees."""
    scheduler, schedule = float64_pair(DDPMScheduler, variance_type=variance, clip_sample=clip)
    scheduler.set_timesteps(num_steps or 1000)
    x_T = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    expected, x, generator = [], x_T, torch.Generator().manual_seed(7)
    for t in scheduler.timesteps:
        x = scheduler.step(fake_epsilon(x, t.expand(2)), t, x, generator=generator).prev_sample
        expected.append(x)
    ours = []
    ddpm_sample(
        fake_epsilon,
        schedule,
        x_T,
        num_steps=num_steps,
        variance=variance,
        clip_denoised=clip,
        generator=torch.Generator().manual_seed(7),
        callback=lambda t_prev, x: ours.append(x),
    )
    assert len(ours) == len(expected) == (num_steps or 1000)
    for step, (a, b) in enumerate(zip(ours, expected, strict=True)):
        torch.testing.assert_close(a, b, rtol=0, atol=STEP_TOL, msg=f"step {step}")


def test_ddpm_step_with_given_noise_and_clipping_matters():
    scheduler, schedule = float64_pair(DDPMScheduler, clip_sample=True)
    x = 3 * torch.randn(4, 3, 4, 4, dtype=torch.float64)
    eps = -torch.randn_like(x)
    noise = torch.randn_like(x)
    t = 900
    expected = scheduler.step(eps, t, x, generator=torch.Generator().manual_seed(3))
    drawn = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    prev, x0 = ddpm_step(schedule, eps, t, x, noise=drawn)
    torch.testing.assert_close(prev, expected.prev_sample, rtol=0, atol=STEP_TOL)
    torch.testing.assert_close(x0, expected.pred_original_sample, rtol=0, atol=STEP_TOL)
    unclipped, _ = ddpm_step(schedule, eps, t, x, noise=noise, clip_denoised=False)
    clipped, _ = ddpm_step(schedule, eps, t, x, noise=noise, clip_denoised=True)
    assert (unclipped - clipped).abs().max() > 1e-3
    last, x0 = ddpm_step(schedule, eps, 0, x, noise=noise, clip_denoised=False)
    torch.testing.assert_close(last, x0)  # the last step returns the prediction of x0, without noise


# --- DDIM -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("clip", [False, True])
def test_ddim_sampler_matches_diffusers_step_for_step(eta, spacing, clip):
    """50 of 1000 steps from the same x_T, with the same model and generator seed: every x_{t'} agrees."""
    scheduler, schedule = float64_pair(DDIMScheduler, "cosine", timestep_spacing=spacing, clip_sample=clip)
    scheduler.set_timesteps(50)
    x_T = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    expected, x, generator = [], x_T, torch.Generator().manual_seed(11)
    for t in scheduler.timesteps:
        x = scheduler.step(fake_epsilon(x, t.expand(2)), t, x, eta=eta, generator=generator).prev_sample
        expected.append(x)
    ours = []
    result = ddim_sample(
        fake_epsilon,
        schedule,
        x_T,
        num_steps=50,
        spacing=spacing,
        eta=eta,
        clip_denoised=clip,
        generator=torch.Generator().manual_seed(11),
        callback=lambda t_prev, x: ours.append(x),
    )
    assert len(ours) == 50
    for step, (a, b) in enumerate(zip(ours, expected, strict=True)):
        torch.testing.assert_close(a, b, rtol=0, atol=STEP_TOL, msg=f"step {step}")
    torch.testing.assert_close(result, ours[-1])


def test_ddim_step_with_variance_noise_and_eta_one_is_ddpm():
    scheduler, schedule = float64_pair(DDIMScheduler, clip_sample=False)
    scheduler.set_timesteps(50)
    x = torch.randn(3, 3, 4, 4, dtype=torch.float64)
    eps, noise = torch.randn_like(x), torch.randn_like(x)
    expected = scheduler.step(eps, 500, x, eta=0.7, variance_noise=noise)
    prev, x0 = ddim_step(schedule, eps, 500, x, 480, eta=0.7, noise=noise)
    torch.testing.assert_close(prev, expected.prev_sample, rtol=0, atol=STEP_TOL)
    torch.testing.assert_close(x0, expected.pred_original_sample, rtol=0, atol=STEP_TOL)
    # eta = 1 is the ancestral step with the posterior variance (Song et al. 2021, section 4.1)
    ddim, _ = ddim_step(schedule, eps, 500, x, 480, eta=1.0, noise=noise)
    ddpm, _ = ddpm_step(schedule, eps, 500, x, 480, variance="fixed_small", clip_denoised=False, noise=noise)
    torch.testing.assert_close(ddim, ddpm, rtol=0, atol=1e-12)


# --- guidance ---------------------------------------------------------------------------------------------------------


def conditional_unet() -> DDPMUNet:
    torch.manual_seed(0)
    model = DDPMUNet(
        image_size=8, base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(4,),
        num_groups=4, num_classes=3,
    ).eval()  # fmt: skip
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))  # the zero-initialised layers too
    return model


def test_classifier_free_guidance():
    model = conditional_unet()
    x, t, labels = torch.randn(2, 3, 8, 8), torch.tensor([10, 900]), torch.tensor([0, 2])
    with torch.no_grad():
        conditional = model(x, t, labels)
        unconditional = model(x, t, torch.full_like(labels, model.null_label))
        torch.testing.assert_close(guided_epsilon(model, x, t, labels, 0.0, model.null_label), conditional)
        guided = guided_epsilon(model, x, t, labels, 2.0, model.null_label)
    # Ho & Salimans' (1 + w) c - w u is diffusers' u + s (c - u) with s = 1 + w
    torch.testing.assert_close(guided, unconditional + 3.0 * (conditional - unconditional), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(classifier_free_guidance(conditional, unconditional, 0.0), conditional)
    assert (guided - conditional).abs().max() > 1e-3


def test_drop_labels_rate():
    labels = torch.randint(0, 10, (20000,))
    dropped = drop_labels(labels, 0.1, 10, torch.Generator().manual_seed(0))
    nulls = dropped == 10
    assert abs(nulls.float().mean().item() - 0.1) < 0.01
    assert torch.equal(dropped[~nulls], labels[~nulls])
    assert drop_labels(labels, 0.0, 10) is labels


# --- score matching ---------------------------------------------------------------------------------------------------


def gaussian_score(mean: float, std: float, sigma: float):
    """The exact score of N(mean, std^2) blurred by N(0, sigma^2): -(x - mean) / (std^2 + sigma^2)."""
    return lambda x: -(x - mean) / (std**2 + sigma**2)


def test_dsm_loss_on_a_known_gaussian():
    """For data N(mu, s^2 I) the true score attains the loss's minimum, D/2 * s^2 / (s^2 + sigma^2) per sample, and
    scaling it by c != 1 costs more."""
    generator = torch.Generator().manual_seed(0)
    mean, std, dims, n = 0.5, 0.3, 4, 200_000
    for sigma in (0.1, 1.0):
        x = mean + std * torch.randn(n, dims, generator=generator, dtype=torch.float64)
        z = torch.randn(n, dims, generator=generator, dtype=torch.float64)
        score = gaussian_score(mean, std, sigma)(x + sigma * z)
        sigmas = torch.full((n,), sigma, dtype=torch.float64)
        loss = dsm_loss(score, z, sigmas).item()
        expected = 0.5 * dims * std**2 / (std**2 + sigma**2)
        assert loss == pytest.approx(expected, rel=0.01)
        assert dsm_loss(0.9 * score, z, sigmas).item() > loss and dsm_loss(1.1 * score, z, sigmas).item() > loss


def test_annealed_langevin_dynamics_samples_a_known_gaussian():
    """With the exact scores, Algorithm 1 ends at N(mu, s^2 + sigma_L^2), and the final denoising step at mean mu."""
    mean, std = 0.3, 0.5
    sigmas = geometric_sigmas(1.0, 0.01, 10)
    torch.testing.assert_close(sigmas[1:] / sigmas[:-1], torch.full((9,), 0.01 ** (1 / 9), dtype=torch.float64))

    def score_fn(x, level):
        return gaussian_score(mean, std, sigmas[level].item())(x)

    start = torch.rand(4000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    samples = annealed_langevin_dynamics(
        score_fn, start, sigmas, steps_per_sigma=100, step_lr=2e-4, denoise_final=False,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert samples.mean().item() == pytest.approx(mean, abs=0.02)
    assert samples.std().item() == pytest.approx(math.sqrt(std**2 + 0.01**2), rel=0.03)
    denoised = annealed_langevin_dynamics(score_fn, samples, sigmas[-1:], steps_per_sigma=1, step_lr=1e-12)
    assert denoised.std().item() < samples.std().item()


# --- the Lightning modules --------------------------------------------------------------------------------------------


def tiny_unet(**kwargs) -> DDPMUNet:
    config = dict(image_size=8, base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(4,))
    return DDPMUNet(**config, num_groups=4, dropout=0.0, **kwargs)


def tiny_images(n: int = 32, seed: int = 0) -> TensorDataset:
    """A learnable image distribution: two fixed patterns with a little noise, labelled 0 and 1, in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.rand(2, 3, 8, 8, generator=generator) * 1.6 - 0.8
    labels = torch.arange(n) % 2
    images = (patterns[labels] + 0.05 * torch.randn(n, 3, 8, 8, generator=generator)).clamp(-1, 1)
    return TensorDataset(images, labels)


def fit(module, steps: int, data: TensorDataset) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        limit_val_batches=1,
        num_sanity_val_steps=0,
    )
    loader = DataLoader(data, batch_size=16, shuffle=True)
    trainer.fit(module, loader, DataLoader(data, batch_size=16))
    return trainer


def epsilon_loss(module: DiffusionModule, data: TensorDataset) -> float:
    """The module's fixed-seed validation loss of the trained weights."""
    module.eval()
    images, labels = data.tensors
    generator = torch.Generator().manual_seed(123)
    t = torch.randint(0, 1000, (len(images),), generator=generator)
    noise = torch.randn(images.shape, generator=generator)
    with torch.no_grad():
        return module._loss(module.network, images, labels if module.conditional else None, t, noise).item()


def test_diffusion_module_learns_and_samples():
    torch.manual_seed(0)
    data = tiny_images()
    module = DiffusionModule(
        tiny_unet(), optimizer=lambda p: torch.optim.Adam(p, lr=2e-3), ema_decay=0.9, sample_steps=10
    )
    before = epsilon_loss(module, data)
    module.train()
    trainer = fit(module, 40, data)
    after = epsilon_loss(module, data)
    assert after < 0.6 * before, (before, after)
    assert "val/loss" in trainer.callback_metrics and "val/loss_online" in trainer.callback_metrics
    # the moving average moved away from the initialisation and is not the trained weights
    ema, online = module.ema_network.conv_out.weight, module.network.conv_out.weight
    assert ema.abs().max() > 0 and not torch.allclose(ema, online)
    samples = module.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 3, 8, 8) and samples.min() >= -1 and samples.max() <= 1
    torch.testing.assert_close(module.sample(5, generator=torch.Generator().manual_seed(0)), samples)
    # the same checkpoint, sampled from its trained weights instead of their average
    online_module = DiffusionModule(tiny_unet(), ema_decay=0.9, sample_steps=10, sample_with_ema=False)
    online_module.load_state_dict(module.state_dict())
    assert online_module.sampling_network is online_module.network
    online_samples = online_module.sample(5, generator=torch.Generator().manual_seed(0))
    assert (online_samples - samples).abs().max() > 1e-3
    previews = module.preview(4, generator=torch.Generator().manual_seed(0))
    assert previews["samples"].shape == (4, 3, 8, 8)
    trajectory, nrow = previews["trajectory"]
    assert trajectory.shape == (1 + 8 + 1, 3, 8, 8) and nrow == len(trajectory)  # x_T, 8 frames, x_0 in one row
    torch.testing.assert_close(trajectory[-1], previews["samples"][0])


def test_validation_loss_is_reproducible():
    data = tiny_images(16)
    module = DiffusionModule(tiny_unet(), ema_decay=None)
    loader = DataLoader(data, batch_size=8)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    first = trainer.validate(module, loader, verbose=False)[0]["val/loss"]
    torch.manual_seed(99)  # the global generator does not matter
    assert trainer.validate(module, loader, verbose=False)[0]["val/loss"] == first


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_conditional_diffusion_module_trains_and_samples_with_guidance(sampler):
    torch.manual_seed(0)
    data = tiny_images(16)
    module = DiffusionModule(
        tiny_unet(num_classes=2), sampler=sampler, sample_steps=5, eta=0.5, guidance_scale=1.5, p_uncond=0.2,
        ema_decay=0.99, ema_warmup=True,
    )  # fmt: skip
    fit(module, 3, data)
    samples = module.sample(4, generator=torch.Generator().manual_seed(0), labels=torch.tensor([0, 1, 0, 1]))
    assert samples.shape == (4, 3, 8, 8) and samples.abs().max() <= 1
    previews = module.preview(6, generator=torch.Generator().manual_seed(0))
    classes, per_class = previews["classes"]
    assert classes.shape == (6, 3, 8, 8) and per_class == 3  # a row per class
    assert previews["trajectory"][0].shape == (1 + 5, 3, 8, 8)  # x_T, the 4 intermediate steps, x_0


def test_diffusion_module_rejects_bad_configurations():
    with pytest.raises(ConfigError, match="class-conditional"):
        DiffusionModule(tiny_unet(), guidance_scale=1.0)
    with pytest.raises(ConfigError):
        DiffusionModule(tiny_unet(), sample_steps=2000)
    with pytest.raises(ConfigError):
        DiffusionModule(tiny_unet(), sampler="euler")


def test_score_module_learns_and_samples():
    torch.manual_seed(0)
    data = tiny_images()
    # sigma_min above the data's own noise (0.05), where the weighted loss can fall far below its initial value
    module = ScoreModule(
        tiny_unet(), sigma_min=0.1, num_scales=4, steps_per_sigma=3, optimizer=lambda p: torch.optim.Adam(p, lr=5e-3)
    )
    levels = torch.arange(len(data)) % 4
    noise = torch.randn(data.tensors[0].shape, generator=torch.Generator().manual_seed(1))

    def loss() -> float:
        with torch.no_grad():
            return module._loss(module.network, data.tensors[0], levels, noise).item()

    before = loss()
    fit(module, 40, data)
    assert loss() < 0.6 * before
    torch.testing.assert_close(
        module.noise_conditioning(module.sigmas[[0, -1]]), torch.tensor([999.0, 0.0]), atol=1e-3, rtol=0
    )
    samples = module.sample(3, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, 3, 8, 8) and samples.abs().max() <= 1
    previews = module.preview(2, generator=torch.Generator().manual_seed(0))
    assert previews["annealing"][0].shape == (4 + 1, 3, 8, 8)
