"""The LR schedules equal torch's where torch has one, and their papers' formulas everywhere."""

import math

import pytest
import torch
from jsonargparse import ArgumentParser
from lightning.pytorch.cli import LRSchedulerCallable

from paperzoo.core import schedules
from paperzoo.core.modules.base import _unset_argument
from paperzoo.core.schedules import (
    CosineWithWarmup,
    InverseSqrt,
    LinearWarmupDecay,
    MultiStepLR,
    OneCycle,
    StepLR,
    WarmupMultiStepLR,
)


def make_optimizer(lr: float = 0.1, groups: int = 1) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)], lr=lr)


def lr_sequence(scheduler, steps: int, group: int = 0) -> list[float]:
    """The LR each of ``steps`` optimiser steps uses, the scheduler stepped after each, as in training."""
    lrs = []
    for _ in range(steps):
        lrs.append(scheduler.optimizer.param_groups[group]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return lrs


def assert_sequences_equal(ours: list[float], expected: list[float], tol: float = 1e-12) -> None:
    assert len(ours) == len(expected)
    worst = max(abs(a - b) for a, b in zip(ours, expected, strict=True))
    assert worst <= tol, f"largest LR difference {worst}"


def test_warmup_then_multistep():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = WarmupMultiStepLR(opt, milestones=[6, 9], gamma=0.1, warmup_steps=3, warmup_factor=0.1)
    lrs = []
    for _ in range(11):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [0.01] * 3 + [0.1] * 3 + [0.01] * 3 + [0.001] * 2
    assert torch.allclose(torch.tensor(lrs), torch.tensor(expected))


@pytest.mark.parametrize(("step_size", "gamma"), [(7, 0.1), (30, 0.5), (1, 0.97)])
def test_step_lr_matches_torch(step_size, gamma):
    ours = lr_sequence(StepLR(make_optimizer(), step_size=step_size, gamma=gamma), 100)
    ref = lr_sequence(torch.optim.lr_scheduler.StepLR(make_optimizer(), step_size=step_size, gamma=gamma), 100)
    assert_sequences_equal(ours, ref)
    assert ours[0] == 0.1 and ours[-1] < 0.1


@pytest.mark.parametrize(("milestones", "gamma"), [([10, 40, 41], 0.1), ([25, 75], 0.2), ([5, 5, 60], 0.5)])
def test_multistep_lr_matches_torch(milestones, gamma):
    ours = lr_sequence(MultiStepLR(make_optimizer(), milestones=milestones[::-1], gamma=gamma), 100)
    ref = lr_sequence(torch.optim.lr_scheduler.MultiStepLR(make_optimizer(), milestones=milestones, gamma=gamma), 100)
    assert_sequences_equal(ours, ref)
    assert len(set(ours)) == len(set(milestones)) + 1


@pytest.mark.parametrize(
    ("total_steps", "kwargs"),
    [
        (100, {}),
        (1000, dict(pct_start=0.25, div_factor=10.0, final_div_factor=100.0)),
        (57, dict(anneal="linear")),
        (300, dict(pct_start=0.5, anneal="linear", final_div_factor=1e3)),
    ],
)
def test_one_cycle_matches_torch(total_steps, kwargs):
    torch_kwargs = dict(kwargs, anneal_strategy=kwargs.pop("anneal", "cos"))
    anneal = torch_kwargs["anneal_strategy"]
    # Two groups with different peaks: the optimiser's own LR (0.1) must be ignored in favour of max_lr.
    ours_sched = OneCycle(make_optimizer(groups=2), max_lr=[0.5, 2.0], total_steps=total_steps, anneal=anneal, **kwargs)
    ref_sched = torch.optim.lr_scheduler.OneCycleLR(
        make_optimizer(groups=2), max_lr=[0.5, 2.0], total_steps=total_steps, cycle_momentum=False, **torch_kwargs
    )
    ours_lrs, ref_lrs = [], []
    for _ in range(total_steps):
        ours_lrs.append([g["lr"] for g in ours_sched.optimizer.param_groups])
        ref_lrs.append([g["lr"] for g in ref_sched.optimizer.param_groups])
        for sched in (ours_sched, ref_sched):
            sched.optimizer.step()
            sched.step()
    for group in range(2):
        ours, ref = [lrs[group] for lrs in ours_lrs], [lrs[group] for lrs in ref_lrs]
        assert_sequences_equal(ours, ref)
        # The peak can fall between two steps when pct_start * total_steps is not whole.
        assert max(ours) == pytest.approx([0.5, 2.0][group], rel=1e-2)


def test_cosine_with_warmup_follows_its_formula():
    warmup, total, base, ratio = 20, 150, 0.3, 0.1
    lrs = lr_sequence(CosineWithWarmup(make_optimizer(base), warmup, total_steps=total, min_lr_ratio=ratio), total + 5)
    expected = []
    for t in range(total + 5):
        if t < warmup:
            expected.append(base * t / warmup)
        else:
            progress = min(t - warmup, total - warmup) / (total - warmup)
            expected.append(base * (ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * progress))))
    assert_sequences_equal(lrs, expected)
    assert lrs[0] == 0 and lrs[warmup] == pytest.approx(base) and max(lrs) == lrs[warmup]
    assert lrs[total] == pytest.approx(base * ratio) and min(lrs[warmup:]) == lrs[total] == lrs[-1]
    assert all(a > b for a, b in zip(lrs[warmup:total], lrs[warmup + 1 : total + 1], strict=True))


def test_linear_warmup_decay_follows_its_formula():
    warmup, total, base = 10, 90, 2e-4
    lrs = lr_sequence(LinearWarmupDecay(make_optimizer(base), warmup, total_steps=total), total + 3)
    expected = [base * (t / warmup if t < warmup else max(0, (total - t) / (total - warmup))) for t in range(total + 3)]
    assert_sequences_equal(lrs, expected)
    assert lrs[warmup] == pytest.approx(base) and max(lrs) == lrs[warmup]
    assert lrs[total - 1] > 0 and lrs[total] == 0 and lrs[-1] == 0


def test_linear_warmup_fraction_is_a_share_of_the_total():
    by_fraction = LinearWarmupDecay(make_optimizer(1.0), warmup_fraction=0.06, total_steps=200)
    assert by_fraction.warmup_steps == 12
    by_steps = LinearWarmupDecay(make_optimizer(1.0), 12, total_steps=200)
    assert lr_sequence(by_fraction, 203) == lr_sequence(by_steps, 203)
    with pytest.raises(ValueError, match="warmup_fraction"):
        LinearWarmupDecay(make_optimizer(1.0), warmup_fraction=1.5, total_steps=200)


@pytest.mark.parametrize("d_model", [None, 512])
def test_inverse_sqrt_follows_vaswani(d_model):
    warmup, base = 40, 1.0 if d_model else 7e-4
    lrs = lr_sequence(InverseSqrt(make_optimizer(base), warmup, d_model=d_model), 400)
    scale = d_model**-0.5 if d_model else warmup**0.5
    expected = [base * scale * min(s**-0.5, s * warmup**-1.5) for s in range(1, 401)]
    assert_sequences_equal(lrs, expected)
    # The paper's step number counts from 1, so step number ``warmup`` is scheduler step ``warmup - 1``.
    assert max(lrs) == lrs[warmup - 1]
    assert lrs[warmup - 1] == pytest.approx(base * (d_model**-0.5 * warmup**-0.5 if d_model else 1.0))
    assert lrs[4 * warmup - 1] == pytest.approx(lrs[warmup - 1] / 2)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (CosineWithWarmup, dict(warmup_steps=5)),
        (LinearWarmupDecay, dict(warmup_steps=5)),
        (OneCycle, dict(max_lr=0.1)),
    ],
)
def test_total_steps_is_required_but_left_to_lightning(cls, kwargs):
    with pytest.raises(ValueError, match="total_steps is required"):
        cls(make_optimizer(), **kwargs)
    parser = ArgumentParser()
    parser.add_argument("--lr_scheduler", type=LRSchedulerCallable)
    config = parser.parse_object(
        {"lr_scheduler": {"class_path": f"paperzoo.core.schedules.{cls.__name__}", "init_args": kwargs}}
    )
    factory = parser.instantiate(config).lr_scheduler
    assert _unset_argument(factory, "total_steps")
    assert isinstance(factory(make_optimizer(), total_steps=50), cls)


def test_rejects_warmup_longer_than_training():
    with pytest.raises(ValueError, match="warmup_steps"):
        CosineWithWarmup(make_optimizer(), warmup_steps=20, total_steps=10)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (StepLR, dict(step_size=7)),
        (MultiStepLR, dict(milestones=[9, 30])),
        (CosineWithWarmup, dict(warmup_steps=10, total_steps=60)),
        (LinearWarmupDecay, dict(warmup_steps=10, total_steps=60)),
        (InverseSqrt, dict(warmup_steps=10)),
        (OneCycle, dict(max_lr=1.0, total_steps=60)),
    ],
)
def test_resumes_from_state_dict(cls, kwargs):
    straight = lr_sequence(cls(make_optimizer(), **kwargs), 60)
    optimizer = make_optimizer()
    first = cls(optimizer, **kwargs)
    head = lr_sequence(first, 25)
    # Lightning's order: build both afresh, then load the optimiser's state and the scheduler's.
    fresh_optimizer = make_optimizer()
    resumed = cls(fresh_optimizer, **kwargs)
    fresh_optimizer.load_state_dict(optimizer.state_dict())
    resumed.load_state_dict(first.state_dict())
    assert head + lr_sequence(resumed, 35) == straight


def test_every_schedule_is_exported():
    assert {"StepLR", "MultiStepLR", "CosineWithWarmup", "LinearWarmupDecay", "InverseSqrt", "OneCycle"} <= set(
        vars(schedules)
    )


def test_a_plateau_schedule_steps_on_its_monitored_metric():
    from functools import partial

    from lightning.pytorch.cli import ReduceLROnPlateau

    from paperzoo.core.modules.base import PaperzooModule

    module = PaperzooModule(
        optimizer=partial(torch.optim.Adam, lr=1e-3),
        lr_scheduler=partial(ReduceLROnPlateau, monitor="val/mae", mode="min"),
        scheduler_interval="epoch",
    )
    module.layer = torch.nn.Linear(2, 1)
    config = module.configure_optimizers()["lr_scheduler"]
    assert config["monitor"] == "val/mae" and config["interval"] == "epoch"
    plain = PaperzooModule(
        optimizer=partial(torch.optim.SGD, lr=0.1), lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1)
    )
    plain.layer = torch.nn.Linear(2, 1)
    assert "monitor" not in plain.configure_optimizers()["lr_scheduler"]
