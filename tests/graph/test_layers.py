"""paperzoo.graph.layers against PyTorch Geometric 2.8 and against the papers' equations.

Parity: every layer loads the randomly initialised PyG layer's state dict as it is (strict: the parameter names are
PyG's) and gives the same outputs, attention weights and gradients (of the node and edge inputs and of every
parameter, matched by name, for a random cotangent) within ``TOL[dtype]``. The graphs have an isolated node, a node
without incoming edges, existing self-loops (one node with two) and duplicate edges, so the self-loop and multi-edge
conventions are compared too. Invariants: permuting the nodes permutes every layer's output and leaves Set2Set's
unchanged; the attention of each node sums to one; GCN equals its dense formula.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import torch_geometric.nn as pyg_nn
import torch_geometric.utils as pyg_utils
from torch import Tensor, nn

from paperzoo.graph.layers import (
    GATConv,
    GATv2Conv,
    GCNConv,
    NNConv,
    SAGEConv,
    Set2Set,
    add_remaining_self_loops,
    add_self_loops,
    degree,
    gcn_norm,
    remove_self_loops,
    scatter_max,
    scatter_mean,
    scatter_sum,
    segment_softmax,
    to_edge_index,
)

# Float64 differs from PyG only by summation order (a few ulps); float32 by the rounding of those reorderings.
TOL = {torch.float64: {"rtol": 1e-10, "atol": 1e-10}, torch.float32: {"rtol": 1e-5, "atol": 1e-5}}
DTYPES = [torch.float64, torch.float32]

NUM_NODES, IN, OUT, EDGE_DIM = 8, 5, 4, 3
ISOLATED, NO_INCOMING = 7, 6


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def tiny_graph(seed: int = 0) -> Tensor:
    """A random directed graph on 8 nodes: node 7 touches no edge, node 6 only sends, node 2 has two self-loops and
    node 4 one, and three edges appear twice. The columns are shuffled so no case sits at a fixed position."""
    g = torch.Generator().manual_seed(seed)
    random_edges = torch.stack([torch.randint(0, 7, (16,), generator=g), torch.randint(0, 6, (16,), generator=g)])
    random_edges, _ = remove_self_loops(random_edges)
    loops = torch.tensor([[2, 2, 4], [2, 2, 4]])
    edge_index = torch.cat([random_edges, loops, random_edges[:, :3]], dim=1)
    edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=g)]
    source, target = edge_index
    assert not ((source == ISOLATED) | (target == ISOLATED)).any() and not (target == NO_INCOMING).any()
    assert (source == target).sum() == 3
    assert len({tuple(e) for e in edge_index.t().tolist()}) < edge_index.size(1)  # duplicates
    return edge_index


def _leaves(*tensors: Tensor) -> list[Tensor]:
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def _as_list(out: Tensor | tuple) -> list[Tensor]:
    """The float tensors of a layer's output; attention's (edge_index, alpha) contributes alpha (edge_index is
    compared separately)."""
    if isinstance(out, Tensor):
        return [out]
    out, (_, alpha) = out
    return [out, alpha]


def assert_parity(
    ours: nn.Module,
    ref: nn.Module,
    call: Callable[..., Tensor | tuple],
    inputs: list[Tensor],
    dtype: torch.dtype,
    call_ref: Callable[..., Tensor | tuple] | None = None,
) -> None:
    """Load ``ref``'s weights into ``ours`` (strict), run ``call(module, *inputs)`` on both and compare the outputs and
    the gradients of the inputs and of every parameter."""
    ref = ref.to(dtype)
    ours = ours.to(dtype)
    ours.load_state_dict(ref.state_dict())
    inputs = [t.to(dtype) for t in inputs]
    leaves_ours, leaves_ref = _leaves(*inputs), _leaves(*inputs)
    raw_ours, raw_ref = call(ours, *leaves_ours), (call_ref or call)(ref, *leaves_ref)
    if isinstance(raw_ref, tuple):  # attention weights: the same edges, in the same order
        assert torch.equal(raw_ours[1][0], raw_ref[1][0])
    out_ours, out_ref = _as_list(raw_ours), _as_list(raw_ref)
    for i, (a, b) in enumerate(zip(out_ours, out_ref, strict=True)):
        torch.testing.assert_close(a, b, **TOL[dtype], msg=lambda m, i=i: f"output {i}: {m}")
    cotangents = [torch.randn_like(b) for b in out_ref]
    names = [name for name, _ in ours.named_parameters()]
    ref_params = dict(ref.named_parameters())
    assert sorted(names) == sorted(ref_params)
    grads_ours = torch.autograd.grad(out_ours, [*leaves_ours, *ours.parameters()], cotangents)
    grads_ref = torch.autograd.grad(out_ref, [*leaves_ref, *(ref_params[n] for n in names)], cotangents)
    labels = [f"input {i}" for i in range(len(inputs))] + names
    for label, a, b in zip(labels, grads_ours, grads_ref, strict=True):
        torch.testing.assert_close(a, b, **TOL[dtype], msg=lambda m, label=label: f"gradient of {label}: {m}")


def permuted(perm: Tensor, x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    """The same graph with node ``k`` of the new order being node ``perm[k]`` of the old one."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    return x[perm], inverse[edge_index]


# ------------------------------------------------------------------------------------------------------------- utils


def test_segment_softmax_matches_pyg_and_a_per_group_softmax() -> None:
    index = tiny_graph()[1]
    scores = 1e3 * torch.randn(index.numel(), 3, dtype=torch.float64)  # exp(1e3) overflows without the shift
    out = segment_softmax(scores, index, NUM_NODES)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, pyg_utils.softmax(scores, index, num_nodes=NUM_NODES), rtol=1e-12, atol=1e-12)
    for node in index.unique():
        members = index == node
        torch.testing.assert_close(out[members], torch.softmax(scores[members], dim=0))
    sums = scatter_sum(out, index, NUM_NODES)[index.unique()]
    torch.testing.assert_close(sums, torch.ones_like(sums))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_scatter_reductions_match_pyg_with_empty_groups(reduce) -> None:
    ours = {"sum": scatter_sum, "mean": scatter_mean, "max": scatter_max}[reduce]
    index = tiny_graph()[1]  # nodes 6 and 7 receive nothing
    src = torch.randn(index.numel(), 2, 3, dtype=torch.float64)
    expected = pyg_utils.scatter(src, index, dim=0, dim_size=NUM_NODES, reduce=reduce)
    out = ours(src, index, NUM_NODES)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert (out[[NO_INCOMING, ISOLATED]] == 0).all()


def test_self_loop_utilities_match_pyg() -> None:
    edge_index = tiny_graph()
    weight = torch.rand(edge_index.size(1), dtype=torch.float64)
    weight[(edge_index[0] == 2) & (edge_index[1] == 2)] = 0.5  # PyG keeps the last of several loops: make it moot
    for ours, ref in zip(
        remove_self_loops(edge_index, weight), pyg_utils.remove_self_loops(edge_index, weight), strict=True
    ):
        assert torch.equal(ours, ref)
    for ours, ref in zip(
        add_self_loops(edge_index, weight, 2.0, NUM_NODES),
        pyg_utils.add_self_loops(edge_index, weight, 2.0, NUM_NODES),
        strict=True,
    ):
        assert torch.equal(ours, ref)
    ours = add_remaining_self_loops(edge_index, weight, 2.0, NUM_NODES)
    ref = pyg_utils.add_remaining_self_loops(edge_index, weight, 2.0, NUM_NODES)
    assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])
    loop_weights = ours[1][-NUM_NODES:]
    assert loop_weights[2] == 0.5 and loop_weights[4] == weight[(edge_index[0] == 4) & (edge_index[1] == 4)]
    assert loop_weights[ISOLATED] == 2.0
    assert torch.equal(degree(edge_index[1], NUM_NODES), pyg_utils.degree(edge_index[1], NUM_NODES))


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")
def test_to_edge_index_reads_adj_i_j_as_an_edge_from_j_to_i() -> None:
    adj = torch.zeros(3, 3)
    adj[2, 0] = 5.0  # the edge 0 -> 2
    adj[1, 2] = 7.0  # the edge 2 -> 1
    for sparse in (adj.to_sparse_coo(), adj.to_sparse_csr()):
        edge_index, weight = to_edge_index(sparse)
        assert edge_index.tolist() == [[2, 0], [1, 2]] and weight.tolist() == [7.0, 5.0]


# --------------------------------------------------------------------------------------------------------------- GCN


def _gcn_call(module: nn.Module, x: Tensor, edge_weight: Tensor | None = None) -> Tensor:
    return module(x, tiny_graph(), edge_weight)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("improved", "add_loops", "normalize"), [(False, True, True), (True, True, True), (False, False, True)]
)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_gcn_matches_pyg(dtype, improved, add_loops, normalize, weighted, bias) -> None:
    ref = pyg_nn.GCNConv(IN, OUT, improved=improved, add_self_loops=add_loops, normalize=normalize, bias=bias)
    ours = GCNConv(IN, OUT, improved=improved, add_self_loops=add_loops, normalize=normalize, bias=bias)
    x = torch.randn(NUM_NODES, IN)
    if weighted:
        assert_parity(ours, ref, _gcn_call, [x, torch.rand(tiny_graph().size(1)) + 0.1], dtype)
    else:
        # PyG 2.8 ignores `improved` without edge weights (its added loops get weight 1, not 2); with explicit ones it
        # applies it, and ours without weights equals that
        ones = torch.ones(tiny_graph().size(1), dtype=dtype)
        assert_parity(ours, ref, _gcn_call, [x], dtype, call_ref=lambda m, x: _gcn_call(m, x, ones))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gcn_without_normalisation_matches_pyg(dtype) -> None:
    ref = pyg_nn.GCNConv(IN, OUT, add_self_loops=False, normalize=False)
    ours = GCNConv(IN, OUT, add_self_loops=False, normalize=False)
    assert_parity(ours, ref, _gcn_call, [torch.randn(NUM_NODES, IN), torch.rand(tiny_graph().size(1))], dtype)


def test_gcn_equals_the_dense_renormalised_formula() -> None:
    """Eq. 8 with dense matrices, on the graph without its self-loops (where A + I is unambiguous); duplicate edges
    count twice in A, as a multigraph's adjacency does."""
    edge_index, _ = remove_self_loops(tiny_graph())
    layer = GCNConv(IN, OUT).double()
    nn.init.normal_(layer.bias)
    x = torch.randn(NUM_NODES, IN, dtype=torch.float64)
    adj = torch.zeros(NUM_NODES, NUM_NODES, dtype=torch.float64)
    adj.index_put_((edge_index[1], edge_index[0]), torch.ones(edge_index.size(1), dtype=torch.float64), accumulate=True)
    for improved, fill in [(False, 1.0), (True, 2.0)]:
        layer.improved = improved
        a_tilde = adj + fill * torch.eye(NUM_NODES, dtype=torch.float64)
        d_inv_sqrt = a_tilde.sum(dim=1).pow(-0.5)
        expected = d_inv_sqrt[:, None] * a_tilde * d_inv_sqrt[None, :] @ x @ layer.lin.weight.t() + layer.bias
        torch.testing.assert_close(layer(x, edge_index), expected)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_gcn_sparse_adjacency_equals_edge_index(layout) -> None:
    edge_index = tiny_graph()
    weight = torch.rand(edge_index.size(1), dtype=torch.float64) + 0.1
    weight[(edge_index[0] == 2) & (edge_index[1] == 2)] = 0.5  # the two loops on node 2 sum to one entry of 1.0
    # adj[i, j]: the edge j -> i
    adj = torch.sparse_coo_tensor(edge_index.flip(0), weight, (NUM_NODES, NUM_NODES), check_invariants=True)
    adj = adj.coalesce() if layout == "coo" else adj.to_sparse_csr()
    layer = GCNConv(IN, OUT).double()
    x = torch.randn(NUM_NODES, IN, dtype=torch.float64)
    x_dense, x_sparse = _leaves(x, x)
    # the edge_index path with the sparse matrix's merged entries: duplicate edges summed, node 2's loops one of 1.0
    merged_index, merged_weight = remove_self_loops(edge_index, weight)
    merged_index = torch.cat([merged_index, torch.tensor([[2, 4], [2, 4]])], dim=1)
    loop_4 = weight[(edge_index[0] == 4) & (edge_index[1] == 4)]
    merged_weight = torch.cat([merged_weight, torch.tensor([1.0], dtype=torch.float64), loop_4])
    out_dense, out_sparse = layer(x_dense, merged_index, merged_weight), layer(x_sparse, adj)
    torch.testing.assert_close(out_sparse, out_dense)
    cotangent = torch.randn_like(out_dense)
    out_dense.backward(cotangent)
    out_sparse.backward(cotangent)
    torch.testing.assert_close(x_sparse.grad, x_dense.grad)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")
@pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled")  # inside PyG's gcn_norm
def test_gcn_sparse_adjacency_matches_pyg_sparse_without_self_loops() -> None:
    """PyG's own torch.sparse path adds I on top of A even where A has a loop; on a loop-free graph both agree."""
    edge_index, _ = remove_self_loops(tiny_graph())
    weight = torch.ones(edge_index.size(1), dtype=torch.float64)
    adj = torch.sparse_coo_tensor(edge_index.flip(0), weight, (NUM_NODES, NUM_NODES), check_invariants=True)
    adj = adj.to_sparse_csr()
    ref = pyg_nn.GCNConv(IN, OUT).double()
    ours = GCNConv(IN, OUT).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(NUM_NODES, IN, dtype=torch.float64)
    torch.testing.assert_close(ours(x, adj), ref(x, adj), **TOL[torch.float64])


def test_gcn_cached_normalises_the_first_graph_only() -> None:
    ours, ref = GCNConv(IN, OUT, cached=True).double(), pyg_nn.GCNConv(IN, OUT, cached=True).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(NUM_NODES, IN, dtype=torch.float64)
    first, other = tiny_graph(0), tiny_graph(1)
    expected = GCNConv(IN, OUT).double().requires_grad_(False)
    expected.load_state_dict(ref.state_dict())
    for layer in (ours, ref):
        layer(x, first)
        torch.testing.assert_close(layer(x, other), expected(x, first))
    ours.reset_parameters()
    ours.load_state_dict(ref.state_dict())
    torch.testing.assert_close(ours(x, other), expected(x, other))


# --------------------------------------------------------------------------------------------------------------- GAT

ATTENTION = {"gat": (GATConv, pyg_nn.GATConv), "gatv2": (GATv2Conv, pyg_nn.GATv2Conv)}
ATTENTION_CONFIGS = [
    {"heads": 1},
    {"heads": 3},
    {"heads": 3, "concat": False},
    {"heads": 2, "add_self_loops": False},
    {"heads": 2, "bias": False, "negative_slope": 0.1},
]


def _attention_call(module: nn.Module, x: Tensor) -> tuple:
    return module(x, tiny_graph(), return_attention_weights=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", ATTENTION_CONFIGS, ids=str)
@pytest.mark.parametrize("kind", ["gat", "gatv2", "gatv2_shared"])
def test_attention_matches_pyg_with_attention_weights(dtype, config, kind) -> None:
    ours_cls, ref_cls = ATTENTION[kind.removesuffix("_shared")]
    if kind == "gatv2_shared":
        config = {**config, "share_weights": True}
    ref = ref_cls(IN, OUT, dropout=0.3, **config).eval()
    ours = ours_cls(IN, OUT, dropout=0.3, **config).eval()
    assert_parity(ours, ref, _attention_call, [torch.randn(NUM_NODES, IN)], dtype)


@pytest.mark.parametrize("kind", ["gat", "gatv2"])
def test_attention_dropout_in_training_matches_pyg_under_the_same_seed(kind) -> None:
    """The attention coefficients are the only random draw, of the same shape in both, so one seed gives one mask."""
    ours_cls, ref_cls = ATTENTION[kind]
    ref, ours = ref_cls(IN, OUT, heads=2, dropout=0.5).double(), ours_cls(IN, OUT, heads=2, dropout=0.5).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(NUM_NODES, IN, dtype=torch.float64)
    outputs = []
    for layer in (ours, ref):
        torch.manual_seed(1)
        outputs.append(layer(x, tiny_graph(), return_attention_weights=True))
    (out, (_, alpha)), (out_ref, (_, alpha_ref)) = outputs
    assert (alpha == 0).any()  # dropout did drop
    torch.testing.assert_close(alpha, alpha_ref, **TOL[torch.float64])
    torch.testing.assert_close(out, out_ref, **TOL[torch.float64])


@pytest.mark.parametrize("kind", ["gat", "gatv2"])
def test_attention_over_each_neighbourhood_sums_to_one(kind) -> None:
    layer = ATTENTION[kind][0](IN, OUT, heads=3).double()
    _, (edge_index, alpha) = layer(torch.randn(NUM_NODES, IN, dtype=torch.float64), tiny_graph(), True)
    # one loop per node, after the graph's edges without its loops
    assert (edge_index[0] == edge_index[1]).sum() == NUM_NODES
    assert edge_index[:, -NUM_NODES:].tolist() == [list(range(NUM_NODES))] * 2
    torch.testing.assert_close(scatter_sum(alpha, edge_index[1], NUM_NODES), torch.ones(NUM_NODES, 3).double())


@pytest.mark.parametrize("kind", ["gat", "gatv2"])
def test_attention_without_edges_is_a_linear_layer(kind) -> None:
    """With only its self-loop a node attends to itself with weight 1: x W (+ b), averaged over heads."""
    layer = ATTENTION[kind][0](IN, OUT, heads=2, concat=False).double()
    nn.init.normal_(layer.bias)
    x = torch.randn(NUM_NODES, IN, dtype=torch.float64)
    lin = layer.lin if kind == "gat" else layer.lin_l
    expected = lin(x).view(NUM_NODES, 2, OUT).mean(dim=1) + layer.bias
    torch.testing.assert_close(layer(x, torch.empty(2, 0, dtype=torch.long)), expected)


# -------------------------------------------------------------------------------------------------------- GraphSAGE


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize(("root_weight", "bias"), [(True, True), (False, True), (True, False)])
def test_sage_matches_pyg(dtype, normalize, root_weight, bias) -> None:
    config = {"normalize": normalize, "root_weight": root_weight, "bias": bias}
    ref, ours = pyg_nn.SAGEConv(IN, OUT, aggr="mean", **config), SAGEConv(IN, OUT, **config)
    assert_parity(ours, ref, lambda m, x: m(x, tiny_graph()), [torch.randn(NUM_NODES, IN)], dtype)


# ------------------------------------------------------------------------------------------------ NNConv and Set2Set


def _edge_network() -> nn.Module:
    return nn.Sequential(nn.Linear(EDGE_DIM, 6), nn.ReLU(), nn.Linear(6, IN * OUT))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("aggr", ["add", "mean"])
@pytest.mark.parametrize(("root_weight", "bias"), [(True, True), (False, False)])
def test_nnconv_matches_pyg(dtype, aggr, root_weight, bias) -> None:
    edge_network = _edge_network()
    ref = pyg_nn.NNConv(IN, OUT, edge_network, aggr=aggr, root_weight=root_weight, bias=bias)
    ours = NNConv(IN, OUT, copy.deepcopy(edge_network), aggr=aggr, root_weight=root_weight, bias=bias)
    edge_attr = torch.randn(tiny_graph().size(1), EDGE_DIM)
    assert_parity(ours, ref, lambda m, x, e: m(x, tiny_graph(), e), [torch.randn(NUM_NODES, IN), edge_attr], dtype)


# graph 1 is empty and the nodes of graphs 0, 2 and 3 are interleaved
SET_BATCH = torch.tensor([2, 0, 0, 3, 2, 0, 3, 2, 2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 3])
def test_set2set_matches_pyg(dtype, steps) -> None:
    ref, ours = pyg_nn.aggr.Set2Set(IN, steps), Set2Set(IN, steps)
    x = torch.randn(SET_BATCH.numel(), IN)
    assert_parity(
        ours, ref, lambda m, x: m(x, SET_BATCH, 5), [x], dtype, call_ref=lambda m, x: m(x, SET_BATCH, dim_size=5)
    )
    assert_parity(ours, ref, lambda m, x: m(x), [x], dtype)  # one graph


def test_set2set_reads_an_empty_graph_as_zero() -> None:
    out = Set2Set(IN, 2).double()(torch.randn(SET_BATCH.numel(), IN, dtype=torch.float64), SET_BATCH, 5)
    assert (out[[1, 4], IN:] == 0).all() and (out[[0, 2, 3], IN:] != 0).all()


# ------------------------------------------------------------------------------------------------------- invariants

LAYERS: dict[str, Callable[[], tuple[nn.Module, Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]]]] = {
    "gcn": lambda: (GCNConv(IN, OUT), lambda m, x, ei, e: m(x, ei)),
    "gcn_weighted": lambda: (GCNConv(IN, OUT, improved=True), lambda m, x, ei, e: m(x, ei, e[:, 0].abs())),
    "gat": lambda: (GATConv(IN, OUT, heads=2), lambda m, x, ei, e: m(x, ei)),
    "gatv2": lambda: (GATv2Conv(IN, OUT, heads=2, concat=False), lambda m, x, ei, e: m(x, ei)),
    "sage": lambda: (SAGEConv(IN, OUT, normalize=True), lambda m, x, ei, e: m(x, ei)),
    "nnconv": lambda: (NNConv(IN, OUT, _edge_network(), aggr="mean"), lambda m, x, ei, e: m(x, ei, e)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_permuting_the_nodes_permutes_the_output(name) -> None:
    layer, call = LAYERS[name]()
    layer.double()
    for p in layer.parameters():
        nn.init.normal_(p)  # non-zero biases too
    x, edge_index = torch.randn(NUM_NODES, IN, dtype=torch.float64), tiny_graph()
    edge_attr = torch.randn(edge_index.size(1), EDGE_DIM, dtype=torch.float64)
    perm = torch.randperm(NUM_NODES)
    x_perm, edge_index_perm = permuted(perm, x, edge_index)
    torch.testing.assert_close(
        call(layer, x_perm, edge_index_perm, edge_attr), call(layer, x, edge_index, edge_attr)[perm]
    )
    # and the output is not trivially permutation-proof: nodes differ
    assert not torch.allclose(call(layer, x, edge_index, edge_attr)[perm], call(layer, x, edge_index, edge_attr))


def test_set2set_is_invariant_to_the_node_order() -> None:
    layer = Set2Set(IN, 3).double()
    x = torch.randn(SET_BATCH.numel(), IN, dtype=torch.float64)
    perm = torch.randperm(SET_BATCH.numel())
    torch.testing.assert_close(layer(x[perm], SET_BATCH[perm], 5), layer(x, SET_BATCH, 5))


# ------------------------------------------------------------------------------------------------------------- repr

REPRS = [
    (lambda: GCNConv(IN, OUT), lambda: pyg_nn.GCNConv(IN, OUT), "GCNConv(5, 4)"),
    (lambda: GATConv(IN, OUT, heads=3), lambda: pyg_nn.GATConv(IN, OUT, heads=3), "GATConv(5, 4, heads=3)"),
    (lambda: GATv2Conv(IN, OUT, heads=2), lambda: pyg_nn.GATv2Conv(IN, OUT, heads=2), "GATv2Conv(5, 4, heads=2)"),
    (lambda: SAGEConv(IN, OUT), lambda: pyg_nn.SAGEConv(IN, OUT), "SAGEConv(5, 4, aggr=mean)"),
    (lambda: Set2Set(IN, 3), lambda: pyg_nn.aggr.Set2Set(IN, 3), "Set2Set(5, 10)"),
]


@pytest.mark.parametrize(("ours", "ref", "expected"), REPRS, ids=[r[2].split("(")[0] for r in REPRS])
def test_repr_matches_pyg(ours, ref, expected) -> None:
    assert repr(ours()) == repr(ref()) == expected


def test_nnconv_repr_matches_pyg() -> None:
    edge_network = _edge_network()
    ours, ref = NNConv(IN, OUT, edge_network, aggr="mean"), pyg_nn.NNConv(IN, OUT, edge_network, aggr="mean")
    assert repr(ours) == repr(ref) and repr(ours).startswith("NNConv(5, 4, aggr=mean, nn=Sequential(")


def test_gcn_norm_degree_zero_gives_zero_not_infinity() -> None:
    """Without self-loops a node with no in-edges has degree 0; its D^-1/2 is taken as 0, so nothing is NaN."""
    _, weight = gcn_norm(tiny_graph(), num_nodes=NUM_NODES, add_self_loops=False)
    assert torch.isfinite(weight).all()
    layer = GCNConv(IN, OUT, add_self_loops=False)
    out = layer(torch.randn(NUM_NODES, IN), tiny_graph())
    assert torch.isfinite(out).all() and (out[[NO_INCOMING, ISOLATED]] == layer.bias).all()
