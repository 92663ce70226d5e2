"""The MCP tools' arguments and results. Their JSON schemas (``$defs`` inlined: some clients
do not follow ``$ref``) are what ``tools/list`` declares; an argument that does not fit becomes
a :class:`BadArgument` naming it and the fix."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ...errors import DomainragError
from .surrogates import SENTINEL

Mode = Literal["hybrid", "lexical", "dense"]
MAX_K = 50
MAX_QUERY_CHARS = 10_000
MAX_ID_CHARS = 2_000
MAX_NAME_CHARS = 200
#: A fetched text longer than this is cut; the result says where the next part starts.
MAX_FETCH_CHARS = 100_000


class BadArgument(DomainragError):
    """A tool argument that does not fit: ``argument`` names it, the message says the fix."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"Invalid argument '{argument}': {message}")
        self.argument = argument


#: How to fix each argument, appended to the validator's complaint.
FIXES = {
    "query": f"give the search words as one string of 1 to {MAX_QUERY_CHARS:,} characters",
    "question": f"ask one question as a string of 1 to {MAX_QUERY_CHARS:,} characters",
    "collection": "leave it out to use the only collection, or give a name that list_collections returns",
    "k": f"give a whole number from 1 to {MAX_K}, e.g. 5, or leave it out",
    "mode": "give 'hybrid' (default), 'lexical' or 'dense', or leave it out",
    "filters": 'give an object of metadata fields, e.g. {"path": "policies/*.pdf"} or {"format": ["pdf", "docx"]}',
    "id": "give an 'id' or 'document' value exactly as search returned it (domainrag://COLLECTION/DOC_ID)",
    "model": "leave it out to use the collection's model",
    "template": "leave it out, or give a prompt name that prompts/list returns (general, finance, medical, legal)",
}


def _clean(value: Any) -> Any:
    """Strings without NUL or lone surrogates (they break stores and UTF-8 transports)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("contains a NUL character (\\u0000); remove it")
        if SENTINEL in value or not _encodable(value):
            raise ValueError("contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text; "
                             "send valid Unicode")
    elif isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    elif isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _clean(value)


Collection = Field(None, min_length=1, max_length=64, description=(
    "The collection to use, as list_collections names it. Leave it out when the server has one."))


class SearchArgs(_Args):
    query: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS, description=(
        "What to look for: a question or keywords, in the documents' language."))
    collection: str | None = Collection
    k: int = Field(5, ge=1, le=MAX_K, description=f"How many passages to return (1-{MAX_K}, default 5).")
    mode: Mode | None = Field(None, description=(
        "hybrid (default: keywords and meaning), lexical (exact words, names, numbers) or dense (meaning)."))
    filters: dict[str, str | list[str]] | None = Field(None, description=(
        'Only documents whose metadata match, e.g. {"path": "policies/*.pdf"}, {"doc_id": ["a", "b"]}, '
        '{"format": "pdf"}; a list matches any of its values.'))


class FetchArgs(_Args):
    id: str = Field(..., min_length=1, max_length=MAX_ID_CHARS, description=(
        "An 'id' (one passage) or 'document' (the whole document) from search results: "
        "domainrag://COLLECTION/DOC_ID, optionally with #chars=START-END."))


class AskArgs(_Args):
    question: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS, description="The question to answer.")
    collection: str | None = Collection
    model: str | None = Field(None, max_length=MAX_NAME_CHARS, description=(
        "provider:model to answer with; leave it out for the collection's own (the server offers only some)."))
    template: str | None = Field(None, max_length=64, description=(
        "The prompt template: general, finance, medical, legal, or one of the collection's own "
        "(prompts/list names them). Leave it out for the collection's default."))


class ListArgs(_Args):
    pass


# -- results -----------------------------------------------------------------------------------
class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Passage(_Out):
    id: str = Field(description="This passage: give it to fetch for its text alone.")
    document: str = Field(description="Its document: give it to fetch (or read it as a resource) for the whole text.")
    collection: str
    doc_id: str
    title: str
    source: str = Field(description="The file or record it was read from.")
    page: int | None = Field(description="Page number (PDF), when known.")
    section: list[str] = Field(description="Headings above the passage, outermost first.")
    start: int = Field(description="Character offset of the passage in the document text.")
    end: int
    score: float = Field(description="Retrieval score (higher is better; comparable within one search).")
    text: str


class SearchResult(_Out):
    collection: str
    query: str
    results: list[Passage]


class Fetched(_Out):
    id: str
    collection: str
    doc_id: str
    title: str
    source: str
    url: str = Field(description="The resource URI of the document.")
    start: int = Field(description="Character offset of 'text' in the document.")
    end: int
    length: int = Field(description="The whole document's length in characters.")
    truncated: bool = Field(description="Whether the text stops before 'end' of what was asked; 'next' continues.")
    next: str | None = Field(description="The id to fetch for the rest, when truncated.")
    text: str
    metadata: dict[str, Any]


class CitationOut(_Out):
    number: int = Field(description="The [n] marker in the answer text.")
    document: str = Field(description="The cited document's id for fetch.")
    doc_id: str
    title: str
    page: int | None
    quote: str = Field(description="The passage of the source that best supports the sentence.")
    sentence: str = Field(description="The answer's sentence that cites it.")
    supported: bool = Field(description="Whether the checker found the sentence supported by the quote.")
    support: float = Field(description="The checker's support probability (0-1).")


class AskResult(_Out):
    collection: str
    question: str
    answer: str = Field(description="The answer text with [n] citation markers (or the abstention message).")
    citations: list[CitationOut]
    grounded: float = Field(description="Share of the answer's claims the sources support (0-1).")
    abstained: bool = Field(description="True when the documents do not answer the question: a normal result.")
    abstain_reason: str | None
    complete: bool = Field(description="False when the model stopped early (the text is partial).")
    model: str | None


class CollectionOut(_Out):
    name: str
    description: str
    documents: int
    languages: list[str] = Field(description=(
        "Languages the semantic search reads ('*': any); keyword search reads all."))
    status: str


class CollectionsResult(_Out):
    collections: list[CollectionOut]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` inlined and pydantic's titles dropped."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def parse(model: type[_Args], arguments: Any) -> Any:
    """``arguments`` as ``model``, or :class:`BadArgument` for the first one that does not fit."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise BadArgument("arguments", "give the arguments as a JSON object")
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "arguments"
        if error["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields) or "none"
            raise BadArgument(name, f"this tool has no such argument (its arguments: {known})") from None
        message = str(error["msg"]).removeprefix("Value error, ")
        shown = _shown(error.get("input"))
        fix = FIXES.get(name, "see the tool's input schema")
        raise BadArgument(name, f"{message}{shown}; {fix}.") from None


def _shown(value: Any) -> str:
    """The offending value as the message quotes it: short, ASCII (never a raw surrogate)."""
    if isinstance(value, bool | int | float) or value is None:
        return f" (got {value!r})"
    if isinstance(value, str):
        return f" (got {len(value):,} characters)" if len(value) > 80 else f" (got {value!a})"
    return f" (got a {type(value).__name__})"
