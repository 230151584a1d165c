"""ImageFolderDataModule on a tiny folder of real PNG and JPEG files: classes, splits, transforms and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.vision.data import ImageFolderDataModule

CLASSES = ["bird", "cat", "dog"]


def gradient_image(height: int, width: int, shade: int) -> Image.Image:
    """Red grows left to right, green top to bottom: smooth, so resampling is exact to a grey level or two, and
    any shift of the crop shows."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    rgb = np.stack([x, y, np.full_like(x, shade)], axis=-1)
    return Image.fromarray(rgb.round().astype(np.uint8))


def write_images(folder: Path, per_class: dict[str, int], start: int = 0) -> None:
    """PNG and JPEG files of varied sizes (one grey-level PNG per class), ``folder/<class>/``."""
    for c, (name, count) in enumerate(per_class.items()):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = gradient_image(40 + 3 * i, 60 - 2 * i, shade=40 * c + i)
            if i % 3 == 0:
                image.save(folder / name / f"{start + i}.png")
            elif i % 3 == 1:
                image.convert("L").save(folder / name / f"{start + i}.png")
            else:
                image.save(folder / name / f"{start + i}.JPEG", quality=95)


@pytest.fixture
def imagenet_like(tmp_path) -> Path:
    write_images(tmp_path / "train", {"cat": 5, "dog": 4, "bird": 6})
    write_images(tmp_path / "val", {"cat": 2, "dog": 2}, start=100)  # no bird in val: allowed
    return tmp_path


def module(root: Path, **kwargs) -> ImageFolderDataModule:
    kwargs = {"batch_size": 4, "image_size": 32, "num_workers": 0, **kwargs}
    return ImageFolderDataModule(str(root), **kwargs)


def test_classes_splits_and_shapes_of_the_imagenet_layout(imagenet_like):
    dm = module(imagenet_like)
    assert dm.classes == CLASSES and dm.num_classes == 3  # known before setup
    dm.setup("fit")
    assert len(dm.train_set) == 15 and len(dm.val_set) == 4
    assert dm.test_set.samples == dm.val_set.samples, "without test/ the test set is the validation set"
    assert sorted({label for _, label in dm.val_set.samples}) == [1, 2]
    assert all(Path(path).parent.name == CLASSES[label] for path, label in dm.train_set.samples)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    x, _ = next(iter(dm.val_dataloader()))
    assert x.shape == (4, 3, 32, 32)
    assert dm.resize_size == 37  # round(32 / 0.875), as 256 is to 224


def test_test_folder_is_used_when_present(imagenet_like):
    write_images(imagenet_like / "test", {"bird": 1, "dog": 2}, start=200)
    dm = module(imagenet_like)
    dm.setup("test")
    assert [Path(p).parent.name for p, _ in dm.test_set.samples] == ["bird", "dog", "dog"]


def test_eval_transform_resizes_the_short_side_and_crops_the_centre(imagenet_like):
    dm = module(imagenet_like, image_size=32, resize_size=36)
    image = gradient_image(40, 60, shade=7)  # resized to 36 x 54, then columns 11..42 and rows 2..33 kept
    out = dm.eval_transform(image)
    expected = np.asarray(image.resize((54, 36), Image.BILINEAR), dtype=np.float32)[2:34, 11:43] / 255
    mean, std = np.array(dm.mean), np.array(dm.std)
    expected = torch.from_numpy(((expected - mean) / std).transpose(2, 0, 1)).float()
    assert out.shape == (3, 32, 32)
    torch.testing.assert_close(out, expected, atol=2.5 / 255 / min(dm.std), rtol=0)
    assert torch.equal(dm.eval_transform(image), out), "evaluation is deterministic"


def test_train_transform_is_a_random_resized_crop_with_flip_and_optional_randaugment(imagenet_like):
    dm = module(imagenet_like, min_scale=0.25)
    image = gradient_image(48, 64, shade=0)
    torch.manual_seed(0)
    crops = [dm.train_transform(image) for _ in range(8)]
    assert all(c.shape == (3, 32, 32) for c in crops)
    assert len({c.sum().item() for c in crops}) == 8, "each call draws another crop"
    kinds = [type(t) for t in dm.train_transform.transforms]
    assert v2.RandomResizedCrop in kinds and v2.RandomHorizontalFlip in kinds and v2.RandAugment not in kinds
    crop = dm.train_transform.transforms[kinds.index(v2.RandomResizedCrop)]
    assert crop.scale == (0.25, 1.0) and tuple(crop.size) == (32, 32)
    augmented = module(imagenet_like, randaugment_ops=2, randaugment_magnitude=9, hflip=False)
    kinds = [type(t) for t in augmented.train_transform.transforms]
    assert v2.RandAugment in kinds and v2.RandomHorizontalFlip not in kinds
    ra = augmented.train_transform.transforms[kinds.index(v2.RandAugment)]
    assert (ra.num_ops, ra.magnitude) == (2, 9)
    assert augmented.train_transform(image).shape == (3, 32, 32)


def test_a_single_folder_is_split_stratified_and_seeded(tmp_path):
    write_images(tmp_path, {"cat": 12, "dog": 6, "bird": 3})  # unbalanced: a random split would not keep 4:2:1

    def split(seed: int) -> ImageFolderDataModule:
        dm = module(tmp_path, val_size=1 / 3, test_size=3, seed=seed)
        dm.setup("fit")
        return dm

    a, b, c = split(0), split(0), split(1)
    train, val, test = ({p for p, _ in s.samples} for s in (a.train_set, a.val_set, a.test_set))
    assert (len(train), len(val), len(test)) == (11, 7, 3)  # fractions are of all 21 images
    assert not train & val and not train & test and not val & test
    for dm in (a, c):  # (bird, cat, dog)
        assert np.bincount([label for _, label in dm.val_set.samples], minlength=3).tolist() == [1, 4, 2]
        assert np.bincount([label for _, label in dm.test_set.samples], minlength=3).tolist() == [0, 2, 1]
    assert a.val_set.samples == b.val_set.samples and a.val_set.samples != c.val_set.samples
    assert a.test_set.samples == c.test_set.samples, "the test split has its own seed"
    with pytest.raises(ConfigError, match="val_size=30 must hold out"):
        module(tmp_path, val_size=30).setup("fit")
    with pytest.raises(ConfigError, match="cannot hold out 18 of the 18 images left"):
        module(tmp_path, val_size=0.85, test_size=3).setup("fit")


def test_missing_or_empty_folders_say_what_is_wrong(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist: pass a folder laid out as train/<class>"):
        module(tmp_path / "nowhere").setup("fit")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="has no class folders"):
        module(tmp_path / "empty").setup("fit")
    write_images(tmp_path / "data" / "train", {"cat": 2})
    (tmp_path / "data" / "train" / "dog").mkdir()
    (tmp_path / "data" / "train" / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetNotFoundError, match=r"the class folders dog of .* hold no images"):
        module(tmp_path / "data").setup("fit")


def test_inconsistent_or_corrupt_files_are_named(imagenet_like):
    write_images(imagenet_like / "val", {"horse": 1})
    with pytest.raises(CorruptDataError, match=r"has class folders that .* lacks \(horse\)"):
        module(imagenet_like).setup("fit")
    (imagenet_like / "val" / "horse" / "0.png").unlink()
    (imagenet_like / "val" / "horse").rmdir()
    broken = imagenet_like / "train" / "cat" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    dm = module(imagenet_like)
    dm.setup("fit")
    index = [p for p, _ in dm.train_set.samples].index(str(broken))
    with pytest.raises(CorruptDataError, match=r"broken\.jpg is not a readable image"):
        dm.train_set[index]
