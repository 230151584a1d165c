"""WarmupMultiStepLR follows its formula (He et al. 2016's ResNet-110 warm-up)."""

import torch

from paperzoo.core.schedules import WarmupMultiStepLR


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
