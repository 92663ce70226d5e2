"""What the MCP tools, resources and prompts do: the REST API's access checks and library calls
under one caller, for both transports. Every read passes the caller's groups into the library
(``common.scoped``), so the store's query leaves out what the key may not read; a document the
caller may not read is "not found", word for word as a missing one.

Calls here block (they search, read and answer): the protocol layer runs them in worker threads.
Errors are :class:`~domainrag.errors.DomainragError` s: :class:`.schemas.BadArgument` for an
argument, the REST API's problems (:class:`~..problems.Forbidden`, :class:`~..problems.NotFound`)
and the library's own."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from ...errors import DomainragError
from ...index.store import visible
from ...kb import KnowledgeBase
from ...types import Answer, Hit
from ..access import allow
from ..collections import Collections
from ..common import scoped
from ..keys import Principal
from ..policy import check_model, check_template
from ..problems import Forbidden, Invalid, NotFound
from .schemas import (
    MAX_FETCH_CHARS,
    AskArgs,
    AskResult,
    BadArgument,
    CitationOut,
    CollectionOut,
    CollectionsResult,
    FetchArgs,
    Fetched,
    Passage,
    SearchArgs,
    SearchResult,
)

SCHEME = "domainrag://"
#: Templates the pipeline uses itself (judging, rewriting, generating suites): not prompts for a client.
INTERNAL_TEMPLATES = frozenset({"faithfulness", "judge", "rewrite", "generate", "verify"})


def document_uri(collection: str, doc_id: str) -> str:
    return f"{SCHEME}{collection}/{quote(doc_id, safe='/')}"


def passage_uri(collection: str, doc_id: str, start: int, end: int) -> str:
    return f"{document_uri(collection, doc_id)}#chars={start}-{end}"


def parse_uri(uri: str) -> tuple[str, str, tuple[int, int] | None]:
    """(collection, document id, char range or None) of a ``domainrag://`` id."""
    if not uri.startswith(SCHEME):
        raise BadArgument("id", f"{uri[:80]!a} is not a domainrag id; give an 'id' or 'document' value exactly as "
                                "search returned it (domainrag://COLLECTION/DOC_ID).")
    rest, _, fragment = uri[len(SCHEME):].partition("#")
    collection, _, doc_id = rest.partition("/")
    if not collection or not doc_id:
        raise BadArgument("id", "it names no document: give domainrag://COLLECTION/DOC_ID as search returned it.")
    return collection, unquote(doc_id), _chars(fragment) if fragment else None


def _chars(fragment: str) -> tuple[int, int]:
    name, _, value = fragment.partition("=")
    start, _, end = value.partition("-")
    if name != "chars" or not start.isdigit() or not end.isdigit() or int(start) >= int(end):
        raise BadArgument("id", f"the part after '#' ({fragment[:40]!a}) is not chars=START-END with START < END; "
                                "give the id as search returned it, or leave the '#...' out for the whole document.")
    return int(start), int(end)


@dataclass
class McpService:
    """The tools, resources and prompts over ``collections``.

    ``models``: the answer models a caller may choose (the server's ``[server] models``);
    ``None`` for the operator's own stdio server, where any model may be named.
    ``descriptions``: what ``list_collections`` says of each collection (else a summary)."""

    collections: Collections
    models: Sequence[str] | None = ()
    descriptions: Mapping[str, str] = field(default_factory=dict)
    #: Told of every answer (collection, answer): the server's metrics, as for the REST routes.
    on_answer: Callable[[str, Answer], None] | None = None

    # -- tools ---------------------------------------------------------------------------------
    def search(self, caller: Principal, args: SearchArgs) -> SearchResult:
        name, kb = self.collection(caller, args.collection)
        hits = kb.search(args.query, args.k, args.mode, args.filters, **scoped(caller))
        return SearchResult(collection=name, query=args.query, results=[_passage(name, h) for h in hits])

    def fetch(self, caller: Principal, args: FetchArgs) -> Fetched:
        name, doc_id, chars = parse_uri(args.id)
        document = self.document(caller, name, doc_id, args.id)
        text: str = document["text"]
        start, end = chars or (0, len(text))
        if end > len(text):
            raise BadArgument("id", f"chars={start}-{end} lies outside the document ({len(text):,} characters); "
                                    "give an id as search returned it.")
        stop = min(end, start + MAX_FETCH_CHARS)
        return Fetched(id=args.id, collection=name, doc_id=doc_id, title=document.get("title") or "",
                       source=document.get("source") or "", url=document_uri(name, doc_id), start=start, end=stop,
                       length=len(text), truncated=stop < end,
                       next=passage_uri(name, doc_id, stop, end) if stop < end else None,
                       text=text[start:stop], metadata=dict(document.get("metadata") or {}))

    def ask(self, caller: Principal, args: AskArgs) -> AskResult:
        name, kb = self.collection(caller, args.collection)
        if self.models is not None:
            _as_argument("model", check_model, args.model, self.models, kb)
        _as_argument("template", check_template, args.template, kb)
        answer = kb.ask(args.question, args.model, args.template, **scoped(caller))
        if self.on_answer is not None:
            self.on_answer(name, answer)
        return _answer(name, answer)

    def list_collections(self, caller: Principal) -> CollectionsResult:
        return CollectionsResult(collections=[self._summary(caller, n) for n in self.names(caller)])

    # -- resources and prompts -----------------------------------------------------------------
    def documents(self, caller: Principal) -> Iterator[tuple[str, dict[str, Any]]]:
        """(collection, document) for every document the caller may read, collection by collection."""
        for name in self.names(caller):
            try:
                kb = self.collections.get(name)
            except DomainragError:
                continue   # list_collections reports it
            for document in kb.store.iter_documents():
                if visible(document["metadata"], caller.groups):
                    yield name, document

    def document(self, caller: Principal, collection: str, doc_id: str, shown: str) -> dict[str, Any]:
        """The document, or :class:`NotFound` — the same words when it exists but the caller's
        groups may not read it."""
        _, kb = self.collection(caller, collection, argument="id")
        document = kb.document(doc_id, groups=caller.groups)
        if document is None:
            raise NotFound(f"No document {shown[:200]!a}. Use an id that search returned, or list the documents "
                           "(resources/list).")
        return document

    def prompt_names(self, caller: Principal) -> list[str]:
        names: set[str] = set()
        for name in self.names(caller):
            try:
                names.update(self.collections.get(name).answerer.templates.names())
            except DomainragError:
                continue
        return sorted(names - INTERNAL_TEMPLATES)

    def prompt(self, caller: Principal, template: str, question: str, collection: str | None) -> list[tuple[str, str]]:
        """The (role, text) messages of ``template`` for ``question`` with the sources the caller
        may read, as :meth:`KnowledgeBase.ask` would send them to a model."""
        _, kb = self.collection(caller, collection)
        if template in INTERNAL_TEMPLATES:
            raise BadArgument("name", f"{template!a} is not a prompt; prompts/list names them.")
        _as_argument("name", check_template, template, kb)
        prompt = kb.prompt(question, template, **scoped(caller))
        return [(m.role, m.content) for m in prompt.messages]

    # -- collections ---------------------------------------------------------------------------
    def names(self, caller: Principal) -> list[str]:
        return [n for n in self.collections.names() if caller.may_use(n)]

    def collection(self, caller: Principal, name: str | None, *,
                   argument: str = "collection") -> tuple[str, KnowledgeBase]:
        """The collection ``name`` (or the caller's only one) after the REST API's access check."""
        if name is None:
            names = self.names(caller)
            if len(names) != 1:
                listed = ", ".join(names) or "none"
                raise BadArgument("collection", f"this server has {len(names)} collections for you ({listed}); "
                                                "name one.")
            name = names[0]
        listed = ", ".join(self.names(caller)) or "none"
        try:
            allow(caller, name, "read")   # the same words whether the collection exists or not
        except Forbidden as exc:
            raise BadArgument(argument, f"{exc} Yours: {listed}.") from None
        try:
            return name, self.collections.get(name)
        except NotFound:
            raise BadArgument(argument, f"there is no collection {name[:64]!a} (yours: {listed}); "
                                        "list_collections names them.") from None

    def _summary(self, caller: Principal, name: str) -> CollectionOut:
        try:
            kb = self.collections.get(name)
            documents = int(kb.store.stats()["documents"])
        except DomainragError as exc:
            return CollectionOut(name=name, description=self.descriptions.get(name, ""), documents=0,
                                 languages=[], status=f"error: {type(exc).__name__}")
        description = self.descriptions.get(name) or _describe(kb, caller, documents)
        return CollectionOut(name=name, description=description, documents=documents,
                             languages=_languages(kb), status="ready")


def _as_argument(argument: str, check: Any, *args: Any) -> None:
    try:
        check(*args)
    except Invalid as exc:
        raise BadArgument(argument, str(exc)) from None


def _describe(kb: KnowledgeBase, caller: Principal, documents: int) -> str:
    """A summary for a model: the count and a few titles the caller may read."""
    readable = (d for d in kb.store.iter_documents() if visible(d["metadata"], caller.groups))
    titles = [d.get("title") or d["id"] for d in itertools.islice(readable, 5)]
    shown = "; ".join(t[:80] for t in titles)
    return f"{documents} documents" + (f", e.g. {shown}" if shown else "")


def _languages(kb: KnowledgeBase) -> list[str]:
    try:
        languages = kb.embedder.languages
    except DomainragError:
        return []
    return ["*"] if languages is None else sorted(languages)


def _passage(collection: str, hit: Hit) -> Passage:
    return Passage(id=passage_uri(collection, hit.doc_id, hit.span.start, hit.span.end),
                   document=document_uri(collection, hit.doc_id), collection=collection, doc_id=hit.doc_id,
                   title=hit.title, source=hit.source, page=hit.span.page, section=list(hit.heading_path),
                   start=hit.span.start, end=hit.span.end, score=round(float(hit.score), 6), text=hit.text)


def _answer(collection: str, answer: Answer) -> AskResult:
    citations = [CitationOut(number=c.number, document=document_uri(collection, c.doc_id), doc_id=c.doc_id,
                             title=c.title, page=c.span.page, quote=c.quote, sentence=c.sentence,
                             supported=c.supported, support=round(c.support, 4))
                 for c in answer.citations]
    return AskResult(collection=collection, question=answer.question, answer=answer.text, citations=citations,
                     grounded=round(answer.grounded, 4), abstained=answer.abstained,
                     abstain_reason=answer.trace.abstain_reason, complete=answer.complete,
                     model=answer.manifest.get("model"))
