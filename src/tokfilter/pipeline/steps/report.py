"""report: report.html and figures/*.png from results.json, and view.html (the token viewer) over the shards."""

from __future__ import annotations

from tokfilter.pipeline.context import Context
from tokfilter.report.view import write_view

NAME = "report"


def run(ctx: Context) -> None:
    from tokfilter.report.html import make_report  # matplotlib

    make_report(ctx.out)
    write_view(ctx.out / "shards", ctx.out / "view.html", name="forget")
