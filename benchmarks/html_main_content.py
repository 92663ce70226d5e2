"""Main-content extraction from real HTML pages: domainrag's HTML loader against trafilatura,
side by side (the question for crawled pages: keep the loader, or add trafilatura?).

    python benchmarks/html_main_content.py /usr/share/doc/nodejs/api /usr/lib/node_modules/npm/docs/output \\
        /usr/share/doc/libxslt1-dev/html --repeats 3

For every folder (its ``*.html`` files, recursively, at most ``--limit``): pages/s of each
extractor (median of ``--repeats`` passes), the median characters kept per page, pages with no
text, and the **boilerplate share**: the part of the kept characters in lines that recur on at
least half the folder's pages (menus, footers, sidebars repeated on every page of a site — what
main-content extraction is for). Lower is cleaner, as long as the page's own text is kept; the
**own-text share** is the part of each page's unique lines (those on no other page of the folder,
measured on the raw page text) that each extractor keeps. trafilatura runs with its defaults plus
tables (``include_tables=True``), as text. Needs ``pip install trafilatura lxml_html_clean`` (not
a dependency of domainrag). Writes benchmarks/results/html_main_content.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bs4 import BeautifulSoup

from domainrag.ingest.loaders.html import HtmlLoader

_SPACE = re.compile(r"\s+")


def lines(text: str) -> list[str]:
    return [line for line in (_SPACE.sub(" ", raw).strip() for raw in text.splitlines()) if len(line) >= 3]


def ours(path: Path) -> str:
    documents = HtmlLoader().load(path, path.name)
    return "\n".join(d.text for d in documents)


def trafilatura_text(path: Path) -> str:
    import trafilatura

    return trafilatura.extract(path.read_bytes(), include_tables=True, output_format="txt") or ""


def raw_text(path: Path) -> str:
    soup = BeautifulSoup(path.read_bytes(), "lxml")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return soup.get_text("\n")


def measure(pages: list[Path], extract: Callable[[Path], str], repeats: int,
            own: dict[Path, set[str]]) -> dict[str, float]:
    times, outputs = [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        outputs = {p: extract(p) for p in pages}
        times.append(time.perf_counter() - t0)
    per_page = {p: lines(t) for p, t in outputs.items()}
    seen_on = Counter(line for page_lines in per_page.values() for line in set(page_lines))
    common = {line for line, n in seen_on.items() if n >= len(pages) / 2}
    kept = sum(len(line) for ls in per_page.values() for line in ls)
    boiler = sum(len(line) for ls in per_page.values() for line in ls if line in common)
    own_total = sum(len(line) for p in pages for line in own[p])
    own_kept = sum(len(line) for p in pages for line in own[p] if line in set(per_page[p]) or line in outputs[p])
    return {"pages_per_s": len(pages) / statistics.median(times),
            "median_chars": statistics.median(len(t) for t in outputs.values()),
            "empty_pages": sum(1 for t in outputs.values() if not t.strip()),
            "boilerplate_share": boiler / kept if kept else 0.0,
            "own_text_share": own_kept / own_total if own_total else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "html_main_content.json")
    args = parser.parse_args()
    results = {}
    for folder in args.folders:
        pages = sorted(folder.rglob("*.html"))[: args.limit]
        raw = {p: lines(raw_text(p)) for p in pages}
        counts = Counter(line for ls in raw.values() for line in set(ls))
        own = {p: {line for line in ls if counts[line] == 1} for p, ls in raw.items()}
        results[str(folder)] = {"pages": len(pages),
                                "domainrag_html_loader": measure(pages, ours, args.repeats, own),
                                "trafilatura": measure(pages, trafilatura_text, args.repeats, own)}
        print(folder, json.dumps(results[str(folder)], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    import trafilatura

    args.out.write_text(json.dumps({"command": "python benchmarks/html_main_content.py " + " ".join(
        str(f) for f in args.folders) + f" --limit {args.limit} --repeats {args.repeats}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "trafilatura": trafilatura.__version__,
        "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
