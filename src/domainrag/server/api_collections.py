"""Routes for collections, their documents and ingest jobs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from ..acl import parse_groups
from ..errors import DomainragError
from ..index.store import visible
from ..kb import KnowledgeBase
from .access import Caller, require
from .common import PROBLEMS, blocking, kb_for
from .jobs import Job, new_job_id, reingest_paths
from .keys import Principal
from .policy import check_collection_settings
from .problems import Forbidden, Invalid, NotFound, UnsupportedType, for_client
from .schemas import (
    CollectionDetail,
    CollectionList,
    CreateCollection,
    DocumentFull,
    DocumentList,
    DocumentsUpload,
    JobAccepted,
    JobOut,
    ParseReport,
)
from .state import ServerState, server_state
from .uploads import MultipartUpload, write_documents

router = APIRouter(prefix="/v1", responses=PROBLEMS)
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["files"], "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
            "acl": {"type": "string", "description": "Comma-separated groups that may read the files"}}}},
        "application/json": {"schema": {"$ref": "#/components/schemas/DocumentsUpload"}},
    },
}

_UPLOAD_PROBLEMS: dict[int | str, dict[str, Any]] = {415: {**PROBLEMS[422], "description": (
    "A file type not accepted (setting allowed_types), or a body that is neither multipart nor JSON")}}


# -- collections -----------------------------------------------------------------------------------
@router.get("/collections", response_model=CollectionList, summary="List the collections this key may use")
async def list_collections(request: Request, caller: Caller) -> dict[str, Any]:
    state = server_state(request)
    names = [n for n in state.collections.names() if caller.collections is None or n in caller.collections]
    return {"collections": await blocking(request, lambda: [_summary(state, n) for n in names])}


def _summary(state: ServerState, name: str) -> dict[str, Any]:
    try:
        stats = state.collections.get(name).store.stats()
    except DomainragError as exc:
        status = "error: " + for_client(str(exc), state.private_paths)
        return {"name": name, "documents": 0, "chunks": 0, "status": status}
    return {"name": name, "documents": stats["documents"], "chunks": stats["chunks"], "status": _status(state, name)}


def _status(state: ServerState, name: str) -> str:
    return "ingesting" if state.jobs.busy(name) else "ready"


@router.post("/collections", status_code=201, response_model=CollectionDetail, summary="Create a collection (admin)")
async def create_collection(request: Request, body: CreateCollection, caller: Caller) -> dict[str, Any]:
    require(caller, "admin", "create collections")
    check_collection_settings(body.settings)
    state = server_state(request)
    kb = await blocking(request, state.collections.create, body.name, body.settings)
    return _detail(state, body.name, kb)


@router.get("/collections/{collection}", response_model=CollectionDetail, summary="Describe a collection")
async def get_collection(request: Request, collection: str, caller: Caller) -> dict[str, Any]:
    kb = kb_for(request, caller, collection, "read")
    return await blocking(request, _detail, server_state(request), collection, kb)


def _detail(state: ServerState, name: str, kb: KnowledgeBase) -> dict[str, Any]:
    stats = kb.store.stats()
    return {"name": name, "status": _status(state, name), "manifest": kb.store.manifest(), "stats": stats}


@router.delete("/collections/{collection}", status_code=204, summary="Delete a collection (admin)")
async def delete_collection(request: Request, collection: str, caller: Caller) -> Response:
    kb_for(request, caller, collection, "admin")
    state = server_state(request)
    await blocking(request, state.collections.delete, collection)
    shutil.rmtree(state.jobs.uploads / collection, ignore_errors=True)
    return Response(status_code=204)


# -- documents -------------------------------------------------------------------------------------
@router.post("/collections/{collection}/documents", status_code=202, response_model=JobAccepted,
             openapi_extra={"requestBody": _UPLOAD_BODY}, responses=_UPLOAD_PROBLEMS,
             summary="Upload files (multipart 'files', optional 'acl') or JSON documents; ingested by a job")
async def upload_documents(request: Request, collection: str, caller: Caller) -> dict[str, Any]:
    kb = kb_for(request, caller, collection, "write")
    state = server_state(request)
    job_id = new_job_id()
    folder = state.jobs.incoming(collection, job_id)
    try:
        files, acl = await _receive(request, folder, state)
        acl = _groups_for_upload(caller, acl)
        await blocking(request, _check_replacements, state, kb, collection, files, caller)
        job = state.jobs.submit(collection, "ingest", files, acl, job_id=job_id)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return {"job": job.to_dict()}


def _groups_for_upload(caller: Principal, acl: list[str] | None) -> list[str] | None:
    """The groups of an upload. A key restricted to some groups gives only groups it holds, and
    its uploads default to those groups (never silently public); an unrestricted key gives any,
    and by default each file keeps the groups it had (else its documents' own)."""
    if caller.groups is None:
        return acl
    if acl is None:
        return sorted(caller.groups)
    foreign = sorted(set(acl) - caller.groups)
    if foreign:
        held = ", ".join(sorted(caller.groups)) or "none"
        raise Forbidden(f"This key may give uploads only the groups it holds ({held}); not {', '.join(foreign)}. "
                        "Ask an admin, or upload with a key of those groups.")
    return acl


def _check_replacements(state: ServerState, kb: KnowledgeBase, collection: str, files: list[str],
                        caller: Principal) -> None:
    """Refuse an upload that would replace a file holding documents the caller may not read."""
    if caller.groups is None:
        return
    target = state.jobs.files_dir(collection).resolve()
    names = set(files)
    replaced = {source for source in kb.store.source_states()
                if Path(source).name in names and Path(source).parent.resolve() == target}
    if not replaced:   # the common case: no document text is read
        return
    for document in kb.store.iter_documents():
        if document["source"] in replaced and not visible(document["metadata"], caller.groups):
            name = Path(document["source"]).name
            raise Forbidden(f"This key may not replace {name!r}: upload it under another name.")


async def _receive(request: Request, folder: Path, state: ServerState) -> tuple[list[str], list[str] | None]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _multipart(request, folder, state)
    if content_type.startswith("application/json"):
        return await _json_documents(request, folder, state)
    raise UnsupportedType(f"Content-Type {content_type or '(none)'!r} is not accepted here: send "
                          "multipart/form-data (files) or application/json (documents).")


async def _multipart(request: Request, folder: Path, state: ServerState) -> tuple[list[str], list[str] | None]:
    upload = MultipartUpload(folder, state.limits)
    await upload.read(request)
    acl = upload.fields.get("acl")
    return upload.files, list(parse_groups(acl, "acl")) if acl is not None else None


async def _json_documents(request: Request, folder: Path, state: ServerState) -> tuple[list[str], list[str] | None]:
    try:
        body = DocumentsUpload.model_validate_json(await state.limits.read(request))
    except ValidationError as exc:
        errors = [{"field": ".".join(["body", *map(str, e["loc"])]), "message": e["msg"]} for e in exc.errors()]
        fields = ", ".join(f"{e['field']} ({e['message']})" for e in errors)
        raise Invalid(f"Invalid request: {fields}. See /docs for the expected body.", errors=errors) from None
    documents = [d.model_dump() for d in body.documents]
    acl = list(parse_groups(body.acl, "body.acl")) if body.acl is not None else None
    return write_documents(folder, documents, state.limits), acl


@router.get("/collections/{collection}/documents", response_model=DocumentList,
            summary="List the documents this key may read")
async def list_documents(request: Request, collection: str, caller: Caller) -> dict[str, Any]:
    kb = kb_for(request, caller, collection, "read")
    return {"documents": await blocking(request, _documents, kb, caller)}


def _documents(kb: KnowledgeBase, caller: Principal) -> list[dict[str, Any]]:
    return [{k: d[k] for k in ("id", "source", "title", "metadata")}
            for d in kb.store.iter_documents() if visible(d["metadata"], caller.groups)]


@router.get("/collections/{collection}/parse", response_model=ParseReport,
            summary="The files that parsed suspiciously (all=true: every file with parse notes)")
async def parse_report(request: Request, collection: str, caller: Caller,
                       every: Annotated[bool, Query(alias="all")] = False) -> dict[str, Any]:
    kb = kb_for(request, caller, collection, "read")
    return {"files": await blocking(request, _parse_report, kb, caller, not every)}


def _parse_report(kb: KnowledgeBase, caller: Principal, warnings_only: bool) -> list[dict[str, Any]]:
    files = kb.parse_report(warnings_only=warnings_only)
    if caller.groups is None or not files:
        return files
    readable = {d["source"] for d in kb.store.iter_documents() if visible(d["metadata"], caller.groups)}
    return [f for f in files if f["source"] in readable]


@router.get("/collections/{collection}/documents/{doc_id:path}", response_model=DocumentFull,
            summary="One document with its text (404 when absent or not visible to this key)")
async def get_document(request: Request, collection: str, doc_id: str, caller: Caller) -> dict[str, Any]:
    kb = kb_for(request, caller, collection, "read")
    document = await blocking(request, kb.document, doc_id, groups=caller.groups)
    if document is None:
        raise NotFound(f"No document {doc_id!r} in collection {collection!r}. GET "
                       f"/v1/collections/{collection}/documents lists them.")
    return document


@router.delete("/collections/{collection}/sources/{source:path}", status_code=204,
               summary="Remove a source (a file and the documents read from it)")
async def delete_source(request: Request, collection: str, source: str, caller: Caller) -> Response:
    kb = kb_for(request, caller, collection, "write")
    state = server_state(request)
    removed = await blocking(request, _remove_source, state, kb, collection, source, caller)
    if not removed:
        raise NotFound(f"No source {source!r} in collection {collection!r}. The 'source' field of "
                       f"GET /v1/collections/{collection}/documents names them.")
    _forget_upload(state, collection, source)
    return Response(status_code=204)


def _remove_source(state: ServerState, kb: KnowledgeBase, collection: str, source: str, caller: Principal) -> int:
    """Remove ``source`` as the collection's writer; 0 when absent or holding a document the
    caller may not read (the same answer, so nothing is revealed)."""
    if source not in kb.store.source_states():
        return 0
    documents = [d for d in kb.store.iter_documents() if d["source"] == source]
    if not all(visible(d["metadata"], caller.groups) for d in documents):
        return 0
    with state.collections.writer(collection):
        if source not in kb.store.source_states():
            return 0
        removed = kb.store.remove_sources([source])
        kb.store.refresh()
    return removed


def _forget_upload(state: ServerState, collection: str, source: str) -> None:
    """Delete the kept upload behind ``source`` (only files in this collection's uploads)."""
    path = Path(source)
    if path.parent.resolve() == state.jobs.files_dir(collection).resolve() and path.is_file():
        path.unlink()


@router.post("/collections/{collection}/reingest", status_code=202, response_model=JobAccepted,
             summary="Ingest every source again with the collection's current settings")
async def reingest(request: Request, collection: str, caller: Caller) -> dict[str, Any]:
    kb = kb_for(request, caller, collection, "write")
    await blocking(request, reingest_paths, kb)  # refused now rather than in the job
    return {"job": server_state(request).jobs.submit(collection, "reingest").to_dict()}


# -- jobs --------------------------------------------------------------------------------------------
@router.get("/jobs/{job_id}", response_model=JobOut, summary="An ingest job's progress")
async def get_job(request: Request, job_id: str, caller: Caller) -> dict[str, Any]:
    job = server_state(request).jobs.store.get(job_id)
    if job is None or not _may_see(caller, job):
        raise NotFound(f"No job {job_id!r}. Job ids come from the 202 answer of an upload or re-ingest.")
    return job.to_dict()


def _may_see(caller: Principal, job: Job) -> bool:
    return caller.collections is None or job.collection in caller.collections
