"""paperzoo.generative.data: image DataModules serving ``(images in [-1, 1], labels)`` at a chosen resolution."""

from paperzoo.generative.data.images import (
    CIFAR10Images,
    FaceCropsImages,
    FashionMNISTImages,
    FashionMNISTUnpaired,
    GenerativeImageDataModule,
    ImageFolderImages,
    MNISTImages,
    UnpairedFolderImages,
    UnpairedImages,
    list_images,
    read_image,
    resize_images,
    to_uint8,
    to_unit_range,
)

__all__ = [
    "CIFAR10Images",
    "FaceCropsImages",
    "FashionMNISTImages",
    "FashionMNISTUnpaired",
    "GenerativeImageDataModule",
    "ImageFolderImages",
    "MNISTImages",
    "UnpairedFolderImages",
    "UnpairedImages",
    "list_images",
    "read_image",
    "resize_images",
    "to_uint8",
    "to_unit_range",
]
