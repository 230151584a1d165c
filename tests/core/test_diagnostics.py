"""GradientFlow: per-layer gradient norms and activation statistics, checked against values taken by hand."""

import csv
import json
import warnings
from unittest.mock import MagicMock

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.diagnostics import GradientFlow, GradientFlowWarning

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class MLP(L.LightningModule):
    """``depth`` Linear layers with an activation module after each hidden one, regressing random targets."""

    def __init__(
        self, depth: int, activation: type[nn.Module], init_std: float | None = None, loss_scale: float = 1.0
    ) -> None:
        super().__init__()
        sizes = [16] + [32] * (depth - 1) + [1]
        layers: list[nn.Module] = []
        for i in range(depth):
            linear = nn.Linear(sizes[i], sizes[i + 1])
            if init_std is None:  # He et al. (2015): keeps the ReLU signal's variance from layer to layer
                nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            else:  # the "small random numbers" init that Glorot & Bengio (2010) show starves early layers
                nn.init.normal_(linear.weight, std=init_std)
            nn.init.zeros_(linear.bias)
            layers += [linear, activation()] if i < depth - 1 else [linear]
        self.net = nn.Sequential(*layers)
        self.loss_scale = loss_scale

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.loss_scale * F.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


class RecordGradNorms(Callback):
    """What GradientFlow should find: ``weight.grad.norm()`` of every Linear, taken before each update."""

    def __init__(self) -> None:
        self.norms: dict[int, dict[str, float]] = {}
        self.hooked_during_fit: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.hooked_during_fit.append(sum(len(m._forward_hooks) for m in pl_module.modules()))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.norms[trainer.global_step] = {
            name: m.weight.grad.norm().item() for name, m in pl_module.named_modules() if isinstance(m, nn.Linear)
        }


def fit(model, tmp_path, callbacks, max_steps, log_every_n_steps=1, logger=None):
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(128, 16), torch.randn(128, 1))
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        logger=logger or CSVLogger(tmp_path, name="run"),
        log_every_n_steps=log_every_n_steps,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, DataLoader(data, batch_size=32))
    return trainer


def first_last_ratio(history, step):
    norms = [stats["grad_norm"] for stats in history[step].values() if "grad_norm" in stats]
    return norms[0] / norms[-1]


def test_sigmoid_with_small_init_vanishes_where_relu_with_he_init_does_not(tmp_path):
    torch.manual_seed(0)
    sigmoid_net = MLP(depth=20, activation=nn.Sigmoid, init_std=1e-2)
    sigmoid_flow = GradientFlow(every_n_steps=1, plot_dir=str(tmp_path / "sigmoid"))
    with pytest.warns(GradientFlowWarning, match=r"vanishing gradient at step 0: .* in layer 'net\.0' \(") as record:
        fit(sigmoid_net, tmp_path, [sigmoid_flow], max_steps=2)
    # Both steps are sampled and vanish, but each layer is reported once: one warning in all.
    assert len([w for w in record if issubclass(w.category, GradientFlowWarning)]) == 1

    torch.manual_seed(0)
    relu_net = MLP(depth=20, activation=nn.ReLU)
    relu_flow = GradientFlow(every_n_steps=1, plot_dir=str(tmp_path / "relu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(relu_net, tmp_path, [relu_flow], max_steps=2)
    assert not [w for w in caught if issubclass(w.category, GradientFlowWarning)]

    sigmoid_ratio, relu_ratio = first_last_ratio(sigmoid_flow.history, 0), first_last_ratio(relu_flow.history, 0)
    assert sigmoid_ratio < 1e-3, sigmoid_ratio
    assert 1e-2 < relu_ratio < 1e2, relu_ratio
    # The forward signal tells the same story: He-initialised ReLUs zero about half their inputs.
    modules = dict(relu_net.named_modules())
    relu_zeros = [s["act_zero_frac"] for name, s in relu_flow.history[0].items() if isinstance(modules[name], nn.ReLU)]
    assert all(0.2 < z < 0.8 for z in relu_zeros), relu_zeros


def test_logs_plots_and_history_follow_the_sampling_schedule(tmp_path):
    torch.manual_seed(0)
    flow = GradientFlow(every_n_steps=3)  # plot_dir defaults to the logger's run directory
    trainer = fit(MLP(depth=4, activation=nn.ReLU), tmp_path, [flow], max_steps=7, log_every_n_steps=3)

    # Step 0, then the 3rd and 6th updates (global_step 2 and 5), as Lightning counts log_every_n_steps.
    assert sorted(flow.history) == [0, 2, 5]
    linears = ["net.0", "net.2", "net.4", "net.6"]
    assert [name for name, s in flow.history[5].items() if "grad_norm" in s] == linears
    assert list(flow.history[5]) == ["net.0", "net.1", "net.2", "net.3", "net.4", "net.5", "net.6"]
    assert all(flow.history[5][name]["act_zero_frac"] == 0.0 for name in linears)

    run_dir = tmp_path / "run" / "version_0"
    assert trainer.log_dir == str(run_dir)
    with (run_dir / "metrics.csv").open() as f:
        rows = [row for row in csv.DictReader(f) if row.get("grad_norm/net.0")]
    # With every_n_steps a multiple of log_every_n_steps, the non-initial samples all reach the logger.
    assert [int(row["step"]) for row in rows] == [2, 5]
    for row in rows:
        for name in linears:
            assert float(row[f"grad_norm/{name}"]) == pytest.approx(flow.history[int(row["step"])][name]["grad_norm"])

    for png in ("gradient_flow.png", "activations.png"):
        data = (run_dir / png).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, png
    record = json.loads((run_dir / "gradient_flow.json").read_text())
    assert record["every_n_steps"] == 3
    assert record["history"] == {str(step): layers for step, layers in flow.history.items()}


def test_recorded_statistics_equal_the_ones_taken_by_hand(tmp_path):
    torch.manual_seed(0)
    model = MLP(depth=4, activation=nn.Tanh)
    outputs: list[torch.Tensor] = []
    handle = model.net[3].register_forward_hook(lambda module, inputs, output: outputs.append(output.detach()))
    by_hand, flow = RecordGradNorms(), GradientFlow(every_n_steps=1, plot_dir=str(tmp_path / "plots"))
    fit(model, tmp_path, [flow, by_hand], max_steps=3)
    handle.remove()

    assert sorted(flow.history) == sorted(by_hand.norms) == [0, 1, 2]
    for step, norms in by_hand.norms.items():
        recorded = {name: s["grad_norm"] for name, s in flow.history[step].items() if "grad_norm" in s}
        assert recorded == pytest.approx(norms, rel=1e-6)
        # Layers' norms differ, so logging one layer under another's name would not pass.
        assert len({round(v, 6) for v in norms.values()}) == len(norms)
        stats = flow.history[step]["net.3"]
        assert stats["act_mean"] == pytest.approx(outputs[step].mean().item(), rel=1e-5, abs=1e-7)
        assert stats["act_std"] == pytest.approx(outputs[step].std(correction=0).item(), rel=1e-5)


def test_a_layer_called_twice_pools_both_calls(tmp_path):
    class Shared(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(16, 8)
            self.shared = nn.Linear(8, 8)
            self.out = nn.Linear(8, 1)
            self.outputs: list[torch.Tensor] = []

        def training_step(self, batch, batch_idx):
            x, y = batch
            first = self.shared(torch.tanh(self.inp(x)))
            second = self.shared(torch.tanh(first) + 3.0)  # a shifted second call: pooling must add the spread
            self.outputs = [first.detach(), second.detach()]
            return F.mse_loss(self.out(second), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1e-3)

    model, flow = Shared(), GradientFlow(every_n_steps=1, plot_dir=str(tmp_path / "plots"))
    fit(model, tmp_path, [flow], max_steps=1)
    both = torch.cat(model.outputs)
    assert flow.history[0]["shared"]["act_mean"] == pytest.approx(both.mean().item(), rel=1e-5)
    assert flow.history[0]["shared"]["act_std"] == pytest.approx(both.std(correction=0).item(), rel=1e-5)


def test_hooks_are_removed_after_fit(tmp_path):
    model, by_hand = MLP(depth=3, activation=nn.ReLU), RecordGradNorms()
    fit(model, tmp_path, [GradientFlow(every_n_steps=1, plot_dir=str(tmp_path / "plots")), by_hand], max_steps=2)
    assert by_hand.hooked_during_fit == [5, 5]  # 3 Linear + 2 ReLU
    assert all(not m._forward_hooks for m in model.modules())


def test_a_scaled_up_loss_warns_of_exploding_gradients(tmp_path):
    torch.manual_seed(0)
    flow = GradientFlow(every_n_steps=1, plot_dir=str(tmp_path / "plots"))
    with pytest.warns(GradientFlowWarning, match=r"exploding gradient at step 0: .* in layer 'net\.\d'") as record:
        fit(MLP(depth=3, activation=nn.ReLU, loss_scale=1e6), tmp_path, [flow], max_steps=1)
    assert not [w for w in record if "vanishing" in str(w.message)]


def test_sends_plots_and_histograms_to_wandb(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    import wandb

    experiment = MagicMock()
    monkeypatch.setattr(WandbLogger, "experiment", property(lambda self: experiment))
    flow = GradientFlow(every_n_steps=1, plot_dir=str(tmp_path / "plots"))
    fit(MLP(depth=3, activation=nn.ReLU), tmp_path, [flow], max_steps=2, logger=WandbLogger(save_dir=str(tmp_path)))

    logged: dict = {}
    for call in experiment.log.call_args_list:
        logged.update(call.args[0])
    assert isinstance(logged["grad_hist/net.0"], wandb.Histogram)
    for key in ("diagnostics/gradient_flow", "diagnostics/activations"):
        assert isinstance(logged[key][0], wandb.Image)
    assert logged["grad_norm/net.4"] == pytest.approx(flow.history[1]["net.4"]["grad_norm"])


def test_measures_paperzoo_layers_by_their_weight_not_their_class():
    from paperzoo.core.diagnostics import is_weight_layer
    from paperzoo.core.nn import MLP, BatchNorm1d, Linear

    assert is_weight_layer(Linear(3, 2)) and is_weight_layer(torch.nn.Conv2d(1, 1, 3))
    assert not is_weight_layer(BatchNorm1d(4)) and not is_weight_layer(torch.nn.ReLU())
    model = MLP(in_features=6, hidden=[5, 4], num_classes=3)
    weight_layers = [name for name, m in model.named_modules() if is_weight_layer(m)]
    assert weight_layers == ["net.0", "net.2", "net.4"]
