"""Test-wide settings.

The suite runs many small tensor operations, which gain nothing from intra-op threads, and on a shared
2-core machine two threads per process oversubscribe the cores and slow the suite down many times
over. One thread keeps the run fast and its timing steady. Subprocesses the tests start (DDP, the
packaging check) inherit OMP_NUM_THREADS.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)
