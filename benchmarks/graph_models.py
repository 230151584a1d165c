"""Training-step speed of paperzoo's GAT and GCN against PyTorch Geometric's layers, in one process.

Three pairs, each ours against the same architecture written with the PyTorch Geometric layer it is proved equal to
(``tests/graph/test_layers.py``), on one Cora-sized random graph:

- ``gat``: ``paperzoo.graph``'s ``GAT`` (``create_model("gat", ...)``: 8 heads x 8 features, concatenated, ELU, one
  averaged output head, dropout 0.6 on both layers' inputs and on the attention coefficients) against ``PygGAT``
  below, the same forward with ``torch_geometric.nn.GATConv``.
- ``gcn``: ``GCN`` (16 hidden units, dropout 0.5, ReLU) against ``PygGCN`` with ``torch_geometric.nn.GCNConv``;
  both normalise the graph (self-loops, degrees, edge weights) in every forward call.
- ``gcn_cached``: the same with ``cached=True`` on both sides: each layer normalises the graph on its first call and
  reuses it afterwards (transductive training on one fixed graph, as in the paper).

The graph imitates Cora (``--nodes 2708``, ``--edges 10556`` directed edges: 5278 random node pairs, each in both
directions, no self-loops, no duplicates; ``--features 1433`` binary bag-of-words features with about
``--words-per-node 18`` ones per node, each row divided by its sum, stored dense as PyG's ``NormalizeFeatures``
leaves Cora; ``--classes 7`` random labels; ``--train-nodes 140`` training nodes). A step is ``zero_grad``, the
forward pass on the whole graph in train mode, cross-entropy on the training nodes, backward and an Adam step (lr
0.005, weight decay 5e-4 on every parameter): one epoch of full-batch training.

Both sides get the same weights: the reference is built first (PyG's random initialisation) and its state dict is
loaded into ours through ``REFERENCE_TO_OURS``, an explicit map of the parameter names (our layers use PyG's names
and both models call their layers ``conv1`` and ``conv2``, so the map is the identity; the script checks that the
two key sets and every shape agree before loading strictly). Before anything is timed, each pair is checked to give
the same logits in eval mode (largest difference relative to the largest logit, at most 1e-5) and, under one seed, in
train mode: both draw their dropout masks in the same order and of the same shapes, so ``torch.manual_seed`` before
a step gives both sides the same masks. Every timed step re-seeds the global generator with its index on its own side,
so ours and the reference train on the same masks, step for step.

The steps of ours and the references alternate, with the order rotated every round, after ``--warmup`` untimed
rounds (``timing.time_alternating``); a timed call runs as many steps back to back as make it last ``--min-call-ms``
(the same number for every side of a pair), and a step's time is the call's divided by that number. Reported per
pair: the median step time with its interquartile range, steps per second, and the throughput ratio ours/reference,
the median over rounds of ``t_reference / t_ours`` (> 1 means ours is faster) with the quartiles of the per-round
ratios. ``--control`` adds a second copy of the PyG reference (an A/A test).

Example::

    python benchmarks/graph_models.py --repeats 30 --control
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_geometric
from rich.console import Console
from rich.table import Table
from timing import (
    add_alternating_arguments,
    check_outputs,
    describe_environment,
    pair_fields,
    parameter_count,
    run_and_report,
    time_steps,
)
from torch import Tensor, nn
from torch_geometric.nn import GATConv as PygGATConv
from torch_geometric.nn import GCNConv as PygGCNConv

from paperzoo.graph import create_model

OURS = "paperzoo"
PYG = "PyG"
CONTROL = "control"  # a second copy of the PyG reference, timed with --control
VERSIONS = {"torch": torch.__version__, "torch_geometric": torch_geometric.__version__}
# largest |ours - reference| of the logits, relative to the largest |reference logit|, before timing
PARITY_TOL = 1e-5
LEARNING_RATE, WEIGHT_DECAY = 0.005, 5e-4
PAIRS = {
    "gat": "GAT (8 heads x 8, 1 output head, dropout 0.6) vs the same with torch_geometric.nn.GATConv",
    "gcn": "GCN (16 hidden, dropout 0.5) vs the same with torch_geometric.nn.GCNConv, graph normalised every call",
    "gcn_cached": "the GCN pair with cached=True on both sides: the normalised graph computed once",
}
# Parameter names of the reference models -> ours. Our layers use PyG's names (lin.weight, att_src, att_dst, bias)
# and both models name their layers conv1 and conv2, so every name maps to itself; written out so that a change on
# either side fails loudly in check_names instead of silently loading nothing.
REFERENCE_TO_OURS = {
    "gat": {
        name: name
        for name in (
            "conv1.att_src",
            "conv1.att_dst",
            "conv1.bias",
            "conv1.lin.weight",
            "conv2.att_src",
            "conv2.att_dst",
            "conv2.bias",
            "conv2.lin.weight",
        )
    },
    "gcn": {name: name for name in ("conv1.bias", "conv1.lin.weight", "conv2.bias", "conv2.lin.weight")},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Pairs (--pairs): "
        + "; ".join(f"{key} ({text})" for key, text in PAIRS.items())
        + ". Ratios are paired by round and hold on a loaded machine; absolute times do not.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated pairs to time (listed below)")
    parser.add_argument("--nodes", type=int, default=2708, help="nodes of the random graph (Cora's 2708)")
    parser.add_argument(
        "--edges",
        type=int,
        default=10556,
        help="directed edges (even): half as many random node pairs, each in both directions (Cora's 10556)",
    )
    parser.add_argument("--features", type=int, default=1433, help="bag-of-words features per node (Cora's 1433)")
    parser.add_argument(
        "--words-per-node", type=float, default=18.0, help="mean number of ones per feature row (Cora's 18.2)"
    )
    parser.add_argument("--classes", type=int, default=7, help="classes (Cora's 7)")
    parser.add_argument("--train-nodes", type=int, default=140, help="labelled training nodes (Cora's 140)")
    add_alternating_arguments(parser, repeats=30, warmup=3, reference="PyG")
    parser.add_argument("--seed", type=int, default=0, help="seed of the graph, the features and the labels")
    parser.add_argument(
        "--json", "--output", type=Path, metavar="PATH", help="also write the environment and results as JSON here"
    )
    args = parser.parse_args()
    args.pairs = [name.strip() for name in args.pairs.split(",")]
    unknown = [name for name in args.pairs if name not in PAIRS]
    if unknown:
        parser.error(f"unknown pairs {unknown}; choose from {', '.join(PAIRS)}")
    if args.repeats < 2 or args.warmup < 1:
        parser.error("--repeats must be at least 2 (for quartiles) and --warmup at least 1 (first-call allocations)")
    if args.edges % 2 or args.edges // 2 > args.nodes * (args.nodes - 1) // 2:
        parser.error("--edges must be even and at most nodes * (nodes - 1)")
    if not 0 < args.train_nodes <= args.nodes or not 0 < args.words_per_node <= args.features:
        parser.error("--train-nodes must be in [1, nodes] and --words-per-node in (0, features]")
    return args


# --- the graph --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Graph:
    """A node classification problem: features, edges, labels and the training nodes."""

    x: Tensor  # (N, F) row-normalised bag of words
    edge_index: Tensor  # (2, E), source row 0, target row 1, both directions of every pair
    y: Tensor  # (N,)
    train_index: Tensor  # (N_train,)

    def describe(self) -> str:
        density = (self.x != 0).float().mean().item()
        return (
            f"{self.x.size(0)} nodes, {self.edge_index.size(1)} edges, {self.x.size(1)} features "
            f"({100 * density:.2f}% non-zero), {int(self.y.max()) + 1} classes, {self.train_index.numel()} train"
        )


def random_graph(args: argparse.Namespace) -> Graph:
    """A Cora-sized random graph: distinct random node pairs without loops, each as two directed edges; binary
    bag-of-words rows (at least one word each) divided by their sums; random labels and training nodes."""
    generator = torch.Generator().manual_seed(args.seed)
    n, pairs = args.nodes, args.edges // 2
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < pairs:
        ends = torch.randint(0, n, (2, 2 * (pairs - len(chosen))), generator=generator).tolist()
        for a, b in zip(*ends, strict=True):
            if a != b and len(chosen) < pairs:
                chosen.add((min(a, b), max(a, b)))
    undirected = torch.tensor(sorted(chosen)).t()  # (2, E / 2)
    edge_index = torch.cat([undirected, undirected.flip(0)], dim=1)  # (2, E): j -> i and i -> j
    edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=generator)]
    words = torch.rand(n, args.features, generator=generator) < args.words_per_node / args.features
    words[torch.arange(n), torch.randint(0, args.features, (n,), generator=generator)] = True  # no empty row
    x = words.float()
    x = x / x.sum(dim=1, keepdim=True)  # NormalizeFeatures
    y = torch.randint(0, args.classes, (n,), generator=generator)
    train_index = torch.randperm(n, generator=generator)[: args.train_nodes]
    return Graph(x, edge_index, y, train_index)


# --- the references: the same architectures with PyTorch Geometric's layers -------------------------------------------


class PygGAT(nn.Module):
    """Velickovic et al.'s two-layer GAT as PyG's own example writes it: dropout, GATConv (heads concatenated), ELU,
    dropout, GATConv (heads averaged)."""

    def __init__(
        self, in_channels: int, out_channels: int, hidden_channels: int, heads: int, output_heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.dropout = dropout
        self.conv1 = PygGATConv(in_channels, hidden_channels, heads, dropout=dropout)
        self.conv2 = PygGATConv(heads * hidden_channels, out_channels, output_heads, concat=False, dropout=dropout)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)


class PygGCN(nn.Module):
    """Kipf & Welling's two-layer GCN as PyG's own example writes it: dropout, GCNConv, ReLU, dropout, GCNConv."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, dropout: float, cached: bool) -> None:
        super().__init__()
        self.dropout = dropout
        self.conv1 = PygGCNConv(in_channels, hidden_channels, cached=cached)
        self.conv2 = PygGCNConv(hidden_channels, out_channels, cached=cached)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)


def build_models(key: str, args: argparse.Namespace) -> dict[str, nn.Module]:
    """Ours and the PyG reference (and its control copy), all with the reference's random initialisation."""
    sizes = dict(in_channels=args.features, out_channels=args.classes)
    torch.manual_seed(0)
    if key == "gat":
        config = dict(hidden_channels=8, heads=8, output_heads=1, dropout=0.6)

        def reference() -> nn.Module:
            return PygGAT(**sizes, **config)

        ours = create_model("gat", **sizes, **config)
    else:
        config = dict(hidden_channels=16, dropout=0.5, cached=key == "gcn_cached")

        def reference() -> nn.Module:
            return PygGCN(**sizes, **config)

        ours = create_model("gcn", **sizes, **config)
    references = {PYG: reference()}
    if args.control:
        references[CONTROL] = reference()
    state = references[PYG].state_dict()
    names = REFERENCE_TO_OURS[key.removesuffix("_cached")]
    check_names(state, ours.state_dict(), names)
    ours.load_state_dict({names[name]: value for name, value in state.items()})  # strict
    for model in references.values():
        model.load_state_dict(state)
    return {OURS: ours, **references}


def check_names(reference: Mapping[str, Tensor], ours: Mapping[str, Tensor], names: Mapping[str, str]) -> None:
    """The map covers every reference parameter, hits every one of ours, and maps each to a tensor of its shape."""
    if set(names) != set(reference) or set(names.values()) != set(ours):
        raise RuntimeError(
            f"parameter names do not line up: reference {sorted(reference)}, ours {sorted(ours)}, map {names}"
        )
    for name, target in names.items():
        if reference[name].shape != ours[target].shape:
            raise RuntimeError(f"{name} {tuple(reference[name].shape)} -> {target} {tuple(ours[target].shape)}")


# --- checks, steps, timing --------------------------------------------------------------------------------------------


def check_parity(models: Mapping[str, nn.Module], graph: Graph) -> tuple[float, float]:
    """Eval-mode logits, then train-mode logits under one seed (the same dropout masks), of every model; returns
    the two largest relative differences. A cached GCN layer keeps the graph of its first call, here the
    benchmark's own graph, which is the one the timed steps use."""
    with torch.no_grad():
        evaluation = check_outputs(
            {impl: model.eval()(graph.x, graph.edge_index) for impl, model in models.items()}, OURS, PARITY_TOL
        )
        training = {}
        for impl, model in models.items():
            torch.manual_seed(12345)
            training[impl] = model.train()(graph.x, graph.edge_index)
        if (training[OURS] == models[OURS].eval()(graph.x, graph.edge_index)).all():
            raise RuntimeError("train mode gave the eval-mode logits: dropout did not drop")
    return evaluation, check_outputs(training, OURS, PARITY_TOL)


def make_step(model: nn.Module, graph: Graph) -> Callable[[], None]:
    """One epoch of full-batch training: zero_grad, forward on the whole graph, cross-entropy on the training
    nodes, backward, Adam. The global generator is seeded with the step's index first, so the k-th step of every
    side draws the same dropout masks."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    model.train()
    count = 0

    def step() -> None:
        nonlocal count
        torch.manual_seed(count)
        count += 1
        optimizer.zero_grad(set_to_none=True)
        logits = model(graph.x, graph.edge_index)  # (N, classes)
        loss = F.cross_entropy(logits[graph.train_index], graph.y[graph.train_index])
        loss.backward()
        optimizer.step()

    return step


def benchmark_pair(key: str, graph: Graph, args: argparse.Namespace, on_round: Callable[[int], None]) -> list[dict]:
    models = build_models(key, args)
    eval_difference, train_difference = check_parity(models, graph)
    steps = {impl: make_step(model, graph) for impl, model in models.items()}
    times, count = time_steps(steps, args, on_round)
    row = {
        "pair": key,
        "reference": PYG,
        "parameters_ours": parameter_count(models[OURS]),
        "parameters_reference": parameter_count(models[PYG]),
        "steps_per_call": count,
        **pair_fields(times, OURS, PYG, CONTROL if args.control else None),
        "max_relative_eval_difference": eval_difference,
        "max_relative_train_difference": train_difference,
    }
    return [row]


def render(console: Console, env: dict, graph: Graph, rows: list[dict], args: argparse.Namespace) -> None:
    console.print(describe_environment(env, list(VERSIONS)))
    console.print(f"graph: {graph.describe()}")
    table = Table(
        title=f"training step, float32, cpu; median of {args.repeats} alternating calls after {args.warmup} untimed "
        "rounds"
    )
    columns = ("pair", "reference", "params", "steps/call", "ours ms (IQR)", "ref ms (IQR)", "ours step/s")
    columns += ("ref step/s", "ours/ref (q1-q3)") + (("A/A (q1-q3)",) if args.control else ())
    for column in columns:
        table.add_column(column, justify="left" if column in ("pair", "reference") else "right")
    for row in rows:
        cells = []
        if args.control:
            cells = [
                f"{row['control_over_reference']:.3f}x ({row['control_ratio_q1']:.3f}-{row['control_ratio_q3']:.3f})"
            ]
        parameters = f"{row['parameters_ours']:,}"
        if row["parameters_reference"] != row["parameters_ours"]:
            parameters += f" / {row['parameters_reference']:,}"
        table.add_row(
            row["pair"],
            row["reference"],
            parameters,
            str(row["steps_per_call"]),
            f"{1e3 * row['ours_median_step_s']:.2f} ({1e3 * row['ours_iqr_step_s']:.2f})",
            f"{1e3 * row['reference_median_step_s']:.2f} ({1e3 * row['reference_iqr_step_s']:.2f})",
            f"{1 / row['ours_median_step_s']:.1f}",
            f"{1 / row['reference_median_step_s']:.1f}",
            f"{row['ours_over_reference']:.3f}x ({row['ratio_q1']:.3f}-{row['ratio_q3']:.3f})",
            *cells,
        )
    console.print(table)
    console.print(
        "ours/ref: median over rounds of t_ref / t_ours (> 1: ours faster), with the quartiles of the per-round "
        "ratios. A step: zero_grad, forward on the whole graph (train mode), cross-entropy on the training nodes, "
        f"backward, Adam (lr {LEARNING_RATE}, weight decay {WEIGHT_DECAY}); both sides draw the same dropout masks. "
        "Before timing, the logits of ours and the reference agreed within "
        f"{max(row['max_relative_eval_difference'] for row in rows):.1e} (eval mode) and "
        f"{max(row['max_relative_train_difference'] for row in rows):.1e} (train mode, one seed), relative, on every "
        "pair."
        + (
            " A/A: the same ratio between the PyG reference and a second copy of it, the noise floor."
            if args.control
            else ""
        )
    )


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    graph = random_graph(args)
    jobs = [(key, lambda on_round, key=key: benchmark_pair(key, graph, args, on_round)) for key in args.pairs]
    run_and_report(
        args,
        VERSIONS,
        jobs,
        lambda console, env, rows: render(console, env, graph, rows, args),
        width=170,
        extra_environment={"graph": graph.describe()},
    )


if __name__ == "__main__":
    main()
