"""Tests of paperzoo.graph.modules: what is scored, in which units, and that training on a real graph learns."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from paperzoo.core.errors import ConfigError
from paperzoo.graph import GraphClassifier, GraphRegressor, KarateClubDataModule, NodeClassifier, create_model


def _trainer(**kwargs) -> L.Trainer:
    defaults = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**(defaults | kwargs))


def test_node_classifier_scores_the_stage_mask_and_only_the_seed_nodes_of_a_sampled_batch():
    mask = torch.tensor([True, False, True, True, False, True])
    whole = Data(train_mask=mask)
    assert NodeClassifier._scored_nodes(whole, "train").tolist() == mask.tolist()
    sampled = Data(train_mask=mask, batch_size=3)  # nodes 0-2 are the seeds, 3-5 sampled neighbours
    assert NodeClassifier._scored_nodes(sampled, "train").tolist() == [True, False, True, False, False, False]
    assert mask.tolist() == [True, False, True, True, False, True]  # the batch's own mask is left alone


def test_node_classifier_loss_and_accuracy_count_the_masked_nodes_only():
    class Fixed(nn.Module):  # logits that are right on nodes 0 and 1 and wrong on 2 and 3
        def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
            return torch.tensor([[5.0, 0.0], [0.0, 5.0], [5.0, 0.0], [5.0, 0.0]])

    graph = Data(
        x=torch.zeros(4, 1),
        edge_index=torch.zeros(2, 0, dtype=torch.long),
        y=torch.tensor([0, 1, 1, 1]),
        test_mask=torch.tensor([True, True, True, False]),
    )
    module = NodeClassifier(Fixed())
    module._step(graph, "test")
    assert module.accuracy["test_acc"].compute().item() == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="no val_mask nodes"):
        module._step(
            Data(x=graph.x, edge_index=graph.edge_index, y=graph.y, val_mask=torch.zeros(4, dtype=bool)), "val"
        )


def test_node_classifier_rejects_a_network_that_does_not_fit_the_data():
    module = NodeClassifier(create_model("gcn", in_channels=34, out_channels=3))
    trainer = _trainer(max_epochs=1)
    with pytest.raises(ConfigError, match="out_channels=3 but the data has num_classes=4"):
        trainer.fit(module, datamodule=KarateClubDataModule())


def test_gcn_on_the_karate_club_beats_the_mlp_that_ignores_the_edges():
    """Kipf & Welling's semi-supervised setting on a real graph: one label per class, identity features. The MLP can
    only learn the 4 training nodes' own features, so on the unseen test nodes it is no better than a constant
    guess; the GCN reads the neighbourhoods."""
    results = {}
    for name in ("gcn", "mlp"):
        torch.manual_seed(0)
        module = NodeClassifier(
            create_model(name, in_channels=34, out_channels=4, dropout=0.0),
            optimizer=lambda params: torch.optim.Adam(params, lr=0.01, weight_decay=5e-4),
        )
        data = KarateClubDataModule()
        trainer = _trainer(max_epochs=100, num_sanity_val_steps=0, limit_val_batches=0)
        trainer.fit(module, datamodule=data)
        results[name] = trainer.test(module, datamodule=data, verbose=False)[0]["test/acc"]
    assert results["gcn"] >= 0.6
    assert results["gcn"] >= results["mlp"] + 0.2


class _Constant(nn.Module):
    """A graph-level network whose standardised prediction is a fixed value for every graph."""

    in_channels, edge_channels, out_channels = 3, 2, 2

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor) -> Tensor:
        return self.value.expand(int(batch.max()) + 1, self.out_channels)


def _graphs(y: Tensor) -> Batch:
    graphs = [
        Data(x=torch.randn(2, 3), edge_index=torch.tensor([[0, 1], [1, 0]]), edge_attr=torch.randn(2, 2), y=row[None])
        for row in y
    ]
    return Batch.from_data_list(graphs)


def test_graph_regressor_reports_the_mae_in_the_targets_own_units():
    module = GraphRegressor(_Constant(0.0))  # predicts the training mean of both targets
    module.target_mean.copy_(torch.tensor([10.0, -1.0]))
    module.target_std.copy_(torch.tensor([2.0, 0.5]))
    module.target_names = ["mu", "gap"]
    standardised = torch.tensor([[1.0, -2.0], [-0.5, 4.0], [0.0, 1.0]])
    module._step(_graphs(standardised), "test")
    per_target = (standardised.abs() * module.target_std).mean(dim=0)  # |prediction - target| in the units
    assert module.mae["test_0"].compute().item() == pytest.approx(per_target[0].item())
    assert module.mae["test_1"].compute().item() == pytest.approx(per_target[1].item())
    assert module.mae["test_mae"].compute().item() == pytest.approx(per_target.mean().item())
    predictions = module(_graphs(standardised))
    assert torch.allclose(predictions, module.target_mean.expand(3, 2))


def test_graph_regressor_refuses_to_report_without_the_data_statistics():
    with pytest.raises(ConfigError, match="target_mean and target_std"):
        GraphRegressor(_Constant())._step(_graphs(torch.zeros(2, 2)), "val")


def test_graph_classifier_counts_each_graph_once():
    class Logits(nn.Module):
        def forward(self, x, edge_index, edge_attr, batch):
            return torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])

    graphs = _graphs(torch.zeros(3, 1))
    graphs.y = torch.tensor([0, 1, 1])
    module = GraphClassifier(Logits())
    module._step(graphs, "val")
    assert module.accuracy["val_acc"].compute().item() == pytest.approx(2 / 3)
