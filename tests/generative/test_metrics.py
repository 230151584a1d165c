"""The offline sample metrics: feature networks load and export, FID/KID/IS behave and are labelled."""

from pathlib import Path

import pytest
import torch

from paperzoo.core.errors import CheckpointError, ConfigError
from paperzoo.generative.metrics import SampleQuality, export_feature_classifier, load_feature_classifier
from paperzoo.generative.models.features import FeatureClassifier

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def small_network(tmp_path):
    torch.manual_seed(0)
    network = FeatureClassifier(widths=(4, 8, 8, 16))
    path = tmp_path / "net.pt"
    torch.save(network.state_dict(), path)
    return network.eval(), path


def test_load_state_dict_and_lightning_checkpoint(tmp_path, small_network):
    network, path = small_network
    loaded = load_feature_classifier(path)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    assert torch.allclose(loaded(x), network(x))
    ckpt = tmp_path / "run.ckpt"
    torch.save({"state_dict": {f"network.{k}": v for k, v in network.state_dict().items()}}, ckpt)
    assert torch.allclose(load_feature_classifier(ckpt).features(x), network.features(x))


def test_export_is_half_precision_and_close(tmp_path, small_network):
    network, path = small_network
    out = export_feature_classifier(path, tmp_path / "small.pt")
    assert out.stat().st_size < path.stat().st_size
    x = torch.rand(3, 3, 20, 20) * 2 - 1  # colour and another size are standardised
    assert torch.allclose(load_feature_classifier(out).features(x), network.features(x), atol=2e-2)


def test_bad_feature_sources(tmp_path):
    with pytest.raises(CheckpointError, match="neither a shipped one"):
        load_feature_classifier(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable torch file"):
        load_feature_classifier(tmp_path / "bad.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no FeatureClassifier weights"):
        load_feature_classifier(tmp_path / "other.pt")


def test_inception_needs_torch_fidelity():
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="torch-fidelity"):
            SampleQuality("inception")
    else:
        pytest.skip("torch-fidelity is installed: the standard metrics are available")


def test_fid_zero_for_identical_sets_and_grows_with_shift(small_network):
    _, path = small_network
    torch.manual_seed(1)
    real = torch.rand(200, 1, 32, 32) * 2 - 1
    same = SampleQuality(str(path), kid_subset_size=50, kid_subsets=5)
    same.update(real, real=True)
    same.update(real, real=False)
    identical = same.compute()
    assert abs(identical.fid) < 1e-3 and abs(identical.kid_mean) < 1e-2
    results = []
    for shift in (0.2, 0.8):
        quality = SampleQuality(str(path), kid_subset_size=50, kid_subsets=5)
        quality.update(real, real=True)
        quality.update((real + shift).clamp(-1, 1), real=False)
        results.append(quality.compute())
    assert 0 < results[0].fid < results[1].fid
    assert results[0].kid_mean < results[1].kid_mean
    logged = results[0].as_log("test")
    assert set(logged) == {
        "test/fid_net_features",
        "test/kid_net_features",
        "test/kid_std_net_features",
        "test/is_net_features",
    }
    assert results[0].inception_score >= 1.0


def test_shipped_fashionmnist_features_classify_the_test_set():
    shipped = Path(__file__).parents[2] / "packages/generative/src/paperzoo/generative/assets/fashionmnist_features.pt"
    assert shipped.is_file(), "the package ships the offline FID feature network"
    if not FASHION.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    from paperzoo.generative.data import FashionMNISTImages

    dm = FashionMNISTImages(batch_size=1000, val_size=0)
    dm.setup()
    x, y = dm.on_after_batch_transfer(next(iter(dm.test_dataloader())), 0)
    network = load_feature_classifier("fashionmnist")
    with torch.no_grad():
        accuracy = (network(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.85
