"""The web UI: a thin layer over the library, like the CLI.

Every page is rendered on the server from the same objects the CLI prints
(accounts, verdicts, results, history rows); the only script on the pages
follows an upload's progress through server-sent events. The pages live in
``stockup.web.pages``, one module per part of the UI; this module puts them
behind the guard.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from stockup.errors import StockupError
from stockup.store import Store
from stockup.web.guard import Guard, Keys
from stockup.web.pages import accounts, history, metadata, uploads, vault
from stockup.web.ui import Locked, Ui


def create_app(store: Store, keys: Keys) -> Starlette:
    ui = Ui(store, keys)

    async def locked(request: Request, exc: Exception) -> Response:
        return ui.redirect("/unlock")

    async def failed(request: Request, exc: Exception) -> Response:
        return ui.render(request, "error.html", 400, error=str(exc), nav="")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return ui.render(request, "error.html", exc.status_code, error=exc.detail, nav="")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await ui.uploads.close()

    routes = [
        *vault.routes(ui),
        *accounts.routes(ui),
        *uploads.routes(ui),
        *metadata.routes(ui),
        *history.routes(ui),
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
    app.state.ui = ui
    return app
