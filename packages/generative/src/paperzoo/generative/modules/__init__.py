"""paperzoo.generative.modules: the LightningModules (losses, sampling, logging)."""

from paperzoo.generative.modules.autoencoder import AutoencoderModule, VAEModule
from paperzoo.generative.modules.base import GenerativeModule
from paperzoo.generative.modules.classifier import FeatureClassifierModule
from paperzoo.generative.modules.cyclegan import CycleGANModule, ImageHistoryBuffer
from paperzoo.generative.modules.diffusion import DiffusionModule, ScoreModule
from paperzoo.generative.modules.energy import JEMModule, RBMModule
from paperzoo.generative.modules.gan import GANModule, gradient_penalty
from paperzoo.generative.modules.stylegan2 import StyleGAN2Module, path_lengths, r1_penalty

__all__ = [
    "AutoencoderModule",
    "CycleGANModule",
    "DiffusionModule",
    "FeatureClassifierModule",
    "GANModule",
    "GenerativeModule",
    "ImageHistoryBuffer",
    "JEMModule",
    "RBMModule",
    "ScoreModule",
    "StyleGAN2Module",
    "VAEModule",
    "gradient_penalty",
    "path_lengths",
    "r1_penalty",
]
