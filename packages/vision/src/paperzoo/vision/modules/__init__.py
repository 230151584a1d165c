"""LightningModules of the vision domain."""

from paperzoo.vision.modules.adversarial import AdversarialClassifier
from paperzoo.vision.modules.classifier import ImageClassifier
from paperzoo.vision.modules.finetune import FineTuneClassifier
from paperzoo.vision.modules.linear_probe import LinearProbe
from paperzoo.vision.modules.simclr import SimCLR

__all__ = ["AdversarialClassifier", "FineTuneClassifier", "ImageClassifier", "LinearProbe", "SimCLR"]
