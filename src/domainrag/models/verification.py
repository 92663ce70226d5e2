"""The verifier seam: does a passage of evidence support a claim?

A verifier scores (claim, evidence) pairs with a calibrated probability that the evidence
supports the claim. The citation checker (:mod:`domainrag.answer.citations`) asks it for every
claim of an answer against the passages the claim cites (or, for an uncited factual sentence,
against every source) and turns the probabilities into verdicts with a threshold.

Built-in verifiers register in the ``domainrag.verifiers`` plug-in group like third-party ones:
``offline`` (the cross-encoder shipped inside domainrag, :mod:`.verifier_onnx`). A verifier that
asks a language model is built by the answer pipeline (it needs the model clients and the
cache), see :mod:`domainrag.answer.model_verifier`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .. import registry

GROUP = "domainrag.verifiers"


@runtime_checkable
class Verifier(Protocol):
    """``id`` names the model and its version (it goes into every answer's manifest)."""

    id: str

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """For each ``(claim, evidence)``: the probability, in [0, 1], that the evidence supports
        the claim. A pair's score does not depend on the other pairs of the call."""
        ...


def load_verifier(name: str) -> Verifier:
    """The verifier plug-in ``name`` (``offline`` is the built-in), constructed with no arguments."""
    factory = registry.get(GROUP, name)
    verifier = factory()
    if not isinstance(verifier, Verifier):
        from ..errors import PluginError

        raise PluginError(f"Verifier plug-in {name!r} does not provide id and score(pairs); got {verifier!r}.")
    return verifier
