"""Accounts (add, edit, test with host-key trust, remove) and the agency catalogue."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockup.catalogue import RULE_GROUPS, Agency, load_catalogue
from stockup.checks.rules import GROUP_TITLES, plain_rules
from stockup.config import Account
from stockup.credentials import Credentials
from stockup.errors import HostKeyUnknown, StockupError, UsageError
from stockup.secret import Secret
from stockup.store import AccountChanges, AccountOptions, build_account, edit_account
from stockup.transfer import AccountCheck, check_account
from stockup.transports import PROTOCOLS
from stockup.web.ui import Ui, checked, field

ACCOUNT_FIELDS = (
    "name", "agency", "username", "host", "port", "protocol", "remote_dir", "ca_file",
    "pin_sha256", "connections", "rules", "proxy",
)  # fmt: skip


@dataclass
class TestOutcome:
    account: str
    check: AccountCheck | None = None
    error: str | None = None
    unknown_fingerprint: str | None = None


def agencies_in_order() -> list[Agency]:
    """The catalogue by name, with the custom server last."""
    return sorted(load_catalogue().values(), key=lambda a: (a.is_custom, a.name))


def _number(text: str, what: str, low: int, high: int) -> int | None:
    if not text:
        return None
    if not (text.isdigit() and low <= int(text) <= high):
        raise UsageError(f"the {what} must be a number from {low} to {high}")
    return int(text)


def _login(form: FormData, typed: dict[str, str], required: bool) -> Credentials | None:
    password = form.get("password")
    given = bool(typed["username"]) or (isinstance(password, str) and bool(password))
    if not required and not given:
        return None
    if not typed["username"] or not isinstance(password, str) or not password:
        raise UsageError("give the username and the password for this account")
    return Credentials(typed["username"], Secret(password))


def _edit_form(account: Account) -> dict[str, str]:
    return {
        "name": account.name,
        "agency": account.agency,
        "host": account.host,
        "port": str(account.port),
        "protocol": account.protocol,
        "remote_dir": account.remote_dir,
        "ca_file": account.ca_file or "",
        "pin_sha256": account.pin_sha256 or "",
        "connections": str(account.connections or ""),
        "allow_plaintext": "on" if account.allow_plaintext else "",
        "rules": account.rules or "",
        "proxy": account.proxy or "",
    }


def _proxy_password(form: FormData) -> Secret | None:
    password = form.get("proxy_password")
    return Secret(password) if isinstance(password, str) and password else None


def routes(ui: Ui) -> list[Route]:
    store = ui.store

    def accounts_page(
        request: Request, status: int = 200, form: dict[str, str] | None = None, **context: Any
    ) -> Response:
        ui.unlocked()
        return ui.render(
            request,
            "accounts.html",
            status,
            accounts=list(store.config().accounts.values()),
            agencies=agencies_in_order(),
            protocols=list(PROTOCOLS),
            form=form or {"agency": "shutterstock"},
            nav="accounts",
            **context,
        )

    async def accounts(request: Request) -> Response:
        return accounts_page(request)

    async def add_account(request: Request, form: FormData) -> Response:
        passphrase = ui.unlocked()
        typed = {k: field(form, k) for k in ACCOUNT_FIELDS}
        try:
            options = AccountOptions(
                agency=typed["agency"],
                host=typed["host"] or None,
                port=_number(typed["port"], "port", 1, 65535),
                protocol=typed["protocol"] or None,
                remote_dir=typed["remote_dir"] or None,
                ca_file=typed["ca_file"] or None,
                pin_sha256=typed["pin_sha256"] or None,
                connections=_number(typed["connections"], "number of connections", 1, 32),
                allow_plaintext=checked(form, "allow_plaintext"),
                rules=typed["rules"] or None,
                proxy=typed["proxy"] or None,
            )
            account = build_account(typed["name"], options)
            credentials = _login(form, typed, required=True)
            assert credentials is not None
            await asyncio.to_thread(
                functools.partial(
                    store.add_account,
                    account,
                    credentials,
                    passphrase,
                    proxy_password=_proxy_password(form),
                )
            )
        except StockupError as exc:
            # The form comes back filled in, but never with the password.
            return accounts_page(request, 400, form=typed, error=str(exc))
        warning = f" Warning: {account.cleartext_warning}." if account.cleartext_warning else ""
        return ui.redirect(
            "/accounts", f"Added account {account.name} ({account.security}).{warning}"
        )

    def edit_page(
        request: Request, account: Account, status: int = 200, **context: Any
    ) -> Response:
        ui.unlocked()
        context.setdefault("form", _edit_form(account))
        return ui.render(
            request,
            "account_edit.html",
            status,
            account=account,
            protocols=list(PROTOCOLS),
            agencies=agencies_in_order(),
            nav="accounts",
            **context,
        )

    def named_account(request: Request) -> Account:
        account = store.config().accounts.get(request.path_params["name"])
        if account is None:
            raise HTTPException(404, "No such account.")
        return account

    async def edit(request: Request) -> Response:
        return edit_page(request, named_account(request))

    async def save_edit(request: Request, form: FormData) -> Response:
        passphrase = ui.unlocked()
        account = named_account(request)
        typed = {k: field(form, k) for k in ACCOUNT_FIELDS}
        try:
            changes = AccountChanges(
                host=typed["host"] or None,
                port=_number(typed["port"], "port", 1, 65535),
                protocol=typed["protocol"] or None,
                remote_dir=typed["remote_dir"],
                ca_file=typed["ca_file"],
                pin_sha256=typed["pin_sha256"],
                connections=_number(typed["connections"], "number of connections", 1, 32) or 0,
                allow_plaintext=checked(form, "allow_plaintext"),
                rules=typed["rules"] if account.agency == "custom" else None,
                proxy=typed["proxy"],
            )
            moved = edit_account(account, changes).endpoint != account.endpoint
            credentials = _login(form, typed, required=moved)
            new = await asyncio.to_thread(
                store.edit_account,
                account.name,
                changes,
                passphrase,
                credentials,
                _proxy_password(form),
            )
        except StockupError as exc:
            typed["allow_plaintext"] = "on" if checked(form, "allow_plaintext") else ""
            return edit_page(request, account, 400, form=typed, error=str(exc))
        warning = f" Warning: {new.cleartext_warning}." if new.cleartext_warning else ""
        return ui.redirect("/accounts", f"Saved account {new.name} ({new.endpoint}).{warning}")

    async def test_account(request: Request, form: FormData) -> Response:
        passphrase = ui.unlocked()
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
        passphrase = ui.unlocked()
        name = request.path_params["name"]
        await asyncio.to_thread(store.remove_account, name, passphrase)
        return ui.redirect("/accounts", f"Removed account {name} and its secrets.")

    async def agencies(request: Request) -> Response:
        listed = agencies_in_order()
        return ui.render(
            request,
            "agencies.html",
            agencies=listed,
            plain={a.id: plain_rules(a) for a in listed},
            groups=RULE_GROUPS,
            titles=GROUP_TITLES,
            nav="agencies",
        )

    return [
        Route("/accounts", accounts),
        Route("/accounts", ui.post(add_account), methods=["POST"]),
        Route("/accounts/{name}/edit", edit),
        Route("/accounts/{name}/edit", ui.post(save_edit), methods=["POST"]),
        Route("/accounts/{name}/test", ui.post(test_account), methods=["POST"]),
        Route("/accounts/{name}/remove", ui.post(remove_account), methods=["POST"]),
        Route("/agencies", agencies),
    ]
