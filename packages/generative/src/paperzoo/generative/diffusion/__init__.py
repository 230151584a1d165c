"""Gaussian diffusion and score-based generative modelling: noise schedules, the DDPM and DDIM samplers,
classifier-free guidance, and noise-conditional score matching with annealed Langevin dynamics."""

from paperzoo.generative.diffusion.ddim import ddim_sample, ddim_step
from paperzoo.generative.diffusion.ddpm import ddpm_sample, ddpm_step, predict_x0, q_sample
from paperzoo.generative.diffusion.guidance import classifier_free_guidance, drop_labels, guided_epsilon
from paperzoo.generative.diffusion.schedules import NoiseSchedule, cosine_betas, linear_betas, sampling_timesteps
from paperzoo.generative.diffusion.score import annealed_langevin_dynamics, dsm_loss, geometric_sigmas

__all__ = [
    "NoiseSchedule",
    "annealed_langevin_dynamics",
    "classifier_free_guidance",
    "cosine_betas",
    "ddim_sample",
    "ddim_step",
    "ddpm_sample",
    "ddpm_step",
    "drop_labels",
    "dsm_loss",
    "geometric_sigmas",
    "guided_epsilon",
    "linear_betas",
    "predict_x0",
    "q_sample",
    "sampling_timesteps",
]
