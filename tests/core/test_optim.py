"""paperzoo.core.optim matches torch.optim step for step, resumes exactly and loads from a config."""

import copy
import functools

import pytest
import torch
from jsonargparse import ArgumentParser
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from paperzoo.core import optim

STEPS = 200


def make_model() -> nn.Module:
    """A small conv net followed by a 2-layer MLP, so conv, linear and bias parameters all train."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 32),
        nn.Tanh(),
        nn.Linear(32, 5),
    )


def batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` training batches, cycling through four fixed random ones."""
    generator = torch.Generator().manual_seed(1)
    data = [
        (torch.randn(8, 3, 6, 6, generator=generator), torch.randint(0, 5, (8,), generator=generator)) for _ in range(4)
    ]
    return [data[i % len(data)] for i in range(n)]


def train(model: nn.Module, optimizer: torch.optim.Optimizer, data) -> None:
    for x, y in data:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-3)),
    ("Adagrad", dict(lr=0.05)),
    ("Adagrad", dict(lr=0.05, lr_decay=1e-2, weight_decay=1e-2, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=1e-3)),
    ("RMSprop", dict(lr=1e-3, alpha=0.9, weight_decay=1e-2, momentum=0.9)),
    ("RMSprop", dict(lr=1e-3, centered=True, momentum=0.5)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2)),
    ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=1e-3)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
]


@functools.cache
def trained_with_ours(case: int) -> nn.Module:
    """The model after ``STEPS`` steps of our optimiser in ``CASES[case]``; shared by the parity and resume tests."""
    name, kwargs = CASES[case]
    model = make_model()
    train(model, getattr(optim, name)(model.parameters(), **kwargs), batches(STEPS))
    return model


CASE_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]


@pytest.mark.parametrize("case", range(len(CASES)), ids=CASE_IDS)
def test_matches_torch(case):
    name, kwargs = CASES[case]
    ref_model = make_model()
    train(ref_model, getattr(torch.optim, name)(ref_model.parameters(), **kwargs), batches(STEPS))
    ours_model, start = trained_with_ours(case), make_model()
    for p_ours, p_ref, p_start in zip(ours_model.parameters(), ref_model.parameters(), start.parameters(), strict=True):
        assert not torch.equal(p_ours, p_start), "the optimiser did not move the parameters"
        torch.testing.assert_close(p_ours, p_ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_parameter_groups_keep_their_own_settings(name):
    """A group's own lr overrides the default: with lr 0 that group must not move."""
    model = make_model()
    frozen, trained = list(model[0].parameters()), list(model[5].parameters())
    frozen_before = [p.detach().clone() for p in frozen]
    optimizer = getattr(optim, name)([{"params": frozen, "lr": 0.0, "weight_decay": 0.0}, {"params": trained}])
    train(model, optimizer, batches(3))
    assert all(torch.equal(p, q) for p, q in zip(frozen, frozen_before, strict=True))
    assert all(len(optimizer.state[p]) > 0 and optimizer.state[p]["step"] == 3 for p in trained)


RESUME_CASES = [3, 5, 8, 11, 13]  # one per optimiser, each with its most stateful settings


@pytest.mark.parametrize("case", RESUME_CASES, ids=[CASE_IDS[i] for i in RESUME_CASES])
def test_state_dict_resumes_exactly(case):
    """Save model + optimiser after half the steps, load both into fresh objects, finish: same as straight."""
    name, kwargs = CASES[case]
    data = batches(STEPS)
    first_model = make_model()
    first = getattr(optim, name)(first_model.parameters(), **kwargs)
    train(first_model, first, data[: STEPS // 2])
    saved = copy.deepcopy({"model": first_model.state_dict(), "optimizer": first.state_dict()})
    del first_model, first

    resumed_model = make_model()
    resumed_model.load_state_dict(saved["model"])
    resumed = getattr(optim, name)(resumed_model.parameters(), **kwargs)
    resumed.load_state_dict(saved["optimizer"])
    train(resumed_model, resumed, data[STEPS // 2 :])

    for p, q in zip(resumed_model.parameters(), trained_with_ours(case).parameters(), strict=True):
        assert torch.equal(p, q)
    assert all(resumed.state[p]["step"] == STEPS for p in resumed_model.parameters())


def test_closure_is_evaluated_with_gradients():
    model = make_model()
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    x, y = batches(1)[0]

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    first = optimizer.step(closure)
    assert first.requires_grad
    assert optimizer.step(closure) < first


def test_rejects_bad_hyperparameters():
    params = make_model().parameters()
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        optim.Adam(make_model().parameters(), lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        optim.AdamW(make_model().parameters(), betas=(0.9, 1.0))


def test_builds_from_a_lightning_cli_config():
    parser = ArgumentParser()
    parser.add_argument("--optimizer", type=OptimizerCallable)
    config = parser.parse_object({"optimizer": {"class_path": "paperzoo.core.optim.Adam", "init_args": {"lr": 0.01}}})
    factory = parser.instantiate(config).optimizer
    optimizer = factory(make_model().parameters())
    assert type(optimizer) is optim.Adam
    assert optimizer.defaults["lr"] == 0.01
    assert optimizer.defaults["betas"] == (0.9, 0.999)


@pytest.mark.parametrize("case", range(len(CASES)), ids=CASE_IDS)
def test_cpu_chunked_update_of_large_tensors_is_exact(case, monkeypatch):
    """Tensors larger than a CPU chunk are updated piece by piece: the same numbers as in one piece."""
    from paperzoo.core.optim import base

    name, kwargs = CASES[case]
    monkeypatch.setattr(base, "CPU_CHUNK", 1000)  # small, so the test tensors are split several ways

    def run(optimizer_class, chunk: int) -> list[torch.Tensor]:
        monkeypatch.setattr(base, "CPU_CHUNK", chunk)
        torch.manual_seed(0)
        params = [nn.Parameter(torch.randn(2345)), nn.Parameter(torch.randn(40, 70)), nn.Parameter(torch.randn(7))]
        optimizer = optimizer_class(params, **kwargs)
        generator = torch.Generator().manual_seed(3)
        for _ in range(12):
            for p in params:
                p.grad = torch.randn(p.shape, generator=generator)
            optimizer.step()
        return [p.detach() for p in params]

    chunked, whole, reference = run(getattr(optim, name), 1000), run(getattr(optim, name), 10**9), None
    reference = run(getattr(torch.optim, name), 1000)
    for c, w, r in zip(chunked, whole, reference, strict=True):
        assert torch.equal(c, w)
        torch.testing.assert_close(c, r, rtol=0, atol=1e-6)


def test_large_tensors_are_split_into_chunks(monkeypatch):
    from paperzoo.core.optim import base

    monkeypatch.setattr(base, "CPU_CHUNK", 1000)
    p, q, buf = torch.zeros(2500), torch.zeros(300), torch.ones(2500)
    calls = base._cpu_chunks([p, q], [p.clone(), q.clone()], [{"step": 1, "buf": buf}, {"step": 1}])
    assert [[t.numel() for t in c[0]] for c in calls] == [[1000], [1000], [500, 300]]
    calls[0][2][0]["buf"].mul_(2)  # state views write through to the real state tensor
    calls[0][0][0].add_(5)  # and parameter views to the real parameter
    assert calls[0][2][0]["step"] == 1
    assert float(buf[:1000].sum()) == 2000 and float(buf[1000:].sum()) == 1500 and float(p[:1000].sum()) == 5000
