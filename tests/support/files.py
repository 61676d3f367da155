"""Test payloads: files with deterministic, non-repeating-looking content."""

from __future__ import annotations

import hashlib
from pathlib import Path


def make_file(path: Path, size: int, seed: object = 0) -> Path:
    """``size`` bytes derived from ``seed``: different seeds, different bytes."""
    block = hashlib.sha256(str(seed).encode()).digest()
    path.write_bytes((block * (size // 32 + 1))[:size])
    return path


def make_batch(folder: Path, sizes: list[int]) -> list[Path]:
    """``art_000.jpg``, ``art_001.jpg`` ... in ``folder``, one per size."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        make_file(folder / f"art_{index:03d}.jpg", size, seed=f"{folder}/{index}")
        for index, size in enumerate(sizes)
    ]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
