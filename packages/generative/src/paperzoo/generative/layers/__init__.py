"""paperzoo.generative.layers: building blocks shared inside the package (StyleGAN2's equalised, modulated layers)."""

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

__all__ = [
    "EqualizedConv2d",
    "EqualizedLinear",
    "MinibatchStdDev",
    "ModulatedConv2d",
    "NoiseInjection",
    "StyledConv",
    "ToRGB",
    "blur2d",
    "downsample2d",
    "fir_kernel",
    "upsample2d",
]
