"""Memory-augmented networks: the NTM's and the DNC's addressing steps against the papers' equations written out
element by element on tiny hand-made tensors, the models' shapes and gradients, the algorithmic tasks' formats, and
a short training run that has to learn to copy.

Mirrors ``paperzoo.sequence.layers.memory``, ``models.memory_networks``, ``data.algorithmic`` and
``modules.algorithmic``.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger

from paperzoo.core.errors import ConfigError
from paperzoo.sequence import create_model
from paperzoo.sequence.data import AlgorithmicDataModule
from paperzoo.sequence.layers import DNCMemory, NTMMemory
from paperzoo.sequence.layers.memory import (
    allocation_weighting,
    circular_shift,
    content_weighting,
    cosine_similarity,
    directional_weightings,
    memory_read,
    memory_write,
    ntm_address,
    retention,
    sharpen,
    update_link,
    update_precedence,
    update_usage,
)
from paperzoo.sequence.models import DNC, NTM, LSTMBaseline
from paperzoo.sequence.modules import AlgorithmicTaskModule
from paperzoo.sequence.modules.algorithmic import sequence_costs

TOL = {"rtol": 1e-10, "atol": 1e-12}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# ---------------------------------------------------------------- NTM addressing


def test_content_weighting_is_the_softmax_of_scaled_cosine_similarity():
    memory = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]], dtype=torch.float64)  # (1, 3, 2)
    key = torch.tensor([[[2.0, 0.0]]], dtype=torch.float64)  # (1, 1, 2)
    cosines = torch.tensor([1.0, 0.0, 1 / math.sqrt(2)], dtype=torch.float64)  # k . M_i / (|k| |M_i|) by hand
    strength = torch.tensor([[3.0]], dtype=torch.float64)
    expected = torch.exp(3.0 * cosines) / torch.exp(3.0 * cosines).sum()
    torch.testing.assert_close(cosine_similarity(key, memory)[0, 0], cosines, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(content_weighting(memory, key, strength)[0, 0], expected, rtol=1e-6, atol=1e-6)


def test_cosine_similarity_of_an_empty_memory_is_zero_not_nan():
    similarity = cosine_similarity(torch.randn(2, 3, 4), torch.zeros(2, 5, 4))
    assert torch.equal(similarity, torch.zeros(2, 3, 5))
    torch.testing.assert_close(
        content_weighting(torch.zeros(2, 5, 4), torch.randn(2, 3, 4), torch.ones(2, 3)), torch.full((2, 3, 5), 0.2)
    )


@pytest.mark.parametrize("reach", [1, 2])
def test_circular_shift_is_the_papers_circular_convolution(reach):
    N = 7
    weights = torch.rand(2, 3, N, dtype=torch.float64)
    shift = torch.softmax(torch.randn(2, 3, 2 * reach + 1, dtype=torch.float64), -1)
    expected = torch.zeros_like(weights)
    for i in range(N):  # w~(i) = sum_k w((i - k) mod N) s(k), k = -S..S stored at index S + k
        for k in range(-reach, reach + 1):
            expected[..., i] += weights[..., (i - k) % N] * shift[..., reach + k]
    torch.testing.assert_close(circular_shift(weights, shift), expected, **TOL)


def test_a_one_hot_shift_rotates_the_weighting():
    weights = torch.tensor([[[0.1, 0.2, 0.3, 0.4, 0.0]]])
    forwards, backwards, stay = (
        torch.tensor([[[0.0, 0.0, 1.0]]]),
        torch.tensor([[[1.0, 0.0, 0.0]]]),
        torch.tensor([[[0.0, 1.0, 0.0]]]),
    )
    assert torch.equal(circular_shift(weights, forwards), weights.roll(1, -1))
    assert torch.equal(circular_shift(weights, backwards), weights.roll(-1, -1))
    assert torch.equal(circular_shift(weights, stay), weights)


def test_sharpening_is_a_normalised_power_and_sums_to_one():
    weights = torch.softmax(torch.randn(2, 3, 6, dtype=torch.float64), -1)
    gamma = 1 + torch.rand(2, 3, dtype=torch.float64) * 5
    powered = weights ** gamma.unsqueeze(-1)
    torch.testing.assert_close(sharpen(weights, gamma, eps=0.0), powered / powered.sum(-1, keepdim=True), **TOL)
    sharp = sharpen(weights, gamma)
    torch.testing.assert_close(sharp.sum(-1), torch.ones(2, 3, dtype=torch.float64), **TOL)
    assert (sharp.argmax(-1) == weights.argmax(-1)).all()
    assert (sharp.max(-1).values >= weights.max(-1).values - 1e-12).all()  # gamma >= 1 only sharpens


def test_sharpening_a_weighting_with_zeros_has_finite_gradients():
    weights = torch.tensor([[[0.0, 0.0, 1.0, 0.0]]], requires_grad=True)  # an underflowed softmax
    gamma = torch.tensor([[3.0]], requires_grad=True)
    sharpen(weights, gamma)[..., 2].sum().backward()
    assert torch.isfinite(weights.grad).all() and torch.isfinite(gamma.grad).all()


def test_ntm_address_chains_the_four_steps():
    memory = torch.randn(2, 5, 3, dtype=torch.float64)
    previous = torch.softmax(torch.randn(2, 1, 5, dtype=torch.float64), -1)
    key = torch.randn(2, 1, 3, dtype=torch.float64)
    strength, gate, gamma = (
        torch.rand(2, 1, dtype=torch.float64) * 4,
        torch.rand(2, 1, dtype=torch.float64),
        1 + torch.rand(2, 1, dtype=torch.float64),
    )
    shift = torch.softmax(torch.randn(2, 1, 3, dtype=torch.float64), -1)
    content = content_weighting(memory, key, strength)
    gated = gate[..., None] * content + (1 - gate[..., None]) * previous
    expected = sharpen(circular_shift(gated, shift), gamma)
    torch.testing.assert_close(ntm_address(memory, previous, key, strength, gate, shift, gamma), expected, **TOL)
    # gate 0, shift +1, gamma 1: the previous weighting moved one row forwards (pure location addressing)
    moved = ntm_address(
        memory,
        previous,
        key,
        strength,
        torch.zeros(2, 1, dtype=torch.float64),
        torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(2, 1, 3),
        torch.ones(2, 1, dtype=torch.float64),
    )
    torch.testing.assert_close(moved, previous.roll(1, -1), rtol=1e-5, atol=1e-6)


def test_memory_write_erases_then_adds_for_every_head():
    memory = torch.randn(2, 4, 3, dtype=torch.float64)
    weights = torch.softmax(torch.randn(2, 2, 4, dtype=torch.float64), -1)
    erase, add = torch.rand(2, 2, 3, dtype=torch.float64), torch.randn(2, 2, 3, dtype=torch.float64)
    expected = memory.clone()
    for h in range(2):  # NTM eq. 3 for each head (the erases commute), then eq. 4 for each head
        expected = expected * (1 - weights[:, h, :, None] * erase[:, h, None, :])
    for h in range(2):
        expected = expected + weights[:, h, :, None] * add[:, h, None, :]
    torch.testing.assert_close(memory_write(memory, weights, erase, add), expected, **TOL)
    one = memory_write(memory, weights[:, :1], erase[:, :1], add[:, :1])  # the single-head fast path
    expected_one = (
        memory * (1 - weights[:, 0, :, None] * erase[:, 0, None, :]) + weights[:, 0, :, None] * add[:, 0, None]
    )
    torch.testing.assert_close(one, expected_one, **TOL)
    torch.testing.assert_close(memory_read(memory, weights), torch.einsum("bhn,bnw->bhw", weights, memory), **TOL)


def test_a_written_vector_is_read_back_by_a_sharp_content_key():
    memory = torch.randn(1, 8, 6)
    vector = torch.randn(1, 1, 6)
    weights = F.one_hot(torch.tensor([[5]]), 8).float()  # (1, 1, 8): write row 5 only
    memory = memory_write(memory, weights, torch.ones(1, 1, 6), vector)
    assert torch.equal(memory[0, 5], vector[0, 0])
    read = memory_read(memory, content_weighting(memory, vector, torch.tensor([[200.0]])))
    torch.testing.assert_close(read, vector, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- DNC memory


def test_allocation_of_a_hand_computed_usage_vector():
    usage = torch.tensor([[0.4, 0.1, 0.9, 0.2]], dtype=torch.float64)
    # sorted by usage: rows 1 (0.1), 3 (0.2), 0 (0.4), 2 (0.9); a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i]
    expected = torch.tensor([[0.6 * 0.1 * 0.2, 0.9, 0.1 * 0.1 * 0.2 * 0.4, 0.8 * 0.1]], dtype=torch.float64)
    allocation = allocation_weighting(usage)
    torch.testing.assert_close(allocation, expected, **TOL)
    torch.testing.assert_close(allocation.sum(), 1 - usage.prod(), **TOL)
    fresh = allocation_weighting(torch.zeros(2, 5))  # ties: the first free row in index order, all of the weight
    assert torch.equal(fresh, F.one_hot(torch.zeros(2, dtype=torch.long), 5).float())


def test_allocation_gradient_flows_through_the_usage_values_not_the_sort():
    usage = torch.tensor([[0.4, 0.1, 0.9, 0.2], [0.3, 0.8, 0.05, 0.6]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(allocation_weighting, (usage,))  # distinct usages: the sort is locally constant
    (grad,) = torch.autograd.grad(allocation_weighting(usage)[0, 3], usage)  # a[3] = (1 - u_3) u_1 by hand
    expected = torch.zeros_like(usage)
    expected[0, 3], expected[0, 1] = -0.1, 1 - 0.2
    torch.testing.assert_close(grad, expected, **TOL)


def test_usage_retention_and_precedence_follow_the_papers_equations():
    usage, write = torch.rand(2, 5, dtype=torch.float64), torch.rand(2, 5, dtype=torch.float64) / 5
    free, reads = torch.rand(2, 3, dtype=torch.float64), torch.softmax(torch.randn(2, 3, 5, dtype=torch.float64), -1)
    psi = torch.ones(2, 5, dtype=torch.float64)
    for i in range(3):
        psi = psi * (1 - free[:, i, None] * reads[:, i])
    torch.testing.assert_close(retention(free, reads), psi, **TOL)
    torch.testing.assert_close(update_usage(usage, write, psi), (usage + write - usage * write) * psi, **TOL)
    precedence = torch.rand(2, 5, dtype=torch.float64) / 5
    torch.testing.assert_close(
        update_precedence(precedence, write), (1 - write.sum(-1, keepdim=True)) * precedence + write, **TOL
    )


def test_link_matrix_update_against_the_papers_equation():
    N = 5
    link = torch.rand(2, N, N, dtype=torch.float64) * (1 - torch.eye(N, dtype=torch.float64))
    precedence, write = torch.rand(2, N, dtype=torch.float64) / N, torch.rand(2, N, dtype=torch.float64) / N
    expected = torch.zeros_like(link)
    for i in range(N):
        for j in range(N):
            if i != j:
                expected[:, i, j] = (1 - write[:, i] - write[:, j]) * link[:, i, j] + write[:, i] * precedence[:, j]
    torch.testing.assert_close(update_link(link, precedence, write), expected, **TOL)
    reads = torch.softmax(torch.randn(2, 3, N, dtype=torch.float64), -1)
    forward, backward = directional_weightings(expected, reads)
    torch.testing.assert_close(forward, torch.einsum("bij,brj->bri", expected, reads), **TOL)
    torch.testing.assert_close(backward, torch.einsum("bij,bri->brj", expected, reads), **TOL)


def test_links_remember_the_order_of_writes():
    N = 6
    link, precedence = torch.zeros(1, N, N), torch.zeros(1, N)
    for row in (2, 0, 3):  # write rows 2, 0, 3 in turn
        write = F.one_hot(torch.tensor([row]), N).float()
        link = update_link(link, precedence, write)
        precedence = update_precedence(precedence, write)
    expected = torch.zeros(N, N)
    expected[0, 2] = expected[3, 0] = 1.0  # L[i, j] = 1: i was written right after j
    assert torch.equal(link[0], expected) and torch.equal(precedence[0], F.one_hot(torch.tensor(3), N).float())
    forward, backward = directional_weightings(link, F.one_hot(torch.tensor([[0]]), N).float())
    assert forward[0, 0].argmax() == 3 and backward[0, 0].argmax() == 2  # after row 0 came 3; before it, 2


# ---------------------------------------------------------------- models


def _models() -> dict[str, torch.nn.Module]:
    return {
        "ntm": NTM(5, 4, controller_size=12, memory_slots=10, memory_width=6, read_heads=2, write_heads=2),
        "dnc": DNC(5, 4, controller_size=12, memory_slots=10, memory_width=6, read_heads=2),
        "lstm": LSTMBaseline(5, 4, hidden_size=12, num_layers=2),
    }


@pytest.mark.parametrize("name", ["ntm", "dnc", "lstm"])
def test_models_map_sequences_to_logits_and_every_parameter_learns(name):
    model = _models()[name]
    x = torch.randn(3, 7, 5)
    logits = model(x)
    assert logits.shape == (3, 7, 4) and torch.isfinite(logits).all()
    logits.pow(2).sum().backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent
    with pytest.raises(ValueError, match="expects input of shape"):
        model(torch.randn(3, 7, 6))


@pytest.mark.parametrize("name", ["ntm", "dnc"])
def test_memory_networks_return_their_weightings(name):
    model = _models()[name]
    x = torch.randn(3, 7, 5)
    logits, weightings = model(x, return_weightings=True)
    heads = 2 if name == "ntm" else 1
    assert weightings["read"].shape == (3, 7, 2, 10) and weightings["write"].shape == (3, 7, heads, 10)
    assert torch.equal(logits, model(x))
    if name == "ntm":  # every NTM weighting is a distribution over the rows
        torch.testing.assert_close(weightings["read"].sum(-1), torch.ones(3, 7, 2))
    else:  # DNC weightings sum to at most 1 (the gates)
        assert (weightings["write"].sum(-1) <= 1 + 1e-5).all() and (weightings["read"].sum(-1) <= 1 + 1e-5).all()


def test_registered_models_and_reprs():
    assert isinstance(create_model("ntm"), NTM) and isinstance(create_model("dnc"), DNC)
    assert isinstance(create_model("lstm_copy_baseline"), LSTMBaseline)
    assert create_model("ntm")(torch.zeros(2, 3, 9)).shape == (2, 3, 8)
    assert "slots=128, width=20, read_heads=1, write_heads=1, shift_range=1" in repr(NTMMemory(100))
    assert "slots=16, width=4, read_heads=3" in repr(DNCMemory(8, 16, 4, 3))


# ---------------------------------------------------------------- data


def _data(**kwargs) -> AlgorithmicDataModule:
    data = AlgorithmicDataModule(**{"test_lengths": (4, 9), "test_size": 5, "eval_batch_size": 3, **kwargs})
    data.setup()
    return data


def test_copy_format():
    data = _data(width=8)
    inputs, targets, mask = data.make_batch(np.random.default_rng(0), 4, length=6)
    assert inputs.shape == (4, 13, 9) and targets.shape == (4, 13, 8) and mask.shape == (4, 13)
    assert (data.input_size, data.output_size) == (9, 8)
    assert torch.equal(inputs[:, :, 8], F.one_hot(torch.tensor(6), 13).float().expand(4, 13))  # delimiter after L
    assert torch.equal(targets[:, 7:], inputs[:, :6, :8])  # the output period repeats the input
    assert torch.equal(mask, (torch.arange(13) >= 7).float().expand(4, 13))
    assert inputs[:, 6:, :8].abs().sum() == 0 and targets[:, :7].abs().sum() == 0


def test_repeat_copy_format():
    data = _data(task="repeat_copy", width=4, min_repeats=1, max_repeats=4)
    inputs, targets, mask = data.make_batch(np.random.default_rng(0), 2, length=3, repeats=2)
    assert inputs.shape == (2, 3 + 1 + 6 + 1, 6) and targets.shape == (2, 11, 5)
    assert inputs[0, 3, 4] == 1 and inputs[0, 3, 5] == pytest.approx((2 - 2.5) / math.sqrt(1.25))  # mean 0, var 1
    assert torch.equal(targets[:, 4:10, :4], inputs[:, :3, :4].repeat(1, 2, 1))
    assert torch.equal(targets[:, :, 4], F.one_hot(torch.tensor(10), 11).float().expand(2, 11))  # the end marker
    assert torch.equal(mask, (torch.arange(11) >= 4).float().expand(2, 11))
    assert data.test_names == ["len4_rep4", "len9_rep4"]


def test_associative_recall_answer_is_the_item_after_the_query():
    data = _data(task="associative_recall", width=6, min_len=2, max_len=6)
    inputs, targets, mask = data.make_batch(np.random.default_rng(1), 16, length=5)
    assert inputs.shape == (16, 4 * 5 + 8, 8) and (data.input_size, data.output_size) == (8, 6)
    for x, y, m in zip(inputs, targets, mask, strict=True):
        assert torch.equal(torch.nonzero(x[:, 6]).flatten(), torch.arange(0, 20, 4))  # item delimiters
        assert torch.equal(torch.nonzero(x[:, 7]).flatten(), torch.tensor([20, 24]))  # query delimiters
        items = [x[4 * i + 1 : 4 * i + 4, :6] for i in range(5)]
        query = x[21:24, :6]
        position = next(i for i, item in enumerate(items) if torch.equal(item, query))
        assert position < 4 and torch.equal(y[-3:], items[position + 1])
        assert torch.equal(m, (torch.arange(28) >= 25).float()) and y[:-3].abs().sum() == 0


def test_batches_are_reproducible_and_test_sets_fixed():
    data, again = _data(), _data()
    assert data.test_names == ["len4", "len9"]
    for a, b in zip(data.test_sets["len9"], again.test_sets["len9"], strict=True):
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    sizes = [len(batch[0]) for batch in data.test_sets["len9"]]
    assert sizes == [3, 2] and data.test_sets["len9"][0][0].shape[1] == 19
    assert torch.equal(data.train_set[3][0], again.train_set[3][0])
    assert not torch.equal(data.train_set[0][0][:, :1], data.train_set[1][0][:, :1])
    lengths = {(data.train_set[i][0].shape[1] - 1) // 2 for i in range(60)}
    assert lengths <= set(range(1, 21)) and len(lengths) > 10


def test_data_rejects_bad_settings():
    with pytest.raises(ConfigError, match="task must be one of"):
        AlgorithmicDataModule(task="sort")
    with pytest.raises(ConfigError, match="min_len <= max_len"):
        AlgorithmicDataModule(task="associative_recall", min_len=1)


# ---------------------------------------------------------------- module


def test_costs_in_bits_and_wrong_bits():
    targets = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # (1, 3, 2)
    mask = torch.tensor([[0.0, 1.0, 1.0]])
    bits, errors = sequence_costs(torch.zeros(1, 3, 2), targets, mask)
    assert bits.item() == pytest.approx(4.0)  # four output bits at p = 0.5: one bit each
    logits = torch.tensor([[[-5.0, 5.0], [3.0, 2.0], [1.0, -1.0]]])  # step 0 is outside the output period
    _, errors = sequence_costs(logits, targets, mask)
    assert errors.item() == 2.0  # step 1: the first bit; step 2: the second bit


def test_module_checks_the_network_against_the_data():
    module = AlgorithmicTaskModule(NTM(5, 4, controller_size=8, memory_slots=8, memory_width=4))
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, max_steps=1)
    with pytest.raises(ConfigError, match="input_size"):
        trainer.fit(module, datamodule=AlgorithmicDataModule(train_batches=1, val_batches=1))


def test_ntm_learns_to_copy_and_writes_its_plots(tmp_path):
    data = AlgorithmicDataModule(
        width=4,
        min_len=1,
        max_len=4,
        test_lengths=(4, 8),
        test_size=16,
        train_batches=600,
        val_batches=2,
        batch_size=16,
        eval_batch_size=16,
    )
    network = NTM(5, 4, controller_size=32, memory_slots=12, memory_width=8)
    module = AlgorithmicTaskModule(network, optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    trainer = pl.Trainer(
        logger=CSVLogger(tmp_path),
        max_epochs=1,
        gradient_clip_val=10,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    trainer.validate(module, datamodule=data, verbose=False)
    before = trainer.callback_metrics["val/bits_per_sequence"].item()
    trainer.fit(module, datamodule=data)
    after = trainer.callback_metrics["val/bits_per_sequence"].item()
    assert before > 9 and after < before / 10  # chance is 10 bits (lengths 1-4 of 4 bits); it drops below 1
    results = trainer.test(module, datamodule=data, verbose=False)[0]
    assert {"test/bit_error_len4", "test/bits_per_sequence_len8", "test/perfect_len4"} <= set(results)
    assert results["test/bit_error_len4"] < 16 * 0.25  # under a quarter of the 4 x 4 bits wrong
    written = {p.name for p in Path(trainer.log_dir).iterdir()}
    assert {
        "length_generalisation.csv",
        "length_generalisation.png",
        "learning_curve.png",
        "memory_access_len4.png",
    } <= written
