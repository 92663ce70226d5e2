"""The offline verifier shipped inside domainrag: a cross-encoder on onnxruntime, no torch.

``[CLS] claim [SEP] evidence [SEP]`` -> one logit; the probability that the evidence supports
the claim is a logistic model over that logit and three alignment features of the pair
(:func:`features`: the share of the claim's words, of its word pairs and of its numbers that
the evidence states), fitted on held-out development pairs (``verifier/config.json``). The
cross-encoder reads meaning; the features keep it anchored to what the evidence says: on real
attribution data (WiCE) a claim's words missing from its evidence is the strongest single sign.
The model is all-MiniLM-L6-v2 (Apache-2.0) fine-tuned as a cross-encoder on claim–evidence
pairs by ``tools/train_verifier.py`` and quantised to int8 like the bundled embedder
(``verifier/provenance.json`` records the data, the recipe and every file's SHA-256;
``verifier/NOTICE.md`` the licences). English only: the checker keeps its word rules for the
languages it does not read (:attr:`OnnxVerifier.languages`).

Each pair runs through onnxruntime alone, so a score never depends on the other pairs of a call:
dynamic int8 quantisation scales each input tensor as a whole, and padding would change it (see
:mod:`.onnx_embedder`). One one-thread session (one copy of the weights in memory) serves as many
pairs at a time as there are usable CPUs; onnxruntime releases the GIL while it runs.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EmbeddingError, require
from .bundled import usable_cpus
from .onnx_runtime import open_session

if TYPE_CHECKING:  # pragma: no cover
    from onnxruntime import InferenceSession
    from tokenizers import Encoding

SHIPPED_DIR = Path(__file__).with_name("verifier")
MODEL_FILE = "model-int8.onnx"


class OnnxVerifier:
    """The shipped verifier. ``id`` is ``offline:<model>@<version>`` from its config."""

    languages = frozenset({"en"})

    def __init__(self, folder: Path = SHIPPED_DIR) -> None:
        purpose = "The offline verifier"
        ort = require("onnxruntime", "onnxruntime", "local", purpose)
        tokenizers = require("tokenizers", "tokenizers", "local", purpose)
        config = _config(folder)
        self.max_length = int(config["max_length"])
        self.claim_words = int(config.get("claim_tokens", 64))
        calibration = config["calibration"]
        self.weights = [float(w) for w in calibration["weights"]]
        self.bias = float(calibration["bias"])
        if len(self.weights) != 1 + len(FEATURES):
            raise EmbeddingError(f"The verifier's config.json has {len(self.weights)} weights; expected "
                                 f"{1 + len(FEATURES)}. Reinstall domainrag.")
        self.id = f"offline:{config.get('name', 'verifier')}@{config.get('version', '1')}"
        try:
            self.tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # a damaged install
            raise EmbeddingError(f"Cannot read {folder / 'tokenizer.json'}: {exc}. Reinstall domainrag.") from exc
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length, strategy="only_second")
        self._ort, self._folder = ort, folder
        self._session: InferenceSession | None = None
        self._inputs: set[str] = set()
        self._lock = threading.Lock()

    @property
    def session(self) -> InferenceSession:
        """The onnxruntime session, opened on first use (answering needs it, search does not)."""
        with self._lock:
            if self._session is None:
                self._session = open_session(self._ort, self._folder / MODEL_FILE, self._folder == SHIPPED_DIR,
                                             threads=1)
                self._inputs = {i.name for i in self._session.get_inputs()}
            return self._session

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Calibrated support probabilities, one per ``(claim, evidence)``; each pair runs alone."""
        if not pairs:
            return []
        out = []
        for (claim, evidence), z in zip(pairs, self.logits(pairs), strict=True):
            t = self.bias + sum(w * x for w, x in zip(self.weights, (z, *features(claim, evidence)), strict=True))
            out.append(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, t)))))
        return out

    def logits(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The raw logits (before calibration)."""
        if not pairs:
            return []
        encodings = self.tokenizer.encode_batch([(self._claim(c), e or " ") for c, e in pairs])
        session = self.session
        workers = min(usable_cpus(), len(encodings))
        if workers < 2:
            return [self._logit(session, e) for e in encodings]
        with ThreadPoolExecutor(workers, thread_name_prefix="verifier") as pool:
            return list(pool.map(lambda e: self._logit(session, e), encodings))

    def _claim(self, claim: str) -> str:
        return " ".join(claim.split()[: self.claim_words]) or " "

    def _logit(self, session: InferenceSession, encoding: Encoding) -> float:
        feed: dict[str, Any] = {
            "input_ids": np.asarray([encoding.ids], dtype=np.int64),
            "attention_mask": np.asarray([encoding.attention_mask], dtype=np.int64),
            "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64),
        }
        out = session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        return float(np.asarray(out).reshape(-1)[0])


@cache
def shared() -> OnnxVerifier:
    """One verifier per process (its sessions are thread-safe)."""
    return OnnxVerifier()


#: The alignment features after the logit, in the order of the calibration's weights.
FEATURES = ("words", "word_pairs", "numbers")
_WORD = re.compile(r"[^\W\d_]+|\d+(?:[.,]\d+)*", re.UNICODE)
_STOP_WORDS = (
    "a an the of and or but to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her we our you your i not no can may might will would "
    "should could do does did has have had than then so such which who whom what when where how also into "
    "about over under after before between during per each any all some more most other")
_STOP = frozenset(_STOP_WORDS.split())


def features(claim: str, evidence: str) -> tuple[float, float, float]:
    """(words, word_pairs, numbers): the shares of the claim's content words (compared by their
    first five letters, a crude stem), of its adjacent content-word pairs and of its numbers
    that the evidence holds (1.0 where the claim has none)."""
    claim_words, claim_numbers = _terms(claim)
    evidence_words, evidence_numbers = _terms(evidence)
    have = set(evidence_words)
    pairs = set(zip(claim_words, claim_words[1:], strict=False))
    have_pairs = set(zip(evidence_words, evidence_words[1:], strict=False))
    words = len(set(claim_words) & have) / len(set(claim_words)) if claim_words else 1.0
    bigrams = len(pairs & have_pairs) / len(pairs) if pairs else words
    numbers = len(claim_numbers & evidence_numbers) / len(claim_numbers) if claim_numbers else 1.0
    return words, bigrams, numbers


def _terms(text: str) -> tuple[list[str], set[str]]:
    words: list[str] = []
    numbers: set[str] = set()
    for token in _WORD.findall(text.lower()):
        if token[0].isdigit():
            numbers.add(token.replace(",", ""))
        elif token not in _STOP and len(token) > 1:
            words.append(token[:5])
    return words, numbers


def _config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["calibration"]["weights"], data["calibration"]["bias"], data["max_length"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EmbeddingError(f"Cannot read the verifier's {path}: {exc}. Reinstall domainrag.") from exc
    return dict(data)
