"""Deterministic label <-> id maps."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from kgrec.errors import UnknownIRIError

__all__ = ["Vocab"]


class Vocab:
    """An immutable bijection between string labels (IRIs) and ids ``0..n-1``.

    Ids are assigned from the *sorted* labels unless ``sort=False`` is passed with labels that
    are already in the wanted order, so the same graph always yields the same ids (PyKEEN's
    "sorting ensures consistent results").

    Args:
        labels: the labels; duplicates are removed.
        sort: sort the labels before numbering them (default ``True``).
        name: what the labels are ("user", "item"...), used in error messages.
    """

    def __init__(self, labels: Iterable[str], sort: bool = True, name: str = "label"):
        labels = list(dict.fromkeys(labels))
        if sort:
            labels.sort()
        self.name = name
        self._labels: list[str] = labels
        self._index: dict[str, int] = {label: i for i, label in enumerate(labels)}

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __iter__(self):
        return iter(self._labels)

    def __getitem__(self, i: int) -> str:
        return self._labels[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._labels == other._labels

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def id(self, label: str) -> int:
        """The id of ``label``; raises :class:`UnknownIRIError` naming the vocabulary."""
        try:
            return self._index[label]
        except KeyError:
            raise UnknownIRIError(f"unknown {self.name} {label!r} ({len(self)} {self.name}s known)") from None

    def get(self, label: str, default: int | None = None) -> int | None:
        return self._index.get(label, default)

    def ids(self, labels: Sequence[str]) -> torch.Tensor:
        """Ids of ``labels`` as a long tensor of shape ``[len(labels)]``."""
        return torch.tensor([self.id(x) for x in labels], dtype=torch.long)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self._labels[int(i)] for i in ids]

    def to_list(self) -> list[str]:
        return list(self._labels)

    @classmethod
    def from_list(cls, labels: list[str], name: str = "label") -> "Vocab":
        """Rebuild a vocabulary saved with :meth:`to_list` (order kept as saved)."""
        return cls(labels, sort=False, name=name)

    def __repr__(self) -> str:
        return f"Vocab({self.name}, n={len(self)})"
