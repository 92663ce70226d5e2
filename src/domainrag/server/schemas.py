"""Request and response bodies of the REST API (what ``/openapi.json`` describes). Responses
that carry the library's own records (``Hit``, ``Answer``, ``Run``) are their ``to_dict()``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .settings import COLLECTION_NAME

Mode = Literal["hybrid", "lexical", "dense"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrievalOptions(_Body):
    k: int | None = Field(None, ge=1, le=1000, description="Chunks retrieved (default from the collection's config).")
    mode: Mode | None = None
    filters: dict[str, Any] | None = Field(None, description='e.g. {"path": "policies/*.pdf", "format": "pdf"}')


class SearchRequest(RetrievalOptions):
    query: str = Field(..., min_length=1, max_length=100_000)


class AnswerOptions(RetrievalOptions):
    model: str | None = Field(None, description="provider:model (default: the collection's answer.model).")
    template: str | None = None
    stream: bool = Field(False, description="Server-sent events: token..., then answer (or error).")


class AskRequest(AnswerOptions):
    question: str


class Message(_Body):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(AnswerOptions):
    messages: list[Message] = Field(..., min_length=1, description="The conversation; the last one is the user's.")


class CreateCollection(_Body):
    name: str = Field(..., pattern=COLLECTION_NAME)
    settings: dict[str, Any] = Field(default_factory=dict, description='Dotted keys: {"embedder.model": "minilm"}')


class TextDocument(_Body):
    name: str = Field(..., min_length=1, max_length=255)
    text: str
    metadata: dict[str, str | int | float | bool] | None = None


class DocumentsUpload(_Body):
    documents: list[TextDocument] = Field(..., min_length=1)
    acl: list[str] | None = Field(None, description="Groups that may read these documents (none: everyone).")


# -- responses -----------------------------------------------------------------------------------
class Health(BaseModel):
    status: str


class CollectionSummary(BaseModel):
    name: str
    documents: int
    chunks: int
    status: str


class CollectionList(BaseModel):
    collections: list[CollectionSummary]


class CollectionDetail(BaseModel):
    name: str
    status: str
    manifest: dict[str, Any] | None
    stats: dict[str, Any]


class DocumentInfo(BaseModel):
    id: str
    source: str
    title: str | None
    metadata: dict[str, Any]


class DocumentList(BaseModel):
    documents: list[DocumentInfo]


class DocumentFull(DocumentInfo):
    text: str


class ParseNoteOut(BaseModel):
    code: str = Field(description="empty, sparse, mojibake, ocr_confidence, unread_pages, failed_pages, "
                                  "flattened_tables, truncated, failed_attachment; ocr (a plain note)")
    message: str
    warning: bool = Field(description="True: the file parsed suspiciously; false: a fact worth knowing")


class ParseFile(BaseModel):
    source: str
    notes: list[ParseNoteOut]


class ParseReport(BaseModel):
    files: list[ParseFile] = Field(description="Files whose parse left notes, in source order")


class Failure(BaseModel):
    file: str
    reason: str


class JobOut(BaseModel):
    id: str
    collection: str
    kind: Literal["ingest", "reingest"]
    state: Literal["queued", "running", "done", "failed", "interrupted"]
    files_total: int
    files_done: int
    chunks: int
    failures: list[Failure]
    error: str | None
    acl: list[str] | None
    created_at: str
    finished_at: str | None


class JobAccepted(BaseModel):
    job: JobOut


class Hits(BaseModel):
    hits: list[dict[str, Any]] = Field(..., description="Hit.to_dict() of each hit, best first.")


class AnswerOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    question: str
    text: str
    abstained: bool
    complete: bool
    grounded: float
    citations: list[dict[str, Any]]
    usage: dict[str, Any]
    manifest: dict[str, Any]
    trace: dict[str, Any]


class RunList(BaseModel):
    runs: list[dict[str, Any]] = Field(..., description="RunInfo.to_dict() of each run, newest first.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
