"""What the maintenance steps share: the progress callback and batched deletes."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from .. import sql

Progress = Callable[[str, int], None]
"""Called after every batch with the phase name and the rows handled so far in it."""


def delete_in_batches(queryset: Any, batch: int, phase: str, progress: Progress) -> int:
    """Delete the rows of `queryset`, `batch` per short transaction; return how many."""
    return sql.delete_in_batches(queryset, batch, partial(progress, phase))


def no_progress(phase: str, done: int) -> None:
    """Report nothing."""
