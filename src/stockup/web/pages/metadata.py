"""Editing titles, descriptions and keywords from the check page: one file
with its thumbnail and live counts against each chosen agency's limits, or
keywords added and removed on several files at once. Writing is the
library's (stockup.editing: a verified copy, then an atomic replace), and
the files are checked again afterwards."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stockup.checks import rules_agency
from stockup.checks.facts import RASTER, read_facts
from stockup.editing import Change, Edit, plan_edit, split_keywords, with_partners, write
from stockup.web.ui import Ui, field, lookup
from stockup.web.uploads import Selection

THUMBNAIL_PIXELS = 480


def thumbnail(path: Path) -> bytes | None:
    """A small JPEG of an image, decoded at reduced size (draft mode)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.draft("RGB", (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
            return out.getvalue()
    except Exception:  # any decoding error (SyntaxError for a broken PNG ...): no preview
        return None


def limits(selection: Selection) -> list[dict[str, Any]]:
    """Each chosen account's title and keyword limits, for the live counts."""
    found = []
    for account in selection.accounts:
        agency = rules_agency(account)
        if agency is None:
            continue
        rules = agency.rules
        found.append({
            "account": account.name,
            "agency": agency.name,
            "max_title": rules.max_title_chars or 0,
            "min_keywords": rules.min_keywords or 0,
            "max_keywords": rules.max_keywords or 0,
        })  # fmt: skip
    return found


def routes(ui: Ui) -> list[Route]:
    uploads = ui.uploads

    def selected(request: Request) -> tuple[Selection, int, Path]:
        selection = lookup(uploads.selections, request, "No such selection: choose again.")
        index = request.path_params["index"]
        if not (index.isdigit() and int(index) < len(selection.files)):
            raise HTTPException(404, "No such file in this selection.")
        return selection, int(index), selection.files[int(index)]

    def editor(request: Request, status: int = 200, **context: Any) -> Response:
        ui.unlocked()
        selection, index, path = selected(request)
        facts = read_facts(path)
        meta = facts.metadata
        context.setdefault("form", {
            "title": meta.title or "",
            "description": meta.description or "",
            "keywords": ", ".join(meta.keywords),
        })  # fmt: skip
        return ui.render(
            request,
            "meta_edit.html",
            status,
            selection=selection,
            index=index,
            path=path,
            facts=facts,
            has_thumbnail=facts.format in RASTER,
            limits=limits(selection),
            partners=[p.name for p in with_partners([path]) if p != path],
            nav="upload",
            **context,
        )

    async def edit_page(request: Request) -> Response:
        return editor(request)

    async def save(request: Request, form: FormData) -> Response:
        ui.unlocked()
        selection, _, path = selected(request)
        edit = Edit(
            title=field(form, "title"),
            description=field(form, "description"),
            keywords=split_keywords(field(form, "keywords")),
        )
        changes = await asyncio.to_thread(_write_all, with_partners([path]), edit)
        failed = [c for c in changes if c.error]
        if failed:
            typed = {k: field(form, k) for k in ("title", "description", "keywords")}
            return editor(request, 400, form=typed, error="; ".join(c.error or "" for c in failed))
        await uploads.recheck(selection)
        names = ", ".join(c.path.name for c in changes if c.written) or "nothing changed"
        return ui.redirect(f"/selections/{selection.id}", f"Saved: {names}. Checked again.")

    async def thumb(request: Request) -> Response:
        ui.unlocked()
        _, _, path = selected(request)
        data = await asyncio.to_thread(thumbnail, path)
        if data is None:
            raise HTTPException(404, "No preview for this file.")
        return Response(data, media_type="image/jpeg")

    async def bulk(request: Request, form: FormData) -> Response:
        ui.unlocked()
        selection = lookup(uploads.selections, request, "No such selection: choose again.")
        ticked = [int(v) for v in form.getlist("file") if isinstance(v, str) and v.isdigit()]
        paths = [selection.files[i] for i in ticked if i < len(selection.files)]
        edit = Edit(
            add_keywords=split_keywords(field(form, "add_keywords")),
            remove_keywords=split_keywords(field(form, "remove_keywords")),
        )
        if not paths or edit.empty:
            return ui.redirect(
                f"/selections/{selection.id}", "Tick files, and give keywords to add or remove."
            )
        changes = await asyncio.to_thread(_write_all, with_partners(paths), edit)
        await uploads.recheck(selection)
        written = sum(c.written for c in changes)
        failed = [f"{c.path.name}: {c.error}" for c in changes if c.error]
        notice = f"Keywords changed in {written} file(s)." + (
            f" Not changed: {'; '.join(failed)}." if failed else "")  # fmt: skip
        return ui.redirect(f"/selections/{selection.id}", notice + " Checked again.")

    return [
        Route("/selections/{id}/files/{index}", edit_page),
        Route("/selections/{id}/files/{index}", ui.post(save), methods=["POST"]),
        Route("/selections/{id}/files/{index}/thumb", thumb),
        Route("/selections/{id}/bulk", ui.post(bulk), methods=["POST"]),
    ]


def _write_all(paths: list[Path], edit: Edit) -> list[Change]:
    return [write(plan_edit(path, edit)) for path in paths]
