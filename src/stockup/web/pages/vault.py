"""Unlocking (or creating) the vault, and locking it again."""

from __future__ import annotations

import asyncio

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockup.errors import StockupError, UsageError, VaultError
from stockup.passphrase import PassphraseSource, weakness
from stockup.secret import Secret
from stockup.vault import read_key_source
from stockup.web.ui import Ui


def routes(ui: Ui) -> list[Route]:
    store = ui.store

    def vault_mode() -> str:
        return read_key_source(store.paths.vault_file) if store.vault_exists() else "create"

    async def home(request: Request) -> Response:
        return ui.redirect("/upload" if ui.passphrase else "/unlock")

    async def unlock_page(request: Request) -> Response:
        return ui.render(request, "unlock.html", mode=vault_mode(), nav="unlock")

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
            return ui.render(
                request, "unlock.html", status, mode=mode, error=str(exc), nav="unlock"
            )
        ui.passphrase = source
        if mode == "create":
            warning = weakness(source.get())
            advice = f" Warning: {warning}" if warning else ""
            return ui.redirect(
                "/accounts", f"Vault created. Add your first agency account.{advice}"
            )
        if not store.config().accounts:
            return ui.redirect("/accounts", "Vault unlocked. Add your first agency account.")
        return ui.redirect("/upload", "Vault unlocked.")

    async def lock(request: Request, form: FormData) -> Response:
        ui.passphrase = None
        return ui.redirect("/unlock", "Locked: the passphrase is forgotten.")

    return [
        Route("/", home),
        Route("/unlock", unlock_page),
        Route("/unlock", ui.post(unlock), methods=["POST"]),
        Route("/lock", ui.post(lock), methods=["POST"]),
    ]
