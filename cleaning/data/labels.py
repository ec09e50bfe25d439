"""Class names that only *look* different: ``Fruit`` beside ``fruit``, ``teddy bear`` beside ``teddy_bear``,
``café`` typed with a combining accent beside ``café``. A relabel to such a name would silently start a
second class; the CLI asks for ``--new-class`` and the app for a confirmation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from ..errors import LabelError

_SPACING = re.compile(r"[\s_\-]+")


def label_key(label: str) -> str:
    """The comparison key of a class name: Unicode NFKC, case-folded, spaces/underscores/hyphens removed."""
    return _SPACING.sub("", unicodedata.normalize("NFKC", label).casefold())


def similar_label(new: str, existing: Iterable[str]) -> str | None:
    """The existing class that ``new`` differs from only by case, spacing or Unicode normalisation, or None
    (also None when ``new`` is exactly an existing class: that is a plain relabel)."""
    labels = list(existing)
    if new in labels:
        return None
    key = label_key(new)
    return next((lab for lab in sorted(labels) if label_key(lab) == key), None)


def check_new_label(new: str, existing: Iterable[str], new_class: bool = False) -> None:
    """Raise :class:`LabelError` when ``new`` would start a class next to a look-alike one and
    ``new_class`` was not given."""
    other = similar_label(new, existing)
    if other is not None and not new_class:
        raise LabelError(f"class {other!r} already exists; {new!r} differs only in case, spacing or accents",
                         f"relabel to {other!r}, or pass --new-class to start the class {new!r} anyway")
