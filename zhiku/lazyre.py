"""Regular expressions compiled on first use.

A module that defines many large patterns (the PII detectors) pays for compiling all of
them when it is imported, although a given text needs only some (no ``@``: no e-mail
patterns; no 「號」: no address patterns). :func:`lazy` returns a stand-in that compiles
on first use and then binds the compiled pattern's methods on itself, so later calls
cost what calls on the compiled pattern cost.
"""

from __future__ import annotations

import re
from typing import Any, cast

_BOUND = ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split")


class _LazyPattern:
    __slots__ = ("__dict__", "_args")

    def __init__(self, pattern: str, flags: int) -> None:
        self._args = (pattern, flags)

    def __getattr__(self, name: str) -> Any:  # reached only until compiled
        rx = re.compile(*self._args)
        for attr in _BOUND:
            self.__dict__[attr] = getattr(rx, attr)
        self.__dict__["compiled"] = rx
        return getattr(rx, name)

    def __repr__(self) -> str:
        return f"lazy({self._args[0][:40]!r}…)"


def lazy(pattern: str, flags: int | re.RegexFlag = 0) -> re.Pattern[str]:
    """``re.compile(pattern, flags)``, compiled when first used."""
    return cast("re.Pattern[str]", _LazyPattern(pattern, int(flags)))
