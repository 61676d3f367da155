"""The web UI's pages: a thin layer over the library, like the CLI.

Every page is rendered on the server from the same objects the CLI prints
(accounts, verdicts, results, history rows); the only script on the pages
follows an upload's progress through server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from stockup.catalogue import PROTOCOLS, Agency, load_catalogue
from stockup.errors import HostKeyUnknown, StockupError, UsageError, VaultError
from stockup.journal import STATUSES, Journal, write_history_csv
from stockup.passphrase import PassphraseSource
from stockup.ratelimit import parse_rate
from stockup.secret import Secret, redact
from stockup.store import AccountOptions, Store, build_account
from stockup.transfer import AccountCheck, check_account
from stockup.vault import Credentials, read_key_source
from stockup.web.guard import CSRF_FIELD, Guard, Handler, Keys, form_action
from stockup.web.uploads import Run, Selection, UploadRequest, Uploads

T = TypeVar("T")
BYTE_UNITS = ("B", "KiB", "MiB", "GiB")
HISTORY_LIMIT = 1000
EVENT_INTERVAL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0


@dataclass
class UiState:
    store: Store
    keys: Keys
    uploads: Uploads
    passphrase: PassphraseSource | None = None
    """Set by the unlock page; lives in this process only."""


@dataclass
class TestOutcome:
    account: str
    check: AccountCheck | None = None
    error: str | None = None
    unknown_fingerprint: str | None = None


class Locked(Exception):
    """A page that needs the vault was asked for before the unlock."""


def human_bytes(value: float) -> str:
    exponent = min(len(BYTE_UNITS) - 1, int(math.log(max(value, 1), 1024)))
    if exponent == 0:
        return f"{value:.0f} B"
    return f"{value / 1024**exponent:.1f} {BYTE_UNITS[exponent]}"


def agencies_in_order() -> list[Agency]:
    """The catalogue by name, with the custom server last."""
    return sorted(load_catalogue().values(), key=lambda a: (a.is_custom, a.name))


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = round(seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def _templates(keys: Keys) -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("stockup.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        # Any secret value this process knows is masked wherever a page shows text.
        finalize=lambda value: redact(value) if isinstance(value, str) else value,
    )
    env.filters["bytes"] = human_bytes
    env.filters["duration"] = human_duration
    env.filters["basename"] = lambda path: Path(path).name
    env.globals["csrf_field"] = Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, keys.csrf
    )
    return Jinja2Templates(env=env)


def create_app(store: Store, keys: Keys) -> Starlette:
    state = UiState(store, keys, Uploads(store))
    templates = _templates(keys)

    def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.update(unlocked=state.passphrase is not None, notice=request.query_params.get("ok"))
        return templates.TemplateResponse(request, name, context, status_code=status)

    def unlocked() -> PassphraseSource:
        if state.passphrase is None:
            raise Locked
        return state.passphrase

    def post(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        return form_action(keys, handler)

    def field(form: FormData, name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def redirect(path: str, notice: str | None = None) -> Response:
        query = f"?{_encode({'ok': notice})}" if notice else ""
        return RedirectResponse(path + query, 303)

    # -- vault ----------------------------------------------------------------

    def vault_mode() -> str:
        return read_key_source(store.paths.vault_file) if store.vault_exists() else "create"

    async def home(request: Request) -> Response:
        return redirect("/upload" if state.passphrase else "/unlock")

    async def unlock_page(request: Request) -> Response:
        return render(request, "unlock.html", mode=vault_mode(), nav="unlock")

    async def unlock(request: Request, form: FormData) -> Response:
        mode = vault_mode()
        typed = form.get("passphrase")
        try:
            if mode == "keychain":
                source = PassphraseSource(environ={}, interactive=False)
            else:
                source = PassphraseSource.given(Secret(typed if isinstance(typed, str) else ""))
            if mode == "create":
                if Secret(str(form.get("confirm", ""))) != source.get():
                    raise UsageError("the two passphrases differ; nothing was created")
                await asyncio.to_thread(store.init_vault, source)
            else:
                await asyncio.to_thread(store.open_vault, source)
        except StockupError as exc:
            status = 401 if isinstance(exc, VaultError) else 400
            return render(request, "unlock.html", status, mode=mode, error=str(exc), nav="unlock")
        state.passphrase = source
        if mode == "create" or not store.config().accounts:
            return redirect("/accounts", "Vault unlocked. Add your first agency account.")
        return redirect("/upload", "Vault unlocked.")

    async def lock(request: Request, form: FormData) -> Response:
        state.passphrase = None
        return redirect("/unlock", "Locked: the passphrase is forgotten.")

    # -- accounts -------------------------------------------------------------

    def accounts_page(
        request: Request, status: int = 200, form: dict[str, str] | None = None, **context: Any
    ) -> Response:
        unlocked()
        return render(
            request,
            "accounts.html",
            status,
            accounts=list(store.config().accounts.values()),
            agencies=agencies_in_order(),
            protocols=PROTOCOLS,
            form=form or {"agency": "shutterstock"},
            nav="accounts",
            **context,
        )

    async def accounts(request: Request) -> Response:
        return accounts_page(request)

    async def add_account(request: Request, form: FormData) -> Response:
        passphrase = unlocked()
        typed = {k: field(form, k) for k in ACCOUNT_FIELDS}
        try:
            port = typed["port"]
            if port and not (port.isdigit() and 1 <= int(port) <= 65535):
                raise UsageError("the port must be a number from 1 to 65535")
            options = AccountOptions(
                agency=typed["agency"],
                host=typed["host"] or None,
                port=int(port) if port else None,
                protocol=typed["protocol"] or None,
                remote_dir=typed["remote_dir"] or None,
                ca_file=typed["ca_file"] or None,
                allow_plaintext=form.get("allow_plaintext") == "on",
            )
            account = build_account(typed["name"], options)
            password = form.get("password")
            if not typed["username"] or not isinstance(password, str) or not password:
                raise UsageError("give the username and the password for this account")
            credentials = Credentials(typed["username"], Secret(password))
            await asyncio.to_thread(store.add_account, account, credentials, passphrase)
        except StockupError as exc:
            # The form comes back filled in, but never with the password.
            return accounts_page(request, 400, form=typed, error=str(exc))
        warning = f" Warning: {account.cleartext_warning}." if account.cleartext_warning else ""
        return redirect("/accounts", f"Added account {account.name} ({account.security}).{warning}")

    async def test_account(request: Request, form: FormData) -> Response:
        passphrase = unlocked()
        name = request.path_params["name"]
        outcome = TestOutcome(name)
        try:
            account, credentials = await asyncio.to_thread(store.credentials, name, passphrase)
            outcome.check = await check_account(
                account,
                credentials,
                store.paths,
                trust_fingerprint=field(form, "trust_fingerprint") or None,
            )
        except HostKeyUnknown as exc:
            outcome.unknown_fingerprint = exc.fingerprint
        except StockupError as exc:
            outcome.error = str(exc)
        return accounts_page(request, test=outcome)

    async def remove_account(request: Request, form: FormData) -> Response:
        passphrase = unlocked()
        name = request.path_params["name"]
        await asyncio.to_thread(store.remove_account, name, passphrase)
        return redirect("/accounts", f"Removed account {name} and its secrets.")

    async def agencies(request: Request) -> Response:
        return render(request, "agencies.html", agencies=agencies_in_order(), nav="agencies")

    # -- uploads --------------------------------------------------------------

    def upload_page(request: Request, status: int = 200, **context: Any) -> Response:
        unlocked()
        runs = sorted(state.uploads.runs.values(), key=lambda r: r.started_at, reverse=True)
        return render(
            request,
            "upload.html",
            status,
            accounts=list(store.config().accounts.values()),
            runs=runs,
            nav="upload",
            **context,
        )

    async def upload(request: Request) -> Response:
        return upload_page(request)

    async def choose(request: Request, form: FormData) -> Response:
        unlocked()
        try:
            paths = [
                Path(line.strip()).expanduser()
                for line in field(form, "local_paths").splitlines()
                if line.strip()
            ]
            sent = [
                item
                for item in [*form.getlist("files"), *form.getlist("folder")]
                if isinstance(item, UploadFile) and item.filename
            ]
            if sent:
                batch = state.uploads.staging.new_batch()
                for item in sent:
                    assert item.filename is not None
                    await asyncio.to_thread(
                        state.uploads.staging.save, batch, item.filename, item.file
                    )
                paths.append(batch)
            if not paths:
                raise UsageError("choose files or a folder, or type a path on this computer")
            rate = field(form, "limit_rate")
            choice = UploadRequest(
                paths=tuple(paths),
                accounts=tuple(v for v in form.getlist("account") if isinstance(v, str)),
                limit_rate=parse_rate(rate) if rate else None,
                safe_names=form.get("safe_names") == "on",
                force=form.get("force") == "on",
            )
            selection = await state.uploads.select(choice)
        except StockupError as exc:
            return upload_page(request, 400, error=str(exc))
        return redirect(f"/selections/{selection.id}")

    def find_selection(request: Request) -> Selection:
        return _lookup(state.uploads.selections, request, "No such selection: choose again.")

    async def selection_page(request: Request) -> Response:
        unlocked()
        selection = find_selection(request)
        grid: dict[Path, dict[str, Any]] = {path: {} for path in selection.files}
        for verdict in selection.verdicts:
            grid[verdict.facts.path][verdict.target] = verdict
        rejected = sum(1 for v in selection.verdicts if v.errors)
        return render(
            request,
            "selection.html",
            selection=selection,
            grid=grid,
            rejected=rejected,
            nav="upload",
        )

    async def start(request: Request, form: FormData) -> Response:
        passphrase = unlocked()
        selection = find_selection(request)
        choice = replace(selection.request, skip_checks=form.get("skip_checks") == "on")
        run = state.uploads.start(choice, passphrase)
        return redirect(f"/runs/{run.id}")

    def find_run(request: Request) -> Run:
        return _lookup(state.uploads.runs, request, "No such upload in this session.")

    async def run_page(request: Request) -> Response:
        unlocked()
        return render(request, "run.html", run=find_run(request), nav="upload")

    async def run_events(request: Request) -> Response:
        unlocked()
        run = find_run(request)
        progress = templates.get_template("_progress.html")
        results = templates.get_template("_results.html")

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
        unlocked()
        run = find_run(request)
        state.uploads.cancel(run)
        return redirect(f"/runs/{run.id}")

    async def retry(request: Request, form: FormData) -> Response:
        passphrase = unlocked()
        run = state.uploads.retry(find_run(request), passphrase)
        return redirect(f"/runs/{run.id}")

    # -- history --------------------------------------------------------------

    def history_rows(request: Request) -> tuple[dict[str, str], list[dict[str, Any]]]:
        filters = {k: request.query_params.get(k, "").strip() for k in ("account", "status", "q")}
        if filters["status"] and filters["status"] not in STATUSES:
            raise UsageError(f"unknown status {filters['status']!r}")
        journal = Journal(store.paths.journal_file)
        try:
            rows = journal.history(
                filters["account"] or None,
                HISTORY_LIMIT,
                status=filters["status"] or None,
                text=filters["q"] or None,
            )
        finally:
            journal.close()
        return filters, rows

    async def history(request: Request) -> Response:
        filters, rows = await asyncio.to_thread(history_rows, request)
        return render(
            request,
            "history.html",
            rows=list(reversed(rows)),
            filters=filters,
            query=_encode(filters),
            accounts=sorted(store.config().accounts),
            statuses=STATUSES,
            limit=HISTORY_LIMIT,
            nav="history",
        )

    async def history_csv(request: Request) -> Response:
        _, rows = await asyncio.to_thread(history_rows, request)
        text = io.StringIO()
        write_history_csv(rows, text)
        return Response(
            redact(text.getvalue()),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="stockup-history.csv"'},
        )

    # -- errors ---------------------------------------------------------------

    async def locked(request: Request, exc: Exception) -> Response:
        return redirect("/unlock")

    async def failed(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", 400, error=str(exc), nav="")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return render(request, "error.html", exc.status_code, error=exc.detail, nav="")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.uploads.close()

    routes = [
        Route("/", home),
        Route("/unlock", unlock_page),
        Route("/unlock", post(unlock), methods=["POST"]),
        Route("/lock", post(lock), methods=["POST"]),
        Route("/accounts", accounts),
        Route("/accounts", post(add_account), methods=["POST"]),
        Route("/accounts/{name}/test", post(test_account), methods=["POST"]),
        Route("/accounts/{name}/remove", post(remove_account), methods=["POST"]),
        Route("/agencies", agencies),
        Route("/upload", upload),
        Route("/upload", post(choose), methods=["POST"]),
        Route("/selections/{id}", selection_page),
        Route("/selections/{id}/start", post(start), methods=["POST"]),
        Route("/runs/{id}", run_page),
        Route("/runs/{id}/events", run_events),
        Route("/runs/{id}/cancel", post(cancel), methods=["POST"]),
        Route("/runs/{id}/retry", post(retry), methods=["POST"]),
        Route("/history", history),
        Route("/history.csv", history_csv),
        Mount("/static", StaticFiles(packages=[("stockup.web", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, keys=keys)],
        lifespan=lifespan,
        exception_handlers={
            Locked: locked,
            StockupError: failed,
            HTTPException: http_error,
        },
    )
    app.state.ui = state
    return app


ACCOUNT_FIELDS = ("name", "agency", "username", "host", "port", "protocol", "remote_dir", "ca_file")


def _lookup(items: Mapping[str, T], request: Request, missing: str) -> T:
    """The item named by the address's ``{id}``, or a 404 page saying ``missing``."""
    item = items.get(request.path_params["id"])
    if item is None:
        raise HTTPException(404, missing)
    return item


def _encode(params: Mapping[str, str | None]) -> str:
    return urlencode({k: v for k, v in params.items() if v})
