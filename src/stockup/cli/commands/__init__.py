"""One module per command group; each has ``register(commands, common)``.

:data:`COMMANDS` names each command's module and its one-line summary.
``stockup --help`` needs nothing more, so the application imports the module
of the command being run and no other: the modules pull in rich, the engine,
the catalogue and the vault, which cost several times Python's own start-up.
"""

from __future__ import annotations

from typing import NamedTuple


class Command(NamedTuple):
    module: str
    summary: str


COMMANDS = {
    "init": Command("vault", "create the encrypted vault"),
    "passphrase": Command("vault", "manage the vault passphrase"),
    "account": Command("account", "add, list, show, test or remove accounts"),
    "proxy": Command("proxy", "the global proxy: accounts without a proxy of their own use it"),
    "agencies": Command("agencies", "list the agencies stockup knows, or show one"),
    "check": Command("check", "check files against each agency's rules"),
    "meta": Command("meta", "show or change titles, descriptions and keywords"),
    "upload": Command("upload", "upload files to accounts"),
    "history": Command("history", "what went where, when, and the outcome"),
    "watch": Command("watch", "upload what lands in folders, as it lands"),
    "ui": Command("ui", "open the web UI in your browser (served on 127.0.0.1 only)"),
    "demo": Command("demo", "a self-contained demonstration on loopback"),
}


def summary(name: str) -> str:
    """The help line of command ``name``, for its module's ``register``."""
    return COMMANDS[name].summary
