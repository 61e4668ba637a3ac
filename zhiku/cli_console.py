"""The command line's rich consoles: stdout and stderr, control characters made visible.

Imported when a command first prints through rich (tables, progress, colours); ``zhiku
ask`` prints its answer without it (:func:`zhiku.cli_base.print_sources`).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from zhiku.text import visible


class SafeConsole(Console):
    """A console that shows control and format characters as escapes (``\x1b``), so text
    from documents, file names or KB names cannot drive the terminal. Every string
    printed, and every table cell and title, goes through :meth:`render_str`."""

    def render_str(self, text: str, **kwargs: Any) -> Any:
        return super().render_str(visible(text), **kwargs)


out = SafeConsole(soft_wrap=True, highlight=False)
err = SafeConsole(stderr=True, soft_wrap=True, highlight=False)
