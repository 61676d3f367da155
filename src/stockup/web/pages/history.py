"""History: what went where, filtered, newest first, and as CSV."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockup.errors import UsageError
from stockup.journal import Journal, write_history_csv
from stockup.results import OUTCOMES
from stockup.watch import read_status
from stockup.web.ui import Ui, encode

HISTORY_LIMIT = 1000
FILTERS = ("account", "status", "q", "run")


def routes(ui: Ui) -> list[Route]:
    store = ui.store

    def history_rows(request: Request) -> tuple[dict[str, str], list[dict[str, Any]]]:
        filters = {k: request.query_params.get(k, "").strip() for k in FILTERS}
        if filters["status"] and filters["status"] not in OUTCOMES:
            raise UsageError(f"unknown status {filters['status']!r}")
        journal = Journal(store.paths.journal_file)
        try:
            rows = journal.history(
                filters["account"] or None,
                HISTORY_LIMIT,
                status=filters["status"] or None,
                text=filters["q"] or None,
                run=filters["run"] or None,
            )
        finally:
            journal.close()
        return filters, rows

    async def history(request: Request) -> Response:
        filters, rows = await asyncio.to_thread(history_rows, request)
        return ui.render(
            request,
            "history.html",
            rows=rows,
            filters=filters,
            query=encode(filters),
            accounts=sorted(store.config().accounts),
            statuses=[str(s) for s in OUTCOMES],
            limit=HISTORY_LIMIT,
            watcher=read_status(store),
            nav="history",
        )

    async def history_csv(request: Request) -> Response:
        _, rows = await asyncio.to_thread(history_rows, request)
        text = io.StringIO()
        write_history_csv(rows, text)
        return Response(
            text.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="stockup-history.csv"'},
        )

    return [Route("/history", history), Route("/history.csv", history_csv)]
