"""Transfer learning: a pre-trained network (ours or timm's) fine-tuned on a new classification task."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import timm
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from timm.models import group_parameters
from torch import nn

from paperzoo.core.checkpoint import load_state_dict, newest_file, read_checkpoint
from paperzoo.core.errors import CheckpointError, ConfigError
from paperzoo.core.modules.base import _default_optimizer, _unset_argument
from paperzoo.vision.modules.classifier import ImageClassifier

FineTuneMode = Literal["full", "frozen", "gradual"]


class FineTuneClassifier(ImageClassifier):
    """Fine-tuning a pre-trained network on a new task (Yosinski et al., "How transferable are features in deep
    neural networks?", NeurIPS 2014), with the gradual unfreezing and discriminative learning rates of Howard &
    Ruder ("Universal Language Model Fine-tuning for Text Classification", ACL 2018).

    The network is ours (``network``, by ``class_path``) or timm's (``timm_model``, built with
    ``timm.create_model(name, pretrained=False, ...)``). Its classification head is replaced by a freshly
    initialised one with ``num_classes`` outputs, and when fitting starts every other weight is loaded from
    ``checkpoint`` (:meth:`load_pretrained`): a paperzoo ``.ckpt`` of an :class:`ImageClassifier` (its ``network.*``
    weights; an :class:`~paperzoo.core.callbacks.EMA` run's checkpoint holds the averaged ones) or a bare state dict
    (``.pth``, ``.pt``, ``.bin`` or ``.safetensors``, e.g. timm's released weights, downloaded beforehand). Every
    non-head tensor must be in the checkpoint with the same shape; without a checkpoint the network trains from
    scratch, the baseline.

    The parameters fall into layer groups, from the input to the head (last): the network's timm
    ``group_matcher`` (``coarse=True``), or ``group_matcher`` given here, or else one group per top-level
    sub-module. ``mode`` says which groups train:

    * ``full``: all of them.
    * ``frozen``: the head only (feature extraction); the frozen layers also stay in eval mode, so their
      batch-norm statistics and dropout are those of the pre-trained network.
    * ``gradual``: the head in the first ``unfreeze_every`` epochs, then one more group from the top every
      ``unfreeze_every`` epochs until all train (Howard & Ruder unfreeze one layer per epoch). Frozen groups are
      in eval mode as above (Lightning warns that it found modules in eval mode at the start of training: those).

    Discriminative learning rates: the group ``k`` places below the head trains with the optimiser's learning
    rate times ``lr_decay ** k`` (Howard & Ruder divide by 2.6 per layer: ``lr_decay = 0.385``); the schedule
    then scales every group alike, so it must be one that multiplies each group's own rate (every
    ``paperzoo.core.schedules`` schedule and most of ``torch.optim.lr_scheduler``; not torch's ``OneCycleLR``,
    which sets one rate for all groups and is refused).

    Args:
        num_classes: the new task's classes: the size of the new head.
        network: the pre-trained architecture (any ``nn.Module`` with ``num_classes``); ``None`` with ``timm_model``.
        timm_model: a timm model name (``timm.list_models()``), created instead of ``network``.
        timm_kwargs: further arguments of ``timm.create_model`` (``in_chans``, ``drop_rate`` ...).
        checkpoint: the pre-trained weights (a paperzoo ``.ckpt`` or a state-dict file), or a glob pattern whose
            newest match is taken (``runs/resnet20-fashionmnist/version_*/checkpoints/last.ckpt``); ``None`` trains
            from scratch.
        checkpoint_from: the experiment that writes ``checkpoint``, named in the error when there is none.
        head: the dotted name of the classifier layer to replace (an ``nn.Linear``); ``None`` finds it: timm's
            ``get_classifier()``, or else the last ``nn.Linear`` with ``num_classes`` outputs.
        mode: ``"full"``, ``"frozen"`` or ``"gradual"`` (see above).
        unfreeze_every: epochs between two unfreezings in ``gradual`` mode.
        lr_decay: the per-group factor of the discriminative learning rates, in (0, 1]; 1 gives every group the
            same rate.
        group_matcher: timm's form of a grouping, regular expressions on the parameter names in order, e.g.
            ``{"stem": "^conv1|^bn1", "blocks": "^layer(\\d+)"}`` (a captured number splits a match into groups);
            the parameters no expression matches form the group below the head.
        label_smoothing: see :class:`ImageClassifier`.
        aux_weight: see :class:`ImageClassifier`.
        mixup_alpha: see :class:`ImageClassifier`.
        cutmix_alpha: see :class:`ImageClassifier`.
        mix_prob: see :class:`ImageClassifier`.
        mix_switch_prob: see :class:`ImageClassifier`.
        channels_last: see :class:`ImageClassifier`.
        compile: see :class:`ImageClassifier`.
        compile_mode: see :class:`ImageClassifier`.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        num_classes: int,
        network: nn.Module | None = None,
        timm_model: str | None = None,
        timm_kwargs: dict[str, Any] | None = None,
        checkpoint: str | None = None,
        checkpoint_from: str | None = None,
        head: str | None = None,
        mode: FineTuneMode = "full",
        unfreeze_every: int = 1,
        lr_decay: float = 1.0,
        group_matcher: dict[str, str] | None = None,
        label_smoothing: float = 0.0,
        aux_weight: float = 0.3,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mix_prob: float = 1.0,
        mix_switch_prob: float = 0.5,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        if (network is None) == (timm_model is None):
            raise ConfigError("FineTuneClassifier needs exactly one of network (a class_path) and timm_model (a name)")
        if mode not in ("full", "frozen", "gradual") or unfreeze_every < 1 or not 0 < lr_decay <= 1:
            raise ConfigError(
                f"mode={mode!r} must be full, frozen or gradual, unfreeze_every={unfreeze_every} at least 1 and "
                f"lr_decay={lr_decay} in (0, 1]"
            )
        if network is None:
            network = timm.create_model(timm_model, pretrained=False, num_classes=num_classes, **(timm_kwargs or {}))
        head = replace_head(network, num_classes, head)
        super().__init__(
            network,
            label_smoothing=label_smoothing,
            aux_weight=aux_weight,
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
            mix_prob=mix_prob,
            mix_switch_prob=mix_switch_prob,
            channels_last=channels_last,
            compile=compile,
            compile_mode=compile_mode,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            scheduler_interval=scheduler_interval,
        )
        self.head = head
        self.checkpoint = checkpoint
        self.checkpoint_from = checkpoint_from
        self.pretrained_path: Path | None = None
        """The file the pre-trained weights were loaded from, once they are."""
        self.mode = mode
        self.unfreeze_every = unfreeze_every
        self.lr_decay = lr_decay
        self.layer_groups = layer_groups(network, head, group_matcher)
        self.set_trainable_groups(self.trainable_groups(epoch=0))

    # ------------------------------------------------------------------ freezing

    def trainable_groups(self, epoch: int) -> int:
        """How many layer groups, counted from the head, train in ``epoch`` (0-based)."""
        if self.mode == "full":
            return len(self.layer_groups)
        if self.mode == "frozen":
            return 1
        return min(len(self.layer_groups), 1 + epoch // self.unfreeze_every)

    def set_trainable_groups(self, count: int) -> None:
        """Train the top ``count`` layer groups and freeze the others (``requires_grad`` and eval mode)."""
        parameters = dict(self.network.named_parameters())
        first = len(self.layer_groups) - count
        for index, names in enumerate(self.layer_groups):
            for name in names:
                parameters[name].requires_grad_(index >= first)
        self.train(self.training)

    def train(self, mode: bool = True) -> FineTuneClassifier:
        """Set the training mode, keeping the fully frozen sub-modules of the network in eval mode."""
        super().train(mode)
        if mode:
            for module in _frozen_modules(self.network):
                module.eval()
        return self

    def load_pretrained(self) -> None:
        """Load the pre-trained weights from ``checkpoint`` into every layer but the head, once.

        :meth:`setup` calls it when fitting starts: not in ``__init__``, so that the CLI reports a missing file as
        its own one-sentence error, and not when only validating or testing, where a fine-tuned checkpoint supplies
        every weight.

        Raises:
            CheckpointError: see :func:`load_backbone`.
        """
        if self.checkpoint is not None and self.pretrained_path is None:
            self.pretrained_path = load_backbone(self.network, self.checkpoint, self.head, self.checkpoint_from)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":
            self.load_pretrained()
        if self.mode == "gradual" and self.trainer.world_size > 1:
            raise ConfigError(
                "mode: gradual changes which parameters train during the run, which DistributedDataParallel "
                "cannot follow; train on one device, or use mode full or frozen"
            )

    def on_train_epoch_start(self) -> None:
        # A pure function of the epoch, so a resumed run trains the groups an uninterrupted one would.
        self.set_trainable_groups(self.trainable_groups(self.current_epoch))

    # ------------------------------------------------------------------ optimiser

    def configure_optimizers(self) -> Any:
        """The injected optimiser over one parameter group per layer group, with the discriminative rates."""
        parameters = dict(self.network.named_parameters())
        count = len(self.layer_groups)
        trained = range(count - 1, count) if self.mode == "frozen" else range(count)  # frozen: the rest never train
        groups = [
            {
                "params": [parameters[name] for name in self.layer_groups[i]],
                "lr_scale": self.lr_decay ** (count - 1 - i),
                "name": f"group{i}",
            }
            for i in trained
        ]
        optimizer = self.optimizer_factory(groups)
        for group in optimizer.param_groups:
            group["lr"] *= group["lr_scale"]
        if self.lr_scheduler_factory is None:
            return optimizer
        kwargs = {}
        if _unset_argument(self.lr_scheduler_factory, "total_steps"):
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = self.lr_scheduler_factory(optimizer, **kwargs)
        base = [group["lr"] / group["lr_scale"] for group in optimizer.param_groups]
        if not torch.allclose(torch.tensor(base), torch.tensor(base[0]), rtol=1e-6, atol=0.0):
            raise ConfigError(
                f"the lr_scheduler {type(scheduler).__name__} gives every parameter group the same learning rate, "
                "which undoes the discriminative learning rates (lr_decay); use a schedule that scales each group's "
                "own rate, such as paperzoo.core.schedules.OneCycle or CosineWithWarmup"
            )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}


# ---------------------------------------------------------------------- helpers


def replace_head(network: nn.Module, num_classes: int, head: str | None = None) -> str:
    """Replace the network's classification head by a freshly initialised one with ``num_classes`` outputs.

    Args:
        network: the classifier; its ``num_classes`` is updated.
        num_classes: outputs of the new head.
        head: the dotted name of the head (an ``nn.Linear``); ``None`` for timm's ``get_classifier()`` or else the
            last ``nn.Linear`` with ``network.num_classes`` outputs.

    Returns:
        The dotted name of the new head.

    Raises:
        ConfigError: no head is found, or ``head`` does not name an ``nn.Linear``.
    """
    modules = dict(network.named_modules())
    if head is None and hasattr(network, "reset_classifier") and hasattr(network, "get_classifier"):
        network.reset_classifier(num_classes)  # timm: also rebuilds heads more complex than one Linear
        classifier = network.get_classifier()
        found = next((name for name, module in network.named_modules() if module is classifier), None)
        if found:
            return found
    if head is None:
        outputs = getattr(network, "num_classes", None)
        linear = [name for name, m in modules.items() if isinstance(m, nn.Linear) and m.out_features == outputs]
        if not linear:
            raise ConfigError(
                f"cannot find the classification head of {type(network).__name__} (no nn.Linear with its num_classes="
                f"{outputs} outputs); name it with model.init_args.head"
            )
        head = linear[-1]
    old = modules.get(head)
    if not isinstance(old, nn.Linear):
        raise ConfigError(f"head={head!r} must name an nn.Linear of {type(network).__name__}, not {type(old).__name__}")
    parent_name, _, attribute = head.rpartition(".")
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    setattr(network.get_submodule(parent_name) if parent_name else network, attribute, new)
    network.num_classes = num_classes
    return head


def load_backbone(network: nn.Module, checkpoint: str | Path, head: str, checkpoint_from: str | None = None) -> Path:
    """Load every weight except the head's from a checkpoint; the head keeps its fresh initialisation.

    Args:
        network: the network, with its new head.
        checkpoint: a paperzoo ``.ckpt`` (its ``network.*`` entries are read) or a state-dict file; or a glob
            pattern, whose most recently written match is read.
        head: the dotted name of the head, whose tensors are skipped on both sides.
        checkpoint_from: the experiment that writes the checkpoint, named in the error when there is none.

    Returns:
        The file read.

    Raises:
        CheckpointError: no file matches, or it is unreadable, or its tensors do not fit the network.
    """
    pattern = str(checkpoint)
    path = newest_file(pattern)
    if path is None:
        source = f"run `paperzoo run {checkpoint_from}` first" if checkpoint_from else "train the source model first"
        raise CheckpointError(
            f"the pre-trained checkpoint {pattern} does not exist: {source}, or pass a .ckpt or weights file as "
            "--model.init_args.checkpoint=PATH"
        )
    if path.suffix == ".ckpt":
        prefix = "network."
        state = {k[len(prefix) :]: v for k, v in read_checkpoint(path)["state_dict"].items() if k.startswith(prefix)}
        if not state:
            raise CheckpointError(f"{path} has no network.* weights, so it is not a checkpoint of an ImageClassifier")
    else:
        state = load_state_dict(path)

    def is_head(key: str) -> bool:
        return key.startswith(f"{head}.")

    own = {k: v for k, v in network.state_dict().items() if not is_head(k)}
    given = {k: v for k, v in state.items() if not is_head(k)}
    missing = sorted(own.keys() - given.keys())
    unexpected = sorted(given.keys() - own.keys())
    reshaped = sorted(k for k in own.keys() & given.keys() if own[k].shape != given[k].shape)
    if missing or unexpected or reshaped:
        problems = [
            f"{len(keys)} {what} (first: {keys[0]}{detail(keys[0])})"
            for keys, what, detail in (
                (missing, "tensors missing", lambda _: ""),
                (unexpected, "unexpected tensors", lambda _: ""),
                (reshaped, "of another shape", lambda k: f" {tuple(given[k].shape)}, not {tuple(own[k].shape)}"),
            )
            if keys
        ]
        raise CheckpointError(
            f"{path} does not fit {type(network).__name__}: {'; '.join(problems)}; the network in the config must be "
            "the architecture the checkpoint was trained with"
        )
    network.load_state_dict(given, strict=False)
    return path


def layer_groups(network: nn.Module, head: str, group_matcher: dict[str, str] | None = None) -> list[list[str]]:
    """The network's parameter names in layer groups, from the input to the head, which is the last group.

    Args:
        network: the network.
        head: the dotted name of its head.
        group_matcher: timm's form of a grouping (see :class:`FineTuneClassifier`); ``None`` for the network's own
            ``group_matcher(coarse=True)`` (timm models), or else one group per top-level sub-module.
    """
    if group_matcher is None and hasattr(network, "group_matcher"):
        group_matcher = network.group_matcher(coarse=True)
    matcher: Any = group_matcher
    if matcher is None:
        order = list(dict.fromkeys(name.split(".")[0] for name, _ in network.named_parameters()))

        def matcher(name: str) -> int:
            return order.index(name.split(".")[0])

    grouped = group_parameters(network, matcher)
    head_names = [name for name, _ in network.named_parameters() if name.startswith(f"{head}.")]
    groups = [[name for name in names if name not in head_names] for _, names in sorted(grouped.items())]
    return [names for names in groups if names] + [head_names]


def _frozen_modules(root: nn.Module) -> list[nn.Module]:
    """The outermost sub-modules of ``root`` that have parameters, none of which trains."""
    found = []

    def visit(module: nn.Module) -> None:
        parameters = list(module.parameters())
        if parameters and not any(p.requires_grad for p in parameters):
            found.append(module)
            return
        for child in module.children():
            visit(child)

    visit(root)
    return found
