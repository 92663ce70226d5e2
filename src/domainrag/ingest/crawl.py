"""A web site as a :class:`~.sources.Source`: ``domainrag ingest https://intranet/wiki/ --crawl``.

Without ``--crawl`` the URL is one page. With it, pages are fetched breadth first from the start
URL and from the site's ``sitemap.xml`` (those named in ``robots.txt``, else ``/sitemap.xml``;
sitemap indexes one level deep), following links that stay on the same scheme, host and port and
under the start URL's folder (``https://intranet/wiki/`` for ``.../wiki/index.html``) — the prune
scope. Limits: ``max_depth`` links from the start (sitemap URLs count as depth 1), ``max_pages``
fetched (a crawl cut short by it prunes nothing). URLs are normalised (scheme and host lower
case, default port, dot segments, percent-escapes and fragments), so loops end; a URL is
fetched once.

``robots.txt`` is honoured (:mod:`urllib.robotparser`, RFC 9309: a 4xx means no rules, 401/403,
5xx or no answer mean the site may not be crawled) with its ``Crawl-delay`` (at most 10 s), as
are ``<meta name="robots" content="noindex, nofollow">``. Redirects are followed by hand, at most
five, and only on the site (one to another host is refused with that reason). Each response is
read as a stream and stopped at ``ingest.max_file_mb`` (a 5 GB page costs the cap, not 5 GB),
and a page that takes longer than ``timeout_s`` in all is stopped. Every page that is not taken
is reported with its reason (HTTP status, timeout, size, content type, robots). A page's version
is the hash of its bytes, its time the ``Last-Modified`` header: an unchanged page is fetched
(for its links) but neither parsed nor embedded again.

HTML pages are saved as ``.html`` and read by the HTML loader (main content: ``<main>``/
``<article>`` preferred, navigation, headers, footers, scripts dropped), so a crawled page and a
saved one read the same; other documents (PDF, DOCX...) by their content type or suffix. HTTP is
``httpx`` (``pip install 'domainrag[crawl]'``); proxies and ``~/.netrc`` come from the
environment, as ``httpx`` reads them.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import mimetypes
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, BinaryIO, ClassVar, cast
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

from ..errors import ConfigError, require
from .sources import Entry, SourceSettings, Unlisted

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_MAX_REDIRECTS = 5
_MAX_SITEMAPS = 50
_ROBOTS_BYTES = 512 * 1024
_MAX_DELAY_S = 10.0
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def normalise(url: str) -> str | None:
    """``url`` in one canonical form (``None``: not an http(s) URL with a host): scheme and host
    lower case, the default port dropped, dot segments resolved, percent-escapes in one form,
    the fragment dropped, an empty path made ``/``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = urlsplit(urljoin(f"{scheme}://{netloc}/", quote(unquote(parts.path), safe=_PATH_SAFE) or "/")).path
    query = quote(unquote(parts.query), safe=_QUERY_SAFE)
    return urlunsplit((scheme, netloc, path or "/", query, ""))


@dataclass
class _Page:
    url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class _Refused(Exception):
    """A page that cannot be taken, with the reason (and whether that is a failure)."""

    def __init__(self, reason: str, failed: bool = True) -> None:
        super().__init__(reason)
        self.reason, self.failed = reason, failed


class SiteCrawler:
    """The pages of a web site (see module docstring)."""

    schemes: ClassVar[tuple[str, ...]] = ("http", "https")

    def __init__(self, url: str, settings: SourceSettings) -> None:
        self.httpx = require("httpx", "httpx", "crawl", f"Ingesting {url}")
        start = normalise(url)
        if start is None:
            raise ConfigError(f"Cannot crawl {url!r}: not an http(s) URL with a host; use https://HOST/PATH")
        self.start, self.settings = start, settings
        parts = urlsplit(start)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        folder = parts.path.rsplit("/", 1)[0] + "/"
        self.scope = self.origin + folder if settings.crawl else start
        self._last: tuple[str, bytes] | None = None
        self._robots = RobotFileParser()
        self._delay = 0.0
        self._client: Any = None

    # -- the Source protocol ---------------------------------------------------------------------
    def entries(self) -> Iterator[Entry | Unlisted]:
        httpx = self.httpx
        timeout = httpx.Timeout(self.settings.timeout_s)
        headers = {"User-Agent": self.settings.user_agent}
        with httpx.Client(follow_redirects=False, timeout=timeout, headers=headers) as client:
            self._client = client
            try:
                yield from self._crawl()
            finally:
                self._client = None

    def open(self, entry: Entry) -> AbstractContextManager[BinaryIO]:
        """The bytes of a page just listed (kept from the crawl), else fetched again."""
        last, self._last = self._last, None
        body = last[1] if last is not None and last[0] == entry.key else self._fetch(entry.key).body
        return closing(cast(BinaryIO, io.BytesIO(body)))

    # -- the crawl ---------------------------------------------------------------------------------
    def _crawl(self) -> Iterator[Entry | Unlisted]:
        problem = self._read_robots()
        if problem is not None:
            yield problem
            return
        queue: deque[tuple[str, int]] = deque([(self.start, 0)])
        seen = {self.start}
        if self.settings.crawl:
            for url in self._sitemap_urls():
                if url not in seen:
                    seen.add(url)
                    queue.append((url, 1))
        fetched = too_deep = 0
        while queue:
            if fetched >= self.settings.max_pages:
                yield Unlisted(self.scope, f"the crawl stopped at max_pages={self.settings.max_pages} with "
                                           f"{len(queue)} URL(s) not fetched; nothing under it is pruned; raise "
                                           "--max-pages (sources.max_pages)")
                return
            url, depth = queue.popleft()
            if not self._allowed(url):
                yield Unlisted(url, "disallowed by robots.txt", failed=False)
                continue
            fetched += 1
            try:
                page = self._fetch(url)
            except _Refused as refused:
                yield Unlisted(url, refused.reason, refused.failed)
                continue
            if page.url != url:
                if page.url in seen:
                    yield Unlisted(url, f"redirects to {page.url}, crawled already", failed=False)
                    continue
                seen.add(page.url)
            html = _content_type(page) in _HTML_TYPES
            doc = _html(page.body) if html else None
            meta = _robots_meta(doc)
            if doc is not None and self.settings.crawl and "nofollow" not in meta:
                for link in _links(doc, page.url):
                    if link in seen or not link.startswith(self.scope):
                        continue
                    if depth >= self.settings.max_depth:
                        too_deep += 1
                        continue
                    seen.add(link)
                    queue.append((link, depth + 1))
            yield from self._entry(page, html, meta)
        if too_deep:
            yield Unlisted(self.scope, f"{too_deep} link(s) deeper than max_depth={self.settings.max_depth} not "
                                       "followed; raise --max-depth (sources.max_depth)", failed=False)

    def _entry(self, page: _Page, html: bool, meta: set[str]) -> Iterator[Entry | Unlisted]:
        if "noindex" in meta or "none" in meta:
            yield Unlisted(page.url, "the page asks not to be indexed (<meta name=robots content=noindex>)",
                           failed=False)
            return
        name = self._name(page, html)
        if name is None:
            yield Unlisted(page.url, f"unsupported content type {_content_type(page) or '(none)'!r}", failed=False)
            return
        self._last = (page.url, page.body)
        yield Entry(page.url, name, len(page.body), hashlib.sha256(page.body).hexdigest(), _modified_ns(page))

    def _name(self, page: _Page, html: bool) -> str | None:
        """The page's path under the scope, with the suffix of its type (``None``: no loader)."""
        path = urlsplit(page.url).path
        scope_path = urlsplit(self.scope).path
        rel = unquote(path[len(scope_path):] if path.startswith(scope_path) else path.rsplit("/", 1)[-1])
        if rel.endswith("/") or not rel:
            rel += "index"
        suffix = PurePosixPath(rel).suffix.lower()
        known = self.settings.extensions
        if html:
            wanted = suffix if suffix in (".html", ".htm") else ".html"
        elif suffix and (not known or suffix in known):
            wanted = suffix
        else:
            wanted = mimetypes.guess_extension(_content_type(page)) or ""
        if known and wanted not in known:
            return None
        return rel if rel.lower().endswith(wanted) else rel + wanted

    # -- HTTP ---------------------------------------------------------------------------------
    def _fetch(self, url: str, limit: int | None = None) -> _Page:
        """GET ``url``, following redirects on the site; raises :class:`_Refused` with the reason."""
        for _hop in range(_MAX_REDIRECTS + 1):
            if self._delay:
                time.sleep(self._delay)
            page = self._get(url, limit or self.settings.max_bytes)
            if page.status not in (301, 302, 303, 307, 308):
                return self._checked(page)
            target = normalise(urljoin(url, page.headers.get("location", "")))
            if target is None or urlsplit(target).netloc != urlsplit(self.origin).netloc \
                    or not target.startswith(self.origin + "/"):
                raise _Refused(f"redirects to another host ({page.headers.get('location', '')!r}); only "
                               f"{self.origin} is crawled")
            if not self._allowed(target):
                raise _Refused(f"redirects to {target}, disallowed by robots.txt", failed=False)
            url = target
        raise _Refused(f"more than {_MAX_REDIRECTS} redirects")

    def _checked(self, page: _Page) -> _Page:
        if page.status in (404, 410):
            raise _Refused(f"HTTP {page.status}: not found (a broken link?)", failed=False)
        if page.status >= 400:
            raise _Refused(f"HTTP {page.status}")
        if page.status != 200:
            raise _Refused(f"HTTP {page.status}: not a page", failed=False)
        return page

    def _get(self, url: str, limit: int) -> _Page:
        httpx = self.httpx
        deadline = time.monotonic() + self.settings.timeout_s
        try:
            with self._client.stream("GET", url) as response:
                page = _Page(url, response.status_code, {k.lower(): v for k, v in response.headers.items()})
                if response.status_code != 200:
                    return page
                declared = page.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise _Refused(_too_large(int(declared), limit, "declared"))
                page.body = self._read(response, limit, deadline)
                return page
        except httpx.TimeoutException as exc:
            raise _Refused(f"no answer within timeout_s={self.settings.timeout_s:g} s ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise _Refused(f"{type(exc).__name__}: {exc}") from exc

    def _read(self, response: Any, limit: int, deadline: float) -> bytes:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise _Refused(_too_large(len(body), limit, "read") + "; reading stopped at the cap")
            if time.monotonic() > deadline:
                raise _Refused(f"took longer than timeout_s={self.settings.timeout_s:g} s to arrive; stopped")
        return bytes(body)

    # -- robots.txt and sitemaps -------------------------------------------------------------
    def _read_robots(self) -> Unlisted | None:
        url = self.origin + "/robots.txt"
        try:
            page = self._get_following(url, _ROBOTS_BYTES)
        except _Refused as refused:
            return Unlisted(self.scope, f"robots.txt cannot be read ({refused.reason}), so the site may not be "
                                        "crawled (RFC 9309); nothing under it is pruned")
        if page.status in (401, 403) or page.status >= 500:
            return Unlisted(self.scope, f"robots.txt answers HTTP {page.status}, so the site may not be crawled "
                                        "(RFC 9309); nothing under it is pruned")
        # any other 4xx: no rules (an empty file)
        self._robots.parse(page.body.decode("utf-8", "replace").splitlines() if page.status < 400 else [])
        delay = self._robots.crawl_delay(self.settings.user_agent)
        self._delay = min(float(delay), _MAX_DELAY_S) if delay else 0.0
        return None

    def _get_following(self, url: str, limit: int) -> _Page:
        """GET ``url`` following up to five redirects on the site, any status returned."""
        for _hop in range(_MAX_REDIRECTS + 1):
            page = self._get(url, limit)
            target = normalise(urljoin(url, page.headers.get("location", "")))
            if page.status not in (301, 302, 303, 307, 308) or target is None \
                    or not target.startswith(self.origin + "/"):
                return page
            url = target
        return page

    def _allowed(self, url: str) -> bool:
        return self._robots.can_fetch(self.settings.user_agent, url)

    def _sitemap_urls(self) -> list[str]:
        """Page URLs in scope from the site's sitemaps (an index: one level deep)."""
        maps = [u for u in (normalise(urljoin(self.origin, m)) for m in self._robots.site_maps() or ()) if u] \
            or [self.origin + "/sitemap.xml"]
        urls: list[str] = []
        for index, sitemap in enumerate(maps[:_MAX_SITEMAPS]):
            locs, nested = self._sitemap(sitemap)
            urls += locs
            if index == 0 or len(maps) < _MAX_SITEMAPS:
                maps += [n for n in nested if n not in maps]
        return [u for u in dict.fromkeys(urls) if u.startswith(self.scope)]

    def _sitemap(self, url: str) -> tuple[list[str], list[str]]:
        if not url.startswith(self.origin + "/") or not self._allowed(url):
            return [], []
        try:
            page = self._get_following(url, self.settings.max_bytes)
            root = ET.fromstring(page.body) if page.status == 200 else None
        except (_Refused, ET.ParseError):
            return [], []
        if root is None:
            return [], []
        locs = [normalise(urljoin(url, (el.text or "").strip())) for el in root.iter() if el.tag.endswith("loc")]
        found = [u for u in locs if u]
        return ([], found) if root.tag.endswith("sitemapindex") else (found, [])


def _content_type(page: _Page) -> str:
    return page.headers.get("content-type", "").partition(";")[0].strip().lower()


def _modified_ns(page: _Page) -> int:
    stamp = page.headers.get("last-modified")
    if not stamp:
        return 0
    try:
        return int(email.utils.parsedate_to_datetime(stamp).timestamp() * 1e9)
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0


def _too_large(size: int, limit: int, how: str) -> str:
    mb = 1024 * 1024
    return (f"larger than max_file_mb={limit / mb:g} ({how} {size / mb:.1f} MB); raise ingest.max_file_mb "
            "to include it")


def _html(body: bytes) -> Any:
    """The page parsed by lxml (a dependency of the core), ``None`` when it cannot be."""
    import lxml.etree
    import lxml.html

    try:
        return lxml.html.document_fromstring(body)
    except (ValueError, lxml.etree.LxmlError):   # an empty or odd page: no links
        return None


def _robots_meta(doc: Any) -> set[str]:
    if doc is None:
        return set()
    values = doc.xpath('//meta[translate(@name,"ROBTS","robts")="robots"]/@content')
    return {token.strip().lower() for value in values for token in str(value).split(",")}


def _links(doc: Any, url: str) -> list[str]:
    """The normalised targets of the page's ``<a href>`` (after ``<base href>``)."""
    bases = doc.xpath("//base/@href")
    base = urljoin(url, str(bases[0])) if bases else url
    links = (normalise(urljoin(base, str(href))) for href in doc.xpath("//a/@href"))
    return [link for link in dict.fromkeys(links) if link]
