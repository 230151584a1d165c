"""paperzoo.generative: autoencoders, VAEs, GANs, StyleGAN2, diffusion and energy-based models, from scratch.

The layout is the one every domain shares: ``layers``, ``models`` (pure nn.Module), ``modules`` (LightningModules),
``data`` (DataModules) and a registry; ``metrics`` (FID, KID and IS with a choice of feature network) and
``callbacks`` (sample sheets, sample metrics) are the generative additions.
"""

from paperzoo.generative import models  # noqa: F401  (registers the models)
from paperzoo.generative.callbacks import GenerativeMetrics, SampleGrid, save_sheet
from paperzoo.generative.data import (
    CIFAR10Images,
    FaceCropsImages,
    FashionMNISTImages,
    FashionMNISTUnpaired,
    GenerativeImageDataModule,
    ImageFolderImages,
    MNISTImages,
    UnpairedFolderImages,
    UnpairedImages,
)
from paperzoo.generative.metrics import SampleQuality, load_feature_classifier
from paperzoo.generative.modules import (
    AutoencoderModule,
    CycleGANModule,
    DiffusionModule,
    FeatureClassifierModule,
    GANModule,
    GenerativeModule,
    JEMModule,
    RBMModule,
    ScoreModule,
    StyleGAN2Module,
    VAEModule,
)
from paperzoo.generative.registry import create_model, list_models, register_model

__all__ = [
    "AutoencoderModule",
    "CIFAR10Images",
    "CycleGANModule",
    "DiffusionModule",
    "FaceCropsImages",
    "FashionMNISTImages",
    "FashionMNISTUnpaired",
    "FeatureClassifierModule",
    "GANModule",
    "GenerativeImageDataModule",
    "GenerativeMetrics",
    "GenerativeModule",
    "ImageFolderImages",
    "JEMModule",
    "MNISTImages",
    "RBMModule",
    "SampleGrid",
    "SampleQuality",
    "ScoreModule",
    "StyleGAN2Module",
    "UnpairedFolderImages",
    "UnpairedImages",
    "VAEModule",
    "create_model",
    "list_models",
    "load_feature_classifier",
    "register_model",
    "save_sheet",
]
