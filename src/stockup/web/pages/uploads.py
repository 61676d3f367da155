"""Choosing files, checking them, and following an upload live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from stockup.errors import StockupError, UsageError
from stockup.ratelimit import parse_rate
from stockup.session import UploadRequest, UploadSettings
from stockup.similar import SimilarLimits
from stockup.web.ui import Ui, checked, field, lookup
from stockup.web.uploads import PICKED_IN_BROWSER, Run, Selection

EVENT_INTERVAL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
DEFAULTS = UploadSettings()


def _settings(form: FormData) -> UploadSettings:
    """The form's options over the library's defaults (the CLI's too)."""
    given: dict[str, Any] = {
        "safe_names": checked(form, "safe_names"),
        "force": checked(form, "force"),
    }
    if rate := field(form, "limit_rate"):
        given["limit_rate"] = parse_rate(rate)
    if limits := field(form, "max_similar"):
        given["max_similar"] = SimilarLimits.parse(limits)
    for name, what in (("connections", "connections"), ("attempts", "attempts per file")):
        text = field(form, name)
        if text:
            if not text.isdigit():
                raise UsageError(f"the number of {what} must be a whole number")
            given[name] = int(text)
    return replace(DEFAULTS, **given)


def routes(ui: Ui) -> list[Route]:
    uploads = ui.uploads

    def upload_page(request: Request, status: int = 200, **context: Any) -> Response:
        ui.unlocked()
        runs = sorted(uploads.runs.values(), key=lambda r: r.started_at, reverse=True)
        accounts = list(ui.store.config().accounts.values())
        context.setdefault("chosen", [a.name for a in accounts])
        context.setdefault("form", {})
        return ui.render(
            request,
            "upload.html",
            status,
            accounts=accounts,
            runs=runs,
            defaults=DEFAULTS,
            nav="upload",
            **context,
        )

    async def upload(request: Request) -> Response:
        return upload_page(request)

    async def choose(request: Request, form: FormData) -> Response:
        ui.unlocked()
        chosen = [v for v in form.getlist("account") if isinstance(v, str)]
        typed = {
            k: field(form, k)
            for k in ("local_paths", "limit_rate", "connections", "attempts", "max_similar")
        }
        try:
            paths = [
                Path(line.strip()).expanduser()
                for line in typed["local_paths"].splitlines()
                if line.strip()
            ]
            sent = [
                item
                for item in [*form.getlist("files"), *form.getlist("folder")]
                if isinstance(item, UploadFile) and item.filename
            ]
            labels: tuple[tuple[Path, str], ...] = ()
            if sent:
                batch = uploads.staging.new_batch()
                for item in sent:
                    assert item.filename is not None
                    await asyncio.to_thread(uploads.staging.save, batch, item.filename, item.file)
                paths.append(batch)
                labels = ((batch, PICKED_IN_BROWSER),)
            if not paths:
                raise UsageError("choose files or a folder, or type a path on this computer")
            choice = UploadRequest(tuple(paths), tuple(chosen), _settings(form), labels)
            selection = await uploads.select(choice)
        except StockupError as exc:
            # Keep what the user typed and ticked: only the problem needs fixing.
            return upload_page(request, 400, error=str(exc), chosen=chosen, form=typed)
        return ui.redirect(f"/selections/{selection.id}")

    def find_selection(request: Request) -> Selection:
        return lookup(uploads.selections, request, "No such selection: choose again.")

    async def selection_page(request: Request) -> Response:
        ui.unlocked()
        selection = find_selection(request)
        grid: dict[Path, dict[str, Any]] = {path: {} for path in selection.files}
        for verdict in selection.verdicts:
            grid[verdict.facts.path][verdict.target] = verdict
        rejected = sum(1 for v in selection.verdicts if v.errors)
        summary = {
            a.name: {
                level: sum(v.level == level for v in selection.verdicts if v.target == a.name)
                for level in ("ok", "warning", "error")
            }
            for a in selection.accounts
        }
        return ui.render(
            request,
            "selection.html",
            selection=selection,
            grid=grid,
            rejected=rejected,
            summary=summary,
            nav="upload",
        )

    async def start(request: Request, form: FormData) -> Response:
        passphrase = ui.unlocked()
        selection = find_selection(request)
        settings = replace(selection.request.settings, skip_checks=checked(form, "skip_checks"))
        run = uploads.start(replace(selection.request, settings=settings), passphrase)
        return ui.redirect(f"/runs/{run.id}")

    def find_run(request: Request) -> Run:
        return lookup(uploads.runs, request, "No such upload in this session.")

    async def run_page(request: Request) -> Response:
        ui.unlocked()
        return ui.render(request, "run.html", run=find_run(request), nav="upload")

    async def run_events(request: Request) -> Response:
        ui.unlocked()
        run = find_run(request)
        progress = ui.templates.get_template("_progress.html")
        results = ui.templates.get_template("_results.html")

        async def stream() -> AsyncIterator[str]:
            seen = -1
            sent_results = ""
            while True:
                if run.version != seen:
                    seen = run.version
                    context = {"run": run}
                    update = {"state": run.state, "progress": progress.render(context)}
                    # The results table can be long and holds buttons: only when it changes.
                    results_key = f"{run.state}:{len(run.results)}"
                    if results_key != sent_results:
                        sent_results = results_key
                        update["results"] = results.render(context)
                    yield f"event: update\ndata: {json.dumps(update)}\n\n"
                    if not run.active:
                        yield "event: end\ndata: {}\n\n"
                        return
                    await asyncio.sleep(EVENT_INTERVAL_SECONDS)  # at most 4 updates a second
                else:
                    yield ": still here\n\n"
                await run.wait_change(seen, HEARTBEAT_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def cancel(request: Request, form: FormData) -> Response:
        ui.unlocked()
        run = find_run(request)
        uploads.cancel(run)
        return ui.redirect(f"/runs/{run.id}")

    async def retry(request: Request, form: FormData) -> Response:
        passphrase = ui.unlocked()
        run = uploads.retry(find_run(request), passphrase)
        return ui.redirect(f"/runs/{run.id}")

    return [
        Route("/upload", upload),
        Route("/upload", ui.post(choose), methods=["POST"]),
        Route("/selections/{id}", selection_page),
        Route("/selections/{id}/start", ui.post(start), methods=["POST"]),
        Route("/runs/{id}", run_page),
        Route("/runs/{id}/events", run_events),
        Route("/runs/{id}/cancel", ui.post(cancel), methods=["POST"]),
        Route("/runs/{id}/retry", ui.post(retry), methods=["POST"]),
    ]
