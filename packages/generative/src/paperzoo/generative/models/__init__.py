"""paperzoo.generative.models: the networks, pure nn.Module. Importing this package registers every model."""

from paperzoo.generative.models.autoencoder import ConvAutoencoder, MLPAutoencoder
from paperzoo.generative.models.cyclegan import PatchGANDiscriminator, ResnetGenerator
from paperzoo.generative.models.dcgan import DCGANDiscriminator, DCGANGenerator
from paperzoo.generative.models.features import FeatureClassifier
from paperzoo.generative.models.jem import JEMClassifier
from paperzoo.generative.models.rbm import RBM
from paperzoo.generative.models.stylegan2 import (
    MappingNetwork,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    SynthesisNetwork,
)
from paperzoo.generative.models.unet import DDPMUNet, convert_diffusers_unet_state_dict
from paperzoo.generative.models.vae import MLPVAE, VAE, ConvVAE

__all__ = [
    "MLPVAE",
    "RBM",
    "VAE",
    "ConvAutoencoder",
    "ConvVAE",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DDPMUNet",
    "FeatureClassifier",
    "JEMClassifier",
    "MLPAutoencoder",
    "MappingNetwork",
    "PatchGANDiscriminator",
    "ResnetGenerator",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "SynthesisNetwork",
    "convert_diffusers_unet_state_dict",
]
