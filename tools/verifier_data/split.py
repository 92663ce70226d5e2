"""The verifier's training, calibration and test pairs from the converted sets (convert.py) and
the pairs generated from real passages (tools/verifier_pairs.py).

train: permissively licensed or share-alike sets only (cad_nli, glue_rte, fever_rte_dev,
snli_subset, begin, WiCE's partially supported sub-claims) + the generated pairs. Non-commercial
sets (ANLI, SciFact, SICK) and those without a licence file (HealthVer, COVID-Fact,
Climate-FEVER) are never trained on: dev (calibration, thresholds) and test (reports) only.
``dev_calib.jsonl`` is dev without ANLI: the calibration is fitted on claim-against-evidence
attribution sets (WiCE, HealthVer, COVID-Fact, SciFact), each weighing the same; ANLI (written
to fool NLI models, short premises) is reported, not fitted on.

    python tools/verifier_data/split.py NLI_DIR GENERATED.jsonl OUT_DIR
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

TRAIN = ("cad_nli", "glue_rte", "fever_rte_dev", "snli_subset", "begin")
HELD_OUT = ("wice", "healthver", "covidfact", "scifact_rte", "anli_devtest")


def rows(folder: Path, name: str) -> list[dict]:
    with open(folder / f"{name}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def main() -> None:
    folder, generated, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    train = [r for name in TRAIN for r in rows(folder, name)]
    train += [r for r in rows(folder, "wice_partial_subclaims") if r["split"] == "train"]
    with open(generated, encoding="utf-8") as f:
        train += [json.loads(line) for line in f]
    dev = [r for name in HELD_OUT for r in rows(folder, name) if r["split"] == "dev"]
    test = [r for name in HELD_OUT for r in rows(folder, name) if r["split"] != "dev"]
    test += rows(folder, "climate_fever") + [r for r in rows(folder, "sick") if r["split"] == "test"]
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("dev", dev), ("test", test)):
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in part:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(name, len(part), dict(Counter(r["source"] for r in part)))
    with open(out / "dev_calib.jsonl", "w", encoding="utf-8") as f:
        for r in dev:
            if r["source"] != "anli_devtest":
                f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
