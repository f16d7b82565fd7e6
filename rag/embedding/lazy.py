"""A value made on first use, once, even when several threads ask for it at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """``get()`` calls ``make`` the first time and returns its value ever after (double-checked lock: the
    lock is taken only until the value exists). If ``make`` raises, the next ``get()`` tries again."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
                value = self._value
        return value

    @property
    def ready(self) -> bool:
        return self._value is not None
