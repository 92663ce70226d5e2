"""The MCP server: the SDK's low-level :class:`mcp.server.lowlevel.Server` over
:class:`.service.McpService`. Tools declare input and output schemas (:mod:`.schemas`) and
answer with structured content plus a readable text; a bad argument or a library error is a tool
result with ``isError`` and the fix (the model can correct itself), an unexpected exception one
that says only that it happened (the traceback goes to the log, never to the client or stdout).
Documents are resources (``domainrag://COLLECTION/DOC_ID``), templates are prompts."""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field

from ... import __version__
from ...errors import DomainragError
from ..keys import Principal
from ..problems import for_client
from . import text
from .schemas import (
    AskArgs,
    AskResult,
    BadArgument,
    CollectionsResult,
    FetchArgs,
    Fetched,
    ListArgs,
    SearchArgs,
    SearchResult,
    _Args,
    inline_schema,
    parse,
)
from .service import SCHEME, McpService, document_uri, parse_uri

log = logging.getLogger("domainrag.mcp")
T = TypeVar("T")
CallerOf = Callable[[ServerRequestContext[Any, Any]], Principal]
PAGE = 200
INSTRUCTIONS = (
    "domainrag answers from an organisation's own documents with checked citations. Use search to find "
    "passages (each with a document id, title, page and text), fetch to read a passage or a whole document by "
    "its id, and ask for an answer whose [n] citations were checked against the sources (an abstention means "
    "the documents do not answer). list_collections names the collections.")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    args: type[_Args]
    result: type[BaseModel]
    run: Callable[[McpService, Principal, Any], BaseModel]
    render: Callable[[Any], str]

    def tool(self) -> types.Tool:
        return types.Tool(name=self.name, title=self.title, description=self.description,
                          input_schema=inline_schema(self.args), output_schema=inline_schema(self.result),
                          annotations=types.ToolAnnotations(title=self.title, read_only_hint=True,
                                                            destructive_hint=False, idempotent_hint=True,
                                                            open_world_hint=False))


TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in (
    ToolSpec("search", "Search the documents", (
        "Find the passages of the documents that best match a query. Returns up to k passages, best first, each "
        "with an 'id' (pass it to fetch for that passage), its 'document' id (pass it to fetch for the whole "
        "document), title, source file, page, section headings, score and text. Use it to find evidence before "
        "answering; quote the title and page when you cite."),
        SearchArgs, SearchResult, McpService.search, text.search),
    ToolSpec("fetch", "Fetch a document or passage", (
        "Read the full text of a document, or of one passage, by an 'id' or 'document' value that search "
        "returned, with its title, source and metadata. Long documents come in parts of 100,000 characters: "
        "fetch 'next' for the rest."),
        FetchArgs, Fetched, McpService.fetch, text.fetch),
    ToolSpec("ask", "Answer with checked citations", (
        "Answer a question from the documents. Returns the answer text with [n] markers and, for each marker, "
        "the cited document, page and the quote that supports it; 'supported' says whether the checker found "
        "the sentence supported, 'grounded' the share of supported claims. 'abstained' true means the documents "
        "do not answer the question: say so rather than guessing."),
        AskArgs, AskResult, McpService.ask, text.ask),
    ToolSpec("list_collections", "List the collections", (
        "List the document collections you may search: name, description, number of documents and the "
        "languages its semantic search reads. Pass a name as 'collection' to the other tools when there is "
        "more than one."),
        ListArgs, CollectionsResult, lambda service, caller, _: service.list_collections(caller), text.collections),
)}


@functools.cache
def _tools() -> list[types.Tool]:
    """The tools' declarations (their schemas are computed once: pydantic takes ~10 ms per model)."""
    return [spec.tool() for spec in TOOLS.values()]


class PromptArgs(_Args):
    question: str = Field(..., min_length=1, max_length=10_000)
    collection: str | None = Field(None, min_length=1, max_length=64)


def build_server(service: McpService, caller_of: CallerOf, *, timeout_s: float,
                 private_paths: Sequence[tuple[str, str]] = ()) -> Server[Any]:
    """The MCP server over ``service``; ``caller_of`` tells who sent a request (the key's
    principal over HTTP, the local operator over stdio)."""
    handlers = _Handlers(service, caller_of, timeout_s, tuple(private_paths))
    return Server("domainrag", version=__version__, title="domainrag", instructions=INSTRUCTIONS,
                  on_list_tools=handlers.list_tools, on_call_tool=handlers.call_tool,
                  on_list_resources=handlers.list_resources,
                  on_list_resource_templates=handlers.list_resource_templates,
                  on_read_resource=handlers.read_resource, on_list_prompts=handlers.list_prompts,
                  on_get_prompt=handlers.get_prompt)


@dataclass
class _Handlers:
    service: McpService
    caller_of: CallerOf
    timeout_s: float
    private_paths: tuple[tuple[str, str], ...]

    async def list_tools(self, ctx: ServerRequestContext[Any, Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=_tools())

    async def call_tool(self, ctx: ServerRequestContext[Any, Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = TOOLS.get(params.name)
        if spec is None:
            return _tool_error(f"There is no tool {params.name[:64]!a}; the tools are {', '.join(TOOLS)}.")
        try:
            caller = self.caller_of(ctx)
            args = parse(spec.args, params.arguments)
            result = await self._blocking(spec.run, self.service, caller, args)
        except DomainragError as exc:
            return _tool_error(self._message(exc))
        except Exception as exc:  # noqa: BLE001 - the client gets no traceback; the log has it
            log.error("tool %s failed: %s", spec.name, type(exc).__name__, exc_info=True)
            return _tool_error(f"The {spec.name} tool failed unexpectedly ({type(exc).__name__}); the server log "
                               "has the details. Try again, or report it.")
        return types.CallToolResult(content=[types.TextContent(text=spec.render(result))],
                                    structured_content=result.model_dump(mode="json"))

    async def list_resources(self, ctx: ServerRequestContext[Any, Any],
                             params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        cursor = params.cursor if params else None
        start = int(cursor) if cursor and cursor.isdigit() else 0
        page = await self._guarded(self._page, self.caller_of(ctx), start)
        more = len(page) > PAGE
        resources = [types.Resource(uri=document_uri(name, d["id"]), name=d["id"], title=d.get("title") or d["id"],
                                    description=d.get("source") or None, mime_type="text/plain")
                     for name, d in page[:PAGE]]
        return types.ListResourcesResult(resources=resources, next_cursor=str(start + PAGE) if more else None)

    def _page(self, caller: Principal, start: int) -> list[tuple[str, dict[str, Any]]]:
        documents = self.service.documents(caller)
        return [(name, {k: d.get(k) for k in ("id", "title", "source")})
                for name, d in _slice(documents, start, start + PAGE + 1)]

    async def list_resource_templates(self, ctx: ServerRequestContext[Any, Any],
                                      params: types.PaginatedRequestParams | None
                                      ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            uri_template=SCHEME + "{collection}/{doc_id}", name="document", title="A document",
            description="The text of a document by collection and id (as search and resources/list give them).",
            mime_type="text/plain")
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(self, ctx: ServerRequestContext[Any, Any],
                            params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        fetched = await self._guarded(self.service.fetch, self.caller_of(ctx), _fetch_args(params.uri))
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=params.uri, mime_type="text/plain",
                                                                             text=fetched.text)])

    async def list_prompts(self, ctx: ServerRequestContext[Any, Any],
                           params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        names = await self._guarded(self.service.prompt_names, self.caller_of(ctx))
        arguments = [types.PromptArgument(name="question", description="The question to answer.", required=True),
                     types.PromptArgument(name="collection", required=False,
                                          description="The collection (leave it out when there is one).")]
        return types.ListPromptsResult(prompts=[types.Prompt(
            name=name, title=f"{name} answer prompt", arguments=arguments,
            description=(f"The '{name}' answer prompt with the passages retrieved for your question, numbered "
                         "[1], [2]... for citing: answer it with your own model.")) for name in names])

    async def get_prompt(self, ctx: ServerRequestContext[Any, Any],
                         params: types.GetPromptRequestParams) -> types.GetPromptResult:
        caller = self.caller_of(ctx)
        args = await self._guarded(parse, PromptArgs, params.arguments)
        messages = await self._guarded(self.service.prompt, caller, params.name, args.question, args.collection)
        # MCP prompts carry user and assistant messages: the system instructions lead the user's.
        content = "\n\n".join(text for _, text in messages)
        return types.GetPromptResult(description=f"The '{params.name}' prompt for: {args.question[:200]}",
                                     messages=[types.PromptMessage(role="user",
                                                                   content=types.TextContent(text=content))])

    # -- running library calls -----------------------------------------------------------------
    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread, a :class:`DomainragError` past ``timeout_s`` (the
        thread finishes on its own; its result is dropped)."""
        try:
            with anyio.fail_after(self.timeout_s):
                return await anyio.to_thread.run_sync(functools.partial(fn, *args), abandon_on_cancel=True)
        except TimeoutError:
            raise DomainragError(f"The request took longer than {self.timeout_s:g} s (setting request_timeout_s). "
                                 "Ask for less (a smaller k), or try again.") from None

    async def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        """:meth:`_blocking` for the methods that answer errors as MCP errors (not tool results)."""
        try:
            return await self._blocking(fn, *args)
        except DomainragError as exc:
            raise MCPError(types.INVALID_PARAMS, self._message(exc)) from None
        except Exception as exc:
            log.error("MCP request failed: %s", type(exc).__name__, exc_info=True)
            raise MCPError(types.INTERNAL_ERROR, f"The request failed unexpectedly ({type(exc).__name__}); the "
                                                 "server log has the details.") from None

    def _message(self, exc: DomainragError) -> str:
        return for_client(str(exc), self.private_paths)


def _fetch_args(uri: str) -> FetchArgs:
    try:
        args: FetchArgs = parse(FetchArgs, {"id": uri})
        parse_uri(args.id)
    except BadArgument as exc:
        raise MCPError(types.INVALID_PARAMS, str(exc).replace("'id'", "'uri'")) from None
    return args


def _slice(items: Any, start: int, stop: int) -> list[Any]:
    return list(itertools.islice(items, start, stop))


def _tool_error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)
