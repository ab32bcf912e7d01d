"""Former home of the `attack`, `unlearn`, `align` and `generate` commands, now `tokfilter.posthoc.cli`.

Kept only so the command table in tokfilter/cli.py keeps working until it names `tokfilter.posthoc.cli`; delete
this file then.
"""

from tokfilter.posthoc.cli import register

__all__ = ["register"]
