#!/usr/bin/env python3
"""Convert claim-evidence / NLI data from fetched git snapshots into uniform JSONL.

Output rows: premise, hypothesis, label (1 = supported/entailment), label_raw,
source, split, id. Premises are cut to <= MAXC characters (sentence-wise where
possible); rows where that happened carry "premise_truncated": true.
"""
import ast, csv, io, json, re, subprocess, sys, collections, os

M = "/work/.mirror"
OUT = "/work/data/nli"
MAXC = 2000
csv.field_size_limit(10**9)
STATS = {}


def gshow(repo, path, commit="HEAD"):
    gd = f"{M}/{repo}/repo"
    if os.path.isdir(gd + "/.git"):
        gd += "/.git"
    return subprocess.run(["git", "--git-dir", gd, "show", f"{commit}:{path}"],
                          check=True, capture_output=True).stdout.decode("utf-8")


def cut(sents, keep=None):
    """Join sentences; if too long, drop non-kept sentences from the end first, then hard cut."""
    if isinstance(sents, str):
        sents = [sents]
    sents = [s.strip() for s in sents if s and s.strip()]
    text = " ".join(sents)
    if len(text) <= MAXC:
        return text, False
    keep = set(keep or [])
    idx = list(range(len(sents)))
    # drop droppable sentences from the end until it fits
    for i in reversed(range(len(sents))):
        if len(" ".join(sents[j] for j in idx)) <= MAXC:
            break
        if i not in keep and len(idx) > 1:
            idx.remove(i)
    text = " ".join(sents[j] for j in idx)
    if len(text) > MAXC:
        text = text[:MAXC]
        sp = text.rfind(" ")
        if sp > MAXC * 0.8:
            text = text[:sp]
    return text, True


def write(source, rows):
    seen = set()
    out = []
    for r in rows:
        key = (r["premise"], r["hypothesis"], r["label_raw"], r["split"])
        if not r["premise"] or not r["hypothesis"] or key in seen:
            continue
        seen.add(key)
        r["source"] = source
        out.append(r)
    with open(f"{OUT}/{source}.jsonl", "w") as f:
        for r in out:
            f.write(json.dumps({k: r[k] for k in ["premise", "hypothesis", "label", "label_raw", "source", "split", "id"]
                                + (["premise_truncated"] if r.get("premise_truncated") else [])},
                               ensure_ascii=False) + "\n")
    st = collections.defaultdict(lambda: [0, 0, 0])
    for r in out:
        st[r["split"]][0] += 1
        st[r["split"]][1] += r["label"]
        st[r["split"]][2] += bool(r.get("premise_truncated"))
    STATS[source] = {k: tuple(v) for k, v in st.items()}
    print(source, len(rows), "->", len(out), dict(st), file=sys.stderr)


def row(prem, hyp, label, raw, split, id_, trunc=False):
    return dict(premise=prem, hypothesis=hyp.strip(), label=int(label), label_raw=raw,
                split=split, id=str(id_), premise_truncated=trunc)


# ---------------- WiCE (oracle chunks, claim level) ----------------
def wice():
    rows = []
    for split in ["dev", "test"]:
        t = gshow("ryokamoi+wice", f"code_and_resources/entailment_inputs/oracle_chunks/claim/{split}.jsonl")
        seen_ct = collections.Counter()
        for line in t.splitlines():
            d = json.loads(line)
            meta = d["meta"]
            keep = [i for i, c in enumerate(meta["chunk_idx"]) if c in set(meta.get("oracle_idx") or [])]
            prem, tr = cut(d["evidence"], keep)
            seen_ct[meta["id"]] += 1
            rows.append(row(prem, d["claim"], d["label"] == "supported", d["label"], split,
                            f"{meta['id']}#chunk{seen_ct[meta['id']]}", tr))
    write("wice", rows)


def wice_nst():
    rows = []
    for split in ["train", "dev", "test"]:
        t = gshow("ryokamoi+wice", f"data/non_supported_tokens/{split}.jsonl")
        for line in t.splitlines():
            d = json.loads(line)
            ev = ast.literal_eval(d["evidence"]) if isinstance(d["evidence"], str) else d["evidence"]
            ss = ast.literal_eval(d["supporting_sentences"]) if isinstance(d["supporting_sentences"], str) else d["supporting_sentences"]
            meta = ast.literal_eval(d["meta"]) if isinstance(d["meta"], str) else d["meta"]
            idx = sorted({i for s in ss for i in s})
            prem, tr = cut([ev[i] for i in idx if i < len(ev)])
            rows.append(row(prem, d["claim"], d["label"] == "supported", d["label"], split, meta["id"], tr))
    write("wice_partial_subclaims", rows)


# ---------------- FEVER dev (RTE-style, from covidfact repo) ----------------
PTB = [("-LRB-", "("), ("-RRB-", ")"), ("-LSB-", "["), ("-RSB-", "]"), ("-LCB-", "{"), ("-RCB-", "}"),
       ("``", '"'), ("''", '"'), (" ,", ","), (" .", "."), (" ;", ";"), (" :", ":"), ("( ", "("), (" )", ")"),
       (" 's", "'s"), (" n't", "n't")]


def detok(s):
    for a, b in PTB:
        s = s.replace(a, b)
    return re.sub(r"\s+", " ", s).strip()


def fever():
    base = "RTE-Fever/processed/"
    p = gshow("asaakyan+covidfact", base + "dev.raw.input0").split("\n")
    h = gshow("asaakyan+covidfact", base + "dev.raw.input1").split("\n")
    l = gshow("asaakyan+covidfact", base + "dev.label").split("\n")
    rows = []
    for i, (a, b, c) in enumerate(zip(p, h, l)):
        if not c.strip():
            continue
        prem, tr = cut(detok(a))
        rows.append(row(prem, b, c.strip() == "entailment", c.strip(), "dev", i, tr))
    write("fever_rte_dev", rows)


def rte_tsv(repo, files, source, label_col=-1):
    rows = []
    for split, path in files:
        t = gshow(repo, path)
        lines = t.split("\n")
        for ln in lines[1:]:
            if not ln.strip():
                continue
            f = ln.split("\t")
            if len(f) < 4:
                continue
            lab = f[label_col].strip()
            if lab not in ("entailment", "not_entailment"):
                continue
            prem, tr = cut(f[1])
            rows.append(row(prem, f[2], lab == "entailment", lab, split, f"{split}-{f[0]}", tr))
    write(source, rows)


def climate_fever():
    t = gshow("tdiggelm+climate-fever-dataset", "dataset/climate-fever.jsonl")
    rows = []
    for line in t.splitlines():
        d = json.loads(line)
        for e in d["evidences"]:
            prem, tr = cut(f'{e["article"]}: {e["evidence"]}'.strip('"'))
            rows.append(row(prem, d["claim"], e["evidence_label"] == "SUPPORTS", e["evidence_label"], "all",
                            f'{d["claim_id"]}|{e["evidence_id"]}', tr))
    write("climate_fever", rows)


def healthver():
    rows = []
    for split in ["dev", "test"]:
        t = gshow("sarrouti+HealthVer", f"data/healthver_{split}.csv")
        for d in csv.DictReader(io.StringIO(t)):
            prem, tr = cut(d["evidence"])
            rows.append(row(prem, d["claim"], d["label"] == "Supports", d["label"], split, d["id"], tr))
    write("healthver", rows)


def begin():
    rows = []
    files = [("dev", "cmu-dog/begin_dev_cmu.tsv"), ("dev", "topicalchat/begin_dev_tc.tsv"),
             ("dev", "wow/begin_dev_wow.tsv"), ("test", "wow/begin_test_wow.tsv")]
    for split, path in files:
        t = gshow("google+BEGIN-dataset", path)
        r = csv.DictReader(io.StringIO(t), delimiter="\t", quoting=csv.QUOTE_NONE)
        for i, d in enumerate(r):
            lab = (d.get("begin_label") or "").strip()
            if not lab:
                continue
            prem, tr = cut(d["knowledge"])
            rows.append(row(prem, d["response"], lab == "Fully attributable", lab, split,
                            f'{path.split("/")[-1]}:{i}', tr))
    write("begin", rows)


def sick():
    t = gshow("kkalouli+SICK-processing", "SICK.txt")
    rows = []
    sp = {"TRAIN": "train", "TRIAL": "dev", "TEST": "test"}
    for d in csv.DictReader(io.StringIO(t), delimiter="\t", quoting=csv.QUOTE_NONE):
        lab = d["entailment_label"]
        rows.append(row(d["sentence_A"], d["sentence_B"], lab == "ENTAILMENT", lab, sp[d["SemEval_set"].strip()],
                        d["pair_ID"]))
    write("sick", rows)


def snli_subset():
    rows = []
    for split in ["dev", "test"]:
        t = gshow("Deltaus+sBiMPM", f"snli_1.0/snli_1.0_{split}.jsonl")
        for line in t.splitlines():
            d = json.loads(line)
            if d["gold_label"] not in ("entailment", "neutral", "contradiction"):
                continue
            rows.append(row(d["sentence1"], d["sentence2"], d["gold_label"] == "entailment", d["gold_label"], split,
                            d["pairID"]))
    write("snli_subset", rows)


def anli():
    c = "1c79904f9be35204e1bd8c760fea5c8180d10b39"
    rows = []
    m = {"e": "entailment", "n": "neutral", "c": "contradiction"}
    for r in ["R1", "R2", "R3"]:
        for split in ["dev", "test"]:
            t = gshow("eric11eca+curriculum-ling", f"data/anli_v1.0/{r}/{split}.jsonl", c)
            for line in t.splitlines():
                d = json.loads(line)
                prem, tr = cut(d["context"])
                rows.append(row(prem, d["hypothesis"], d["label"] == "e", m[d["label"]], split, f'{r}:{d["uid"]}', tr))
    write("anli_devtest", rows)


def cad_nli():
    rows = []
    for split in ["train", "dev", "test"]:
        t = gshow("acmi-lab+counterfactually-augmented-data", f"NLI/all_combined/{split}.tsv")
        for i, ln in enumerate(t.split("\n")[1:]):
            f = ln.split("\t")
            if len(f) < 3 or f[2].strip() not in ("entailment", "neutral", "contradiction"):
                continue
            rows.append(row(f[0], f[1], f[2].strip() == "entailment", f[2].strip(), split, f"{split}-{i}"))
    write("cad_nli", rows)


if __name__ == "__main__":
    wice(); wice_nst(); fever()
    rte_tsv("asaakyan+covidfact", [("train", "RTE-covidfact/train.tsv"), ("dev", "RTE-covidfact/dev.tsv"),
                                   ("test", "RTE-covidfact/test1.tsv")], "covidfact")
    rte_tsv("asaakyan+covidfact", [("train", "RTE-scifact/train.tsv"), ("dev", "RTE-scifact/dev.tsv")], "scifact_rte")
    rte_tsv("marcwww+nlu_eval", [("train", "data/RTE/train.tsv"), ("dev", "data/RTE/dev.tsv")], "glue_rte")
    climate_fever(); healthver(); begin(); sick(); snli_subset(); anli(); cad_nli()
    json.dump(STATS, open(f"{OUT}/stats.json", "w"), indent=1)
