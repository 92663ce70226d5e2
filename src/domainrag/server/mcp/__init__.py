"""The MCP edge: the same collections, keys, document groups and library calls as the REST API,
offered to agents over the Model Context Protocol (``domainrag mcp`` over stdio, ``/mcp`` of
``domainrag serve`` over Streamable HTTP).

- :mod:`.schemas` — the tools' arguments and results (pydantic; their JSON schemas are what
  ``tools/list`` declares) and the fix-it message for a bad argument;
- :mod:`.service` — what each tool, resource and prompt does, as plain library calls under one
  caller (:class:`~domainrag.server.keys.Principal`), shared by both transports;
- :mod:`.protocol` — the SDK's low-level server over that service (imports ``mcp``);
- :mod:`.http` — the ``/mcp`` endpoint inside the FastAPI app (the REST API's key check);
- :mod:`.stdio` — ``domainrag mcp``.

Importing this package imports nothing: the SDK is loaded by the modules that need it
(``pip install "domainrag[mcp]"``).
"""
