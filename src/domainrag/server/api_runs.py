"""Evaluation runs of a collection: list, one run's JSON and HTML report, and comparisons.

A run's case records quote retrieved passages and cited documents, which may lie outside a
key's groups, so runs are shown only to keys without a group restriction (admin or ``--groups
'*'``); other keys get 403."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..errors import ConfigError
from ..kb import KnowledgeBase
from .access import Caller, unrestricted
from .common import PROBLEMS, blocking, kb_for
from .keys import Principal
from .problems import NotFound
from .schemas import RunList

router = APIRouter(prefix="/v1", responses=PROBLEMS)
_HTML: dict[int | str, dict[str, Any]] = {200: {"content": {"text/html": {}}}}


def _runs_kb(request: Request, caller: Principal, collection: str) -> KnowledgeBase:
    kb = kb_for(request, caller, collection, "read")
    unrestricted(caller, f"the evaluation runs of collection {collection!r}")
    return kb


@router.get("/collections/{collection}/runs", response_model=RunList, summary="Evaluation runs, newest first")
async def list_runs(request: Request, collection: str, caller: Caller) -> dict[str, Any]:
    kb = _runs_kb(request, caller, collection)
    runs = await blocking(request, kb.runs.list)
    return {"runs": [r.to_dict() for r in runs]}


@router.get("/collections/{collection}/runs/{run}", summary="One run (Run JSON: manifest, summary, cases)")
async def get_run(request: Request, collection: str, run: str, caller: Caller) -> dict[str, Any]:
    kb = _runs_kb(request, caller, collection)
    return await blocking(request, _run_dict, kb, collection, run)


@router.get("/collections/{collection}/runs/{run}/report", response_class=HTMLResponse, responses=_HTML,
            summary="One run's self-contained HTML report")
async def run_report(request: Request, collection: str, run: str, caller: Caller) -> HTMLResponse:
    from ..report.html import render_html

    kb = _runs_kb(request, caller, collection)
    data = await blocking(request, _run_dict, kb, collection, run)
    return HTMLResponse(render_html(data))


@router.get("/collections/{collection}/compare", responses=_HTML,
            summary="Compare run 'new' with 'baseline' (Comparison JSON, or HTML with format=html)")
async def compare(request: Request, collection: str, baseline: str, caller: Caller, new: str = "last",
                  force: bool = False, format: Literal["json", "html"] = "json") -> Any:
    from ..report.comparison_html import render_comparison_html

    kb = _runs_kb(request, caller, collection)
    await blocking(request, _resolve, kb, collection, baseline)
    await blocking(request, _resolve, kb, collection, new)
    comparison = (await blocking(request, kb.compare, baseline, new, force=force)).to_dict()
    return HTMLResponse(render_comparison_html(comparison)) if format == "html" else comparison


def _run_dict(kb: KnowledgeBase, collection: str, ref: str) -> dict[str, Any]:
    _resolve(kb, collection, ref)
    return kb.runs.get(ref).to_dict()


def _resolve(kb: KnowledgeBase, collection: str, ref: str) -> str:
    try:
        return kb.runs.resolve(ref)
    except ConfigError as exc:
        raise NotFound(f"No run {ref!r} in collection {collection!r} (a run id, name, pinned baseline, last or "
                       f"last~N). GET /v1/collections/{collection}/runs lists them.") from exc
