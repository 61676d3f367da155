"""`stockup demo`: the main job on an embedded default (see docs)."""

from __future__ import annotations

import argparse
from typing import Any

from stockup.demo import run_demo


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("demo", help="a self-contained demonstration on loopback")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return run_demo()
