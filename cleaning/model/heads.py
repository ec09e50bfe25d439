"""The network head that makes a fastai learner start exactly where the linear probe is.

Imported lazily (it imports torch); exported learners refer to :class:`ProbeHead` by this module's
path (``cleaning.model.heads``), so loading a model needs the ``cleaning`` package importable (as it does for its image loader).
"""

from __future__ import annotations

import torch
from torch import nn


class ProbeHead(nn.Module):
    """Average pool → flatten → L2-normalise → standardise (fixed buffers) → one linear layer.

    It computes what the out-of-sample step's probe sees (pooled, L2-normalised embeddings, standardised),
    so a probe fitted by :func:`cleaning.model.oos.fit_linear_probe` copies in exactly.
    """

    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.linear = nn.Linear(n_features, n_classes)

    def load_probe(self, probe: object) -> None:
        """Copy a :class:`cleaning.model.oos.LinearProbe` in (mean, scale, weight, bias)."""
        with torch.no_grad():
            for name, t in (("mean", self.mean), ("scale", self.scale), ("weight", self.linear.weight),
                            ("bias", self.linear.bias)):
                t.copy_(torch.as_tensor(getattr(probe, name)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled, L2-normalised features (B×D) of a body's feature map (B×D×h×w)."""
        return nn.functional.normalize(self.pool(x).flatten(1), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((self.features(x) - self.mean) / self.scale)
