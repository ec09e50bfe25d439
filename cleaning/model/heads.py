"""The network head that makes a fastai learner start exactly where the linear probe is.

Imported lazily (it imports torch); exported learners refer to :class:`ProbeHead` by this module's
path (``cleaning.model.heads``), so loading a model needs the ``cleaning`` package importable (as it does for its image loader).
"""

from __future__ import annotations

import torch
from torch import nn


class ProbeHead(nn.Module):
    """Average pool → flatten → L2-normalise → one linear layer.

    It computes what the out-of-sample step's probe sees (pooled, L2-normalised embeddings), so the
    probe's standardiser and logistic regression fold exactly into :attr:`linear`.
    """

    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(n_features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled, L2-normalised features (B×D) of a body's feature map (B×D×h×w)."""
        return nn.functional.normalize(self.pool(x).flatten(1), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x))
