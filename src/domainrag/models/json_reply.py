"""Reading JSON objects out of model replies — the one parser every structured-output caller
uses (the citation judge, the faithfulness judge, the suite writer).

Models asked for JSON usually answer with exactly one object, but some wrap it in prose or a
Markdown code fence, or add a sentence after it. :func:`json_objects` yields the reply as a
whole when it is an object, then every object embedded in it (decoded with
``json.JSONDecoder.raw_decode`` from each ``{``, so nested braces and braces inside strings are
handled), each with whether it had to be dug out ("repaired").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_BRACE = re.compile(r"\{")


def json_objects(text: str) -> Iterator[tuple[dict[str, Any], bool]]:
    """``(object, repaired)`` for the reply itself when it is one JSON object (not repaired),
    then for each object found inside it (repaired), in order of appearance."""
    try:
        whole = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        whole = None
    if isinstance(whole, dict):
        yield whole, False
    decoder = json.JSONDecoder()
    for brace in _BRACE.finditer(text):
        try:
            data, _ = decoder.raw_decode(text, brace.start())
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(data, dict) and data is not whole:
            yield data, True
