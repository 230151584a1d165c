"""FGSM and PGD against closed forms and their invariants, robust accuracy, and AdversarialClassifier training."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core import testing
from paperzoo.core.errors import ConfigError
from paperzoo.core.nn import MLP
from paperzoo.vision import AdversarialClassifier, FashionMNISTDataModule
from paperzoo.vision.robustness import FGSM, PGD, InputSpace, robust_accuracy, robust_predictions

EPS = 0.1
RGB = InputSpace(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))  # distinct per channel, to catch channel mix-ups
GREY = InputSpace(mean=(0.5,), std=(0.25,))


def _rgb_batch(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised 3x2x2 images whose pixels include exact 0s and 1s, their pixels, and labels in 0..3."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(n, 3, 2, 2, generator=g)
    pixels[0], pixels[1] = 0.0, 1.0
    return RGB.from_pixels(pixels), pixels, torch.randint(0, 4, (n,), generator=g)


def _rgb_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))


def _toy(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of 4x4 grey images (normalised with GREY) with one robust and fifteen non-robust features.

    Pixel 0 is 0.25 or 0.75 by class, with 10% of labels flipped: 90% accurate, and no perturbation of 0.1 moves
    it across 0.5. The other pixels are 0.5 +- 0.08 by class plus N(0, 0.1^2) noise: together nearly 100%
    accurate, but a shift of 0.1 against the class turns each into the other class's feature (the setting of
    Tsipras et al. 2019). Standard training uses the non-robust pixels; adversarial training must not.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    sign = 2.0 * y - 1
    flip = torch.where(torch.rand(n, generator=g) < 0.1, -1.0, 1.0)
    pixels = 0.5 + 0.08 * sign[:, None] + 0.1 * torch.randn(n, 16, generator=g)
    pixels[:, 0] = 0.5 + 0.25 * sign * flip
    return GREY.from_pixels(pixels.clamp(0, 1).view(n, 1, 4, 4)), y


TRAIN, TEST = _toy(1024, seed=0), _toy(512, seed=1)


def _train_toy(train_attack: str, steps: int = 150) -> AdversarialClassifier:
    """AdversarialClassifier.training_step in a plain loop (Adam, batch 64) on the toy data; returned in eval mode."""
    torch.manual_seed(0)
    module = AdversarialClassifier(
        MLP(16, [64, 64], num_classes=2),
        train_attack=train_attack,
        train_eps=EPS,
        train_steps=5,
        train_step_size=0.03,
        mean=GREY.mean,
        std=GREY.std,
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-2),
    )
    module.log = lambda *args, **kwargs: None
    optimizer = module.configure_optimizers()
    module.train()
    x, y = TRAIN
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        idx = torch.randint(0, len(y), (64,), generator=g)
        loss = module.training_step((x[idx], y[idx]), step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return module.eval()


@pytest.fixture(scope="module")
def standard_model() -> nn.Module:
    return _train_toy("none").network


def _pgd(eps: float = EPS, seed: int = 0, **kwargs) -> PGD:
    kwargs = {"steps": 10, "step_size": eps / 4, "space": GREY, **kwargs}
    return PGD(eps, generator=torch.Generator().manual_seed(seed), **kwargs)


# ---------------------------------------------------------------------------------------------------- the space


def test_input_space_round_trips_and_bounds_are_the_images_of_0_and_1():
    x, pixels, _ = _rgb_batch()
    torch.testing.assert_close(RGB.to_pixels(x), pixels)
    low, high = RGB.bounds(x)
    torch.testing.assert_close(RGB.to_pixels(low.expand_as(x)), torch.zeros_like(x))
    torch.testing.assert_close(RGB.to_pixels(high.expand_as(x)), torch.ones_like(x))
    torch.testing.assert_close(RGB.scale(0.1, x).flatten(), torch.tensor([0.5, 0.4, 0.1 / 0.3]))
    assert InputSpace.from_datamodule(FashionMNISTDataModule()) == InputSpace((0.2860,), (0.3530,))
    with pytest.raises(ValueError, match="positive"):
        InputSpace((0.5,), (0.0,))


# ---------------------------------------------------------------------------------------------------------- FGSM


def test_fgsm_on_a_linear_model_is_the_closed_form_in_pixel_space():
    torch.manual_seed(0)
    linear = nn.Linear(12, 4)
    model = nn.Sequential(nn.Flatten(), linear)
    x, pixels, y = _rgb_batch()
    # d CE / d x = W^T (softmax(z) - e_y) = -(w_y - E_softmax[w]); in pixels it is divided by std (per channel).
    W = linear.weight.detach()  # (K, 12)
    probs = (x.flatten(1) @ W.T + linear.bias.detach()).softmax(-1)  # (B, K)
    toward_y = (W[y] - probs @ W).view_as(x)  # (B, 3, 2, 2)
    pixel_grad = -toward_y / torch.tensor(RGB.std).view(1, 3, 1, 1)
    expected = (pixels + EPS * pixel_grad.sign()).clamp(0, 1)

    x_adv = FGSM(EPS, space=RGB)(model, x, y)

    torch.testing.assert_close(RGB.to_pixels(x_adv), expected, atol=1e-6, rtol=0)
    moved = (expected - pixels).abs()
    assert (moved > EPS - 1e-6).any() and ((moved < EPS - 1e-6) & (moved > 0)).any()  # full steps and clipped ones


def test_fgsm_with_eps_zero_returns_the_inputs():
    x, _, y = _rgb_batch()
    torch.testing.assert_close(FGSM(0.0, space=RGB)(_rgb_mlp(), x, y), x, atol=0, rtol=0)


# ----------------------------------------------------------------------------------------------------------- PGD


def test_pgd_stays_in_the_eps_ball_and_the_valid_range_and_reaches_the_ball_in_every_channel():
    x, pixels, y = _rgb_batch(n=32)
    attack = PGD(EPS, steps=10, step_size=0.05, space=RGB, generator=torch.Generator().manual_seed(0))
    x_adv = attack(_rgb_mlp(), x, y)
    adv_pixels = RGB.to_pixels(x_adv)
    moved = (adv_pixels - pixels).abs()
    assert moved.max() <= EPS + 1e-6
    assert adv_pixels.min() >= -1e-6 and adv_pixels.max() <= 1 + 1e-6
    low, high = RGB.bounds(x)
    assert (x_adv >= low).all() and (x_adv <= high).all()  # exactly, in the network's units
    assert (moved.amax(dim=(0, 2, 3)) > EPS - 1e-5).all()  # the budget is eps pixels in each channel, not less


def test_pgd_with_one_full_step_and_no_random_start_is_fgsm():
    x, _, y = _rgb_batch()
    model = _rgb_mlp()
    pgd = PGD(EPS, steps=1, step_size=EPS, random_start=False, space=RGB)
    torch.testing.assert_close(pgd(model, x, y), FGSM(EPS, space=RGB)(model, x, y))


def test_pgd_random_start_is_uniform_in_the_ball():
    x, pixels, y = _rgb_batch(n=256)
    # A constant model has zero gradients, so the steps do not move the random start.
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    nn.init.zeros_(model[1].weight)
    start = torch.Generator().manual_seed(7)  # not the images' seed: the start must not copy the pixels
    x_adv = PGD(EPS, steps=1, step_size=0.01, space=RGB, generator=start)(model, x, y)
    offset = RGB.to_pixels(x_adv) - pixels
    inside = (pixels > EPS) & (pixels < 1 - EPS)  # not clipped
    assert offset[inside].abs().max() <= EPS + 1e-6
    assert offset[inside].mean().abs() < 0.01 and abs(offset[inside].std() - EPS / 3**0.5) < 0.01


def test_pgd_raises_the_loss_at_least_as_much_as_fgsm_on_a_trained_model(standard_model):
    x, y = TEST
    clean = F.cross_entropy(standard_model(x), y)
    fgsm = F.cross_entropy(standard_model(FGSM(EPS, space=GREY)(standard_model, x, y)), y)
    pgd = F.cross_entropy(standard_model(_pgd()(standard_model, x, y)), y)
    assert clean < fgsm <= pgd
    assert pgd > 1.02 * fgsm  # measured 5.87 vs 5.61: the network is not linear enough for one step to be optimal


# ---------------------------------------------------------------------------------------------- the side effects


@pytest.mark.parametrize("attack", [FGSM(EPS, space=RGB), PGD(EPS, steps=3, step_size=0.04, space=RGB)], ids=repr)
def test_an_attack_restores_every_mode_and_leaves_grads_and_batch_norm_statistics_alone(attack):
    torch.manual_seed(0)
    model = MLP(12, [16, 16], num_classes=4, batch_norm=True, dropout=0.5).train()
    model.net[3].eval()  # the first dropout: a mix of modes, to be kept as it is
    params = list(model.parameters())
    for p in params[::2]:
        p.grad = torch.randn_like(p)
    grads = [None if p.grad is None else p.grad.clone() for p in params]
    modes = [m.training for m in model.modules()]
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    x, _, y = _rgb_batch(n=32)

    if isinstance(attack, PGD):
        attack.generator = torch.Generator().manual_seed(0)
    x_adv = attack(model, x, y)

    assert [m.training for m in model.modules()] == modes
    for p, g in zip(params, grads, strict=True):
        assert (p.grad is None) if g is None else torch.equal(p.grad, g)
    for name, b in model.named_buffers():
        assert torch.equal(b, buffers[name]), name
    # The attack used eval mode: the same as attacking the network in eval mode (no dropout, running statistics).
    if isinstance(attack, PGD):
        attack.generator = torch.Generator().manual_seed(0)
    torch.testing.assert_close(x_adv, attack(model.eval(), x, y))


def test_attacks_work_under_no_grad_and_inference_mode():
    x, _, y = _rgb_batch()
    model = _rgb_mlp()
    expected = FGSM(EPS, space=RGB)(model, x, y)
    with torch.no_grad():
        torch.testing.assert_close(FGSM(EPS, space=RGB)(model, x, y), expected)
    with torch.inference_mode():  # Lightning's validation and test loops
        x_inf, y_inf = x.clone(), y.clone()
        torch.testing.assert_close(FGSM(EPS, space=RGB)(model, x_inf, y_inf), expected)


# ------------------------------------------------------------------------------------------------ robust accuracy


def test_robust_accuracy_is_at_most_clean_accuracy_and_equal_to_it_at_eps_zero(standard_model):
    loader = DataLoader(TensorDataset(*TEST), batch_size=128)
    clean = robust_accuracy(standard_model, loader, None)
    assert clean > 0.95
    assert robust_accuracy(standard_model, loader, FGSM(0.0, space=GREY)) == clean
    assert robust_accuracy(standard_model, loader, _pgd(eps=0.0, step_size=0.01)) == clean
    robust = robust_accuracy(standard_model, loader, _pgd())
    assert robust < clean - 0.3  # standard training is not robust here: measured 1.00 clean vs 0.28
    x, y = TEST
    preds = robust_predictions(standard_model, x, y, _pgd())
    assert ((preds == y) <= (standard_model(x).argmax(-1) == y)).all()  # robust implies right on the clean image


class _FixesEverything(FGSM):
    """An 'attack' that makes the true class win, as a weak attack on a non-smooth model sometimes does by chance."""

    def perturb(self, model, x, y):
        return F.one_hot(y, 2).float().view_as(x)


def test_an_example_wrong_on_the_clean_image_is_never_robust():
    model = nn.Flatten()  # (B, 2, 1, 1) -> the logits are the inputs
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]).view(4, 2, 1, 1)
    y = torch.tensor([0, 1, 1, 0])  # the last two are wrong on the clean image
    loader = [(x, y)]
    assert robust_accuracy(model, loader, None) == 0.5
    assert (model(_FixesEverything(EPS)(model, x, y)).argmax(-1) == y).all()
    assert robust_accuracy(model, loader, _FixesEverything(EPS)) == 0.5


def test_robust_accuracy_reads_a_datamodules_uint8_batches(tmp_path):
    dm = FashionMNISTDataModule(
        testing.write_mnist(tmp_path / "mnist", n_train=32, n_test=24), batch_size=8, val_size=8
    )
    dm.setup()
    torch.manual_seed(0)
    network = MLP(784, [16], num_classes=10).eval()
    space = InputSpace.from_datamodule(dm)
    x, y = dm.test_set.tensors
    x = space.from_pixels(x.float() / 255)
    expected = (network(x).argmax(-1) == y).float().mean().item()
    loader, preprocess = dm.test_dataloader(), lambda batch: dm.on_after_batch_transfer(batch, 0)
    assert robust_accuracy(network, loader, FGSM(0.0, space=space), preprocess=preprocess) == pytest.approx(expected)
    assert robust_accuracy(network, loader, FGSM(0.3, space=space), preprocess=preprocess) <= expected


# ------------------------------------------------------------------------------------------ AdversarialClassifier


def test_adversarial_training_raises_robust_accuracy():
    loader = DataLoader(TensorDataset(*TEST), batch_size=256)
    standard, adversarial = _train_toy("none").network, _train_toy("pgd").network
    robust_standard = robust_accuracy(standard, loader, _pgd())
    robust_adversarial = robust_accuracy(adversarial, loader, _pgd())
    # The robust feature alone is 90% accurate; the non-robust ones flip under eps = 0.1.
    assert robust_adversarial > 0.85 and robust_adversarial > robust_standard + 0.4
    assert robust_accuracy(adversarial, loader, None) < robust_accuracy(standard, loader, None)  # the price


def _module(**kwargs) -> AdversarialClassifier:
    torch.manual_seed(0)
    return AdversarialClassifier(MLP(16, [8], num_classes=2), mean=GREY.mean, std=GREY.std, **kwargs)


@pytest.mark.parametrize(
    ("train_attack", "adv_fraction", "n_adv"), [("fgsm", 0.5, 2), ("fgsm", 1.0, 4), ("none", 1.0, 0)]
)
def test_training_step_replaces_a_fraction_of_the_batch(monkeypatch, train_attack, adv_fraction, n_adv):
    module = _module(train_attack=train_attack, train_eps=EPS, adv_fraction=adv_fraction).train()
    monkeypatch.setattr(module, "log", lambda *a, **k: None)
    x, y = TEST[0][:4], TEST[1][:4]
    mixed = torch.cat([FGSM(EPS, space=GREY)(module.network, x[:n_adv], y[:n_adv]), x[n_adv:]])
    loss = module.training_step((x, y), 0)
    torch.testing.assert_close(loss, F.cross_entropy(module.network(mixed), y))
    assert n_adv == 0 or not torch.allclose(loss, F.cross_entropy(module.network(x), y))


def test_test_step_logs_clean_and_robust_accuracy(monkeypatch):
    module = _module(eval_attack="fgsm", eval_eps=0.5).eval()
    logged = {}
    monkeypatch.setattr(module, "log", lambda name, value, **k: logged.setdefault(name, value))
    x, y = TEST
    module.test_step((x, y), 0)
    assert {"test/acc", "test/robust_acc"} <= logged.keys()
    expected = (robust_predictions(module.network, x, y, FGSM(0.5, space=GREY)) == y).float().mean()
    torch.testing.assert_close(logged["test/robust_acc"].compute(), expected)
    assert logged["test/robust_acc"].compute() <= logged["test/acc"].compute()
    logged.clear()
    module.validation_step((x, y), 0)
    assert "val/acc" in logged and "val/robust_acc" not in logged  # only with val_robust=True


def test_setup_takes_the_normalisation_from_the_datamodule():
    module = AdversarialClassifier(MLP(16, [8], num_classes=2), train_attack="fgsm", eval_attack="pgd")
    with pytest.raises(ConfigError, match="normalisation"):
        module.training_step(TEST, 0)
    module.trainer = SimpleNamespace(datamodule=SimpleNamespace(num_classes=2, mean=(0.2860,), std=(0.3530,)))
    module.setup("fit")
    assert isinstance(module.train_attack, FGSM) and isinstance(module.eval_attack, PGD)
    assert module.eval_attack.space == InputSpace((0.2860,), (0.3530,)) and module.eval_attack.steps == 20
    bare = AdversarialClassifier(MLP(16, [8], num_classes=2))
    bare.trainer = SimpleNamespace(datamodule=SimpleNamespace(num_classes=2))
    with pytest.raises(ConfigError, match="mean and std"):
        bare.setup("fit")
