"""Tests for paperzoo.graph.models: registry-generated checks, the papers' configurations and parameter counts, and
learning on a tiny graph.

Every registered model is built with ``in_channels``/``out_channels`` (plus ``edge_channels`` for graph-level models)
and checked for its output shape, gradients reaching every parameter, deterministic eval mode, stochastic training
mode where it has dropout, and node-permutation equivariance (node models) or invariance (graph models).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torch_geometric.nn as pyg_nn
from torch import Tensor, nn

from paperzoo.graph.layers import GATConv, GATv2Conv
from paperzoo.graph.models import GAT
from paperzoo.graph.registry import create_model, list_models

IN, OUT, EDGE = 6, 3, 4
NUM_NODES = 12
GRAPH_SIZES = (4, 5, 3)
# builder keywords beyond in_channels and out_channels; a graph model registered without an entry here fails loudly
EXTRA_KWARGS = {"mpnn": {"edge_channels": EDGE}}


def _num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _create(name: str, **kwargs) -> nn.Module:
    return create_model(name, in_channels=IN, out_channels=OUT, **EXTRA_KWARGS.get(name, {}), **kwargs)


def _random_edges(num_nodes: int, num_edges: int, generator: torch.Generator, offset: int = 0) -> Tensor:
    """Random directed edges without self-loops among ``offset .. offset + num_nodes - 1``."""
    source = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    target = (source + torch.randint(1, num_nodes, (num_edges,), generator=generator)) % num_nodes
    return torch.stack([source, target]) + offset


def node_inputs(seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Features and edges of a 12-node undirected graph (each edge both ways, as in the citation graphs) whose last
    node is isolated."""
    g = torch.Generator().manual_seed(seed)
    one_way = _random_edges(NUM_NODES - 1, 15, g)
    return torch.randn(NUM_NODES, IN, generator=g, dtype=dtype), torch.cat([one_way, one_way.flip(0)], dim=1)


def graph_inputs(seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A batch of three small molecules-like graphs with symmetric edges: x, edge_index, edge_attr, batch."""
    g = torch.Generator().manual_seed(seed)
    edges, batch, offset = [], [], 0
    for graph, size in enumerate(GRAPH_SIZES):
        one_way = _random_edges(size, size, g, offset)
        edges += [one_way, one_way.flip(0)]
        batch.append(torch.full((size,), graph))
        offset += size
    edge_index = torch.cat(edges, dim=1)
    x = torch.randn(offset, IN, generator=g, dtype=dtype)
    edge_attr = torch.randn(edge_index.size(1), EDGE, generator=g, dtype=dtype)
    return x, edge_index, edge_attr, torch.cat(batch)


def _inputs(model: nn.Module, dtype: torch.dtype = torch.float32) -> tuple[Tensor, ...]:
    return node_inputs(dtype=dtype) if model.level == "node" else graph_inputs(dtype=dtype)


def _loss(model: nn.Module, out: Tensor) -> Tensor:
    if model.level == "node":
        return F.cross_entropy(out, torch.arange(out.size(0)) % OUT)
    return F.mse_loss(out, torch.linspace(-1, 1, out.numel()).view_as(out))


# --- every registered model ------------------------------------------------------------------------------------------


def test_registry_lists_the_papers_models() -> None:
    assert {"gcn", "gat", "gatv2", "graphsage", "mlp", "mpnn"} <= set(list_models())
    assert list_models("gat*") == ["gat", "gatv2"]
    with pytest.raises(KeyError, match="unknown model"):
        create_model("gin")


@pytest.mark.parametrize("name", list_models())
def test_forward_shape(name) -> None:
    torch.manual_seed(0)
    model = _create(name)
    assert model.level in ("node", "graph") and (model.in_channels, model.out_channels) == (IN, OUT)
    expected = (NUM_NODES, OUT) if model.level == "node" else (len(GRAPH_SIZES), OUT)
    assert model(*_inputs(model)).shape == expected


@pytest.mark.parametrize("name", list_models())
def test_backward_reaches_every_parameter(name) -> None:
    torch.manual_seed(0)
    model = _create(name).train()
    _loss(model, model(*_inputs(model))).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, f"{param_name} gets no gradient"


@pytest.mark.parametrize("name", list_models())
def test_eval_is_deterministic_and_training_uses_dropout(name) -> None:
    torch.manual_seed(0)
    model = _create(name)
    inputs = _inputs(model)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(*inputs), model(*inputs))
        if getattr(model, "dropout", 0) > 0:
            model.train()
            assert not torch.equal(model(*inputs), model(*inputs))


@pytest.mark.parametrize("name", list_models())
def test_permuting_the_nodes_permutes_node_outputs_and_keeps_graph_outputs(name) -> None:
    torch.manual_seed(0)
    model = _create(name).double().eval()
    inputs = _inputs(model, torch.float64)
    x, edge_index = inputs[:2]
    perm = torch.randperm(x.size(0))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    with torch.no_grad():
        out = model(*inputs)
        if model.level == "node":
            torch.testing.assert_close(model(x[perm], inverse[edge_index]), out[perm])
            assert not torch.allclose(out[perm], out)
        else:
            edge_attr, batch = inputs[2:]
            torch.testing.assert_close(model(x[perm], inverse[edge_index], edge_attr, batch[perm]), out)


NODE_MODELS = [n for n in list_models() if _create(n).level == "node"]


@pytest.mark.parametrize("name", NODE_MODELS)
def test_node_models_use_the_graph_except_the_mlp(name) -> None:
    torch.manual_seed(0)
    model = _create(name).eval()
    x, edge_index = node_inputs()
    with torch.no_grad():
        same = torch.allclose(model(x, edge_index), model(x, node_inputs(seed=1)[1]))
    assert same == (name == "mlp")


@pytest.mark.parametrize("name", NODE_MODELS)
def test_node_models_overfit_a_tiny_graph(name) -> None:
    """Random labels on 12 nodes with random features: 150 full-batch Adam steps with dropout off cut the
    cross-entropy by at least 20x."""
    torch.manual_seed(0)
    model = _create(name, dropout=0.0)
    x, edge_index = node_inputs()
    y = torch.randint(0, OUT, (NUM_NODES,), generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, edge_index), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 20, (losses[0], losses[-1])


def test_mpnn_overfits_three_graphs() -> None:
    """Three regression targets on three graphs: 100 Adam steps cut the squared error by at least 100x."""
    torch.manual_seed(0)
    model = _create("mpnn", hidden_channels=16)
    inputs = graph_inputs()
    y = torch.randn(len(GRAPH_SIZES), OUT)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        loss = F.mse_loss(model(*inputs), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100, (losses[0], losses[-1])


def test_mpnn_reads_each_graph_alone_as_in_the_batch() -> None:
    """Graphs do not leak into each other: the batched output equals each graph run on its own."""
    torch.manual_seed(0)
    model = _create("mpnn").eval()
    x, edge_index, edge_attr, batch = graph_inputs()
    with torch.no_grad():
        out = model(x, edge_index, edge_attr, batch)
        for graph in range(len(GRAPH_SIZES)):
            nodes = (batch == graph).nonzero().squeeze(1)
            edges = batch[edge_index[0]] == graph
            alone = model(x[nodes], edge_index[:, edges] - nodes[0], edge_attr[edges])
            torch.testing.assert_close(alone, out[graph : graph + 1], rtol=1e-5, atol=1e-5)


# --- the papers' configurations --------------------------------------------------------------------------------------

CORA_FEATURES, CORA_CLASSES = 1433, 7


def test_gat_has_the_papers_parameter_count_on_cora() -> None:
    """Velickovic et al. 2018, section 3.3: 8 heads of 8 features, then one output head; 92,373 parameters."""
    model = create_model("gat", in_channels=CORA_FEATURES, out_channels=CORA_CLASSES)
    heads, hidden = 8, 8
    # per layer: W (F_in x H*C), the two halves of a (2 x H*C), the bias (H*C concatenated, C averaged)
    layer1 = CORA_FEATURES * heads * hidden + 2 * heads * hidden + heads * hidden
    layer2 = heads * hidden * CORA_CLASSES + 2 * CORA_CLASSES + CORA_CLASSES
    assert _num_params(model) == layer1 + layer2 == 92_373
    assert isinstance(model.conv1, GATConv) and (model.conv1.heads, model.conv1.out_channels) == (8, 8)
    assert model.conv1.concat and not model.conv2.concat and model.conv2.heads == 1
    assert model.conv1.dropout == model.conv2.dropout == model.dropout == 0.6


def test_gat_pubmed_configuration_averages_eight_output_heads() -> None:
    model = create_model("gat", in_channels=500, out_channels=3, output_heads=8)
    assert (model.conv2.heads, model.conv2.concat) == (8, False)
    assert _num_params(model.conv2) == 64 * 8 * 3 + 2 * 8 * 3 + 3
    x = torch.randn(5, 500)
    assert model.eval()(x, torch.tensor([[0, 1, 2], [1, 2, 3]])).shape == (5, 3)


def test_gatv2_is_gat_with_gatv2_layers() -> None:
    model = create_model("gatv2", in_channels=CORA_FEATURES, out_channels=CORA_CLASSES)
    assert isinstance(model, GAT) and isinstance(model.conv1, GATv2Conv) and isinstance(model.conv2, GATv2Conv)
    # per layer: W_s and W_t with biases (F_in x H*C + H*C each), a (H*C), the output bias
    layer1 = 2 * (CORA_FEATURES * 64 + 64) + 64 + 64
    layer2 = 2 * (64 * CORA_CLASSES + CORA_CLASSES) + CORA_CLASSES + CORA_CLASSES
    assert _num_params(model) == layer1 + layer2
    shared = create_model("gatv2", in_channels=CORA_FEATURES, out_channels=CORA_CLASSES, share_weights=True)
    assert _num_params(model) - _num_params(shared) == (CORA_FEATURES * 64 + 64) + (64 * CORA_CLASSES + CORA_CLASSES)


def test_gcn_is_the_papers_two_layer_network() -> None:
    """Kipf & Welling 2017, section 5.2: 16 hidden units, dropout 0.5; on Cora W0 is 1433 x 16 and W1 16 x 7."""
    model = create_model("gcn", in_channels=CORA_FEATURES, out_channels=CORA_CLASSES)
    assert _num_params(model) == (CORA_FEATURES * 16 + 16) + (16 * CORA_CLASSES + CORA_CLASSES)
    assert model.dropout == 0.5
    mlp = create_model("mlp", in_channels=CORA_FEATURES, out_channels=CORA_CLASSES)
    assert _num_params(mlp) == _num_params(model)  # the baseline differs from the GCN only in ignoring the graph


def test_mpnn_shares_its_message_function_and_update_across_passes() -> None:
    model = create_model("mpnn", in_channels=IN, edge_channels=EDGE, out_channels=OUT, message_passes=5)
    fewer = create_model("mpnn", in_channels=IN, edge_channels=EDGE, out_channels=OUT, message_passes=1)
    assert _num_params(model) == _num_params(fewer)
    assert model.message.aggr == "add" and model.message.lin is None and model.message.bias is None
    assert model.readout.processing_steps == 3


# --- the architectures written out with PyTorch Geometric's layers ---------------------------------------------------


def _pyg_copy(ours: nn.Module, ref: nn.Module) -> nn.Module:
    """``ref`` (a PyG layer) carrying ``ours``'s weights, in float64."""
    ref = ref.double()
    ref.load_state_dict(ours.state_dict())
    return ref


def _reference_forward(name: str, model: nn.Module, x: Tensor, edge_index: Tensor) -> Tensor:
    """Each paper's eval-mode equation, with PyG's layers in place of ours."""
    if name == "gcn":
        conv1 = _pyg_copy(model.conv1, pyg_nn.GCNConv(IN, 16))
        conv2 = _pyg_copy(model.conv2, pyg_nn.GCNConv(16, OUT))
        return conv2(F.relu(conv1(x, edge_index)), edge_index)
    if name in ("gat", "gatv2"):
        layer = pyg_nn.GATConv if name == "gat" else pyg_nn.GATv2Conv
        conv1 = _pyg_copy(model.conv1, layer(IN, 8, heads=8))
        conv2 = _pyg_copy(model.conv2, layer(64, OUT, heads=1, concat=False))
        return conv2(F.elu(conv1(x, edge_index)), edge_index)
    if name == "graphsage":
        conv1 = _pyg_copy(model.conv1, pyg_nn.SAGEConv(IN, 64))
        conv2 = _pyg_copy(model.conv2, pyg_nn.SAGEConv(64, OUT))
        return conv2(F.relu(conv1(x, edge_index)), edge_index)
    assert name == "mlp"
    return model.lin2(F.relu(model.lin1(x)))


@pytest.mark.parametrize("name", NODE_MODELS)
def test_node_models_equal_their_papers_equations(name) -> None:
    torch.manual_seed(0)
    model = _create(name).double().eval()
    x, edge_index = node_inputs(dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x, edge_index), _reference_forward(name, model, x, edge_index))


def test_mpnn_equals_its_papers_equations() -> None:
    """Embedding, T passes of PyG's NNConv (sum) and the GRU with tied weights, PyG's Set2Set, the two-layer head."""
    torch.manual_seed(0)
    model = _create("mpnn").double().eval()
    x, edge_index, edge_attr, batch = graph_inputs(dtype=torch.float64)
    conv = pyg_nn.NNConv(64, 64, model.message.nn, aggr="add", root_weight=False, bias=False)
    set2set = _pyg_copy(model.readout, pyg_nn.aggr.Set2Set(64, 3))
    with torch.no_grad():
        h = model.embed(x)
        for _ in range(3):
            h = model.update(conv(h, edge_index, edge_attr), h)
        expected = model.head(set2set(h, batch, dim_size=len(GRAPH_SIZES)))
        torch.testing.assert_close(model(x, edge_index, edge_attr, batch), expected)
