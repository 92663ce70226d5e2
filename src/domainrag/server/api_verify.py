"""``POST /v1/verify``: check an answer from any RAG system against its sources.

The same checker as every answer of this server (:func:`domainrag.answer.verify.verify`): the
offline verifier, or with ``collection`` that collection's own checking (``answer.verify``,
thresholds; the key needs read access to it). Which model verifies is the operator's setting,
never the request's. Bounded: at most ``MAX_SOURCES`` sources of ``MAX_SOURCE_CHARS`` characters
and an answer of ``MAX_ANSWER_CHARS``; an answer needing more than the checker's ``max_pairs``
claim–evidence pairs is a 422 naming the count."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from ..answer.citations import preset_verify_threshold
from ..answer.verify import as_sources, verify
from .access import Caller
from .common import PROBLEMS, JSONBytes, blocking, encode_json, kb_for
from .schemas import _Body

MAX_ANSWER_CHARS = 20_000
MAX_SOURCES = 64
MAX_SOURCE_CHARS = 50_000

router = APIRouter(prefix="/v1", responses=PROBLEMS)


class SourceIn(_Body):
    text: str = Field(..., max_length=MAX_SOURCE_CHARS)
    number: int | None = Field(None, ge=0, description="The n its [n] markers cite (default: position, from 1).")
    doc_id: str | None = Field(None, max_length=1000)
    title: str | None = Field(None, max_length=1000)
    page: int | None = Field(None, ge=0)


class VerifyRequest(_Body):
    answer: str = Field(..., max_length=MAX_ANSWER_CHARS, description="The answer, with [n] citation markers.")
    sources: list[str | SourceIn] = Field(..., min_length=1, max_length=MAX_SOURCES,
                                          description="The passages it cites, [1] first.")
    collection: str | None = Field(None, description="Check as this collection checks its answers.")
    template: Literal["general", "finance", "medical", "legal"] | None = Field(
        None, description="The preset whose threshold applies (medical, finance, legal are stricter).")


class ClaimOut(_Body):
    text: str
    claim: str
    start: int
    end: int
    cites: list[int]
    checked: list[int]
    verdict: Literal["supported", "unsupported", "not_a_claim"]
    score: float | None
    reason: str
    role: str


class VerificationOut(_Body):
    text: str
    grounded: float
    supported: bool
    verifier: str
    removed_markers: list[int]
    claims: list[ClaimOut]




_VERIFIED: dict[int | str, dict[str, Any]] = {200: {"model": VerificationOut, "description": "Each claim's verdict"}}


@router.post("/verify", response_model=None, responses=_VERIFIED,
             summary="Check each claim of an answer against its sources")
async def verify_answer(request: Request, body: VerifyRequest, caller: Caller) -> Response:
    kb = kb_for(request, caller, body.collection, "read") if body.collection else None
    sources = as_sources([s if isinstance(s, str) else _plain(s) for s in body.sources])

    def run() -> bytes:
        if kb is not None:
            result = kb.verify(body.answer, sources, template=body.template)
        else:
            result = verify(body.answer, sources, threshold=preset_verify_threshold(body.template))
        return encode_json(result.to_dict())

    return JSONBytes(await blocking(request, run))


def _plain(source: SourceIn) -> dict[str, Any]:
    return {k: v for k, v in source.model_dump().items() if v is not None}
