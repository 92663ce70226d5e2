"""Objects under an fsspec URL as a :class:`~.sources.Source`: ``s3://bucket/prefix`` (through
``s3fs``, ``pip install 'domainrag[s3]'``), and any other protocol fsspec knows (``gs://``,
``az://``, ``file://``... with that protocol's package installed).

A URL naming one object is that object; otherwise it is a folder (an S3 prefix), listed
recursively. S3 is listed page by page (``ListObjectsV2``, 1,000 keys a page), so a million keys
are never held at once; other protocols are walked folder by folder. An object's version tag is
its ETag (or the protocol's checksum), its time the ``LastModified``/``mtime`` the listing gives,
so an unchanged object is never downloaded again.

Credentials and the endpoint come only from the protocol library's own chain — for S3 that of
botocore: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``
and ``~/.aws/config``/``credentials``, instance roles; ``AWS_ENDPOINT_URL`` (or
``AWS_ENDPOINT_URL_S3``) for an S3-compatible server such as MinIO. Nothing of them is stored or
logged. Listings are not cached between calls (a long-running server sees new objects).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, closing
from typing import Any, BinaryIO, ClassVar, cast

from ..errors import ConfigError, MissingDependencyError, require
from .sources import Entry, SourceSettings, Unlisted

_CREDENTIALS = ("credentials and the endpoint come from the environment and the standard chains: for S3 "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE (~/.aws/credentials), and "
                "AWS_ENDPOINT_URL for an S3-compatible server")
_PACKAGES = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3")}
#: Objects up to this size are read in one request.
_ONE_REQUEST = 8 * 1024 * 1024


class FsspecSource:
    """The objects under an fsspec URL (see module docstring)."""

    schemes: ClassVar[tuple[str, ...]] = ()  # the fallback: every scheme no other source claims
    #: Objects downloaded at once ahead of the ingest (an object store answers in parallel).
    parallel_reads: ClassVar[int] = 8

    def __init__(self, url: str, settings: SourceSettings) -> None:
        self.url = url
        self.settings = settings
        self.protocol = url.partition("://")[0].lower()
        self.fs, path = _filesystem(url, self.protocol)
        self.root = path.rstrip("/")
        self._single = self._is_file()
        self.scope = self._key(self.root) if self._single else self._key(self.root) + "/"

    def entries(self) -> Iterator[Entry | Unlisted]:
        if self._single:
            yield self._entry(self._info(self.root))
            return
        listed = 0
        listing = self._s3_listing() if self.protocol in _PACKAGES else self._walk()
        try:
            for info in listing:
                listed += 1
                yield self._entry(info)
        except Exception as exc:  # noqa: BLE001 - translated: the first page raises, later ones report
            if listed == 0:
                raise self._error(exc) from exc
            yield Unlisted(self.scope, f"the listing stopped after {listed} objects ({type(exc).__name__}: {exc}); "
                                       "what was not listed is kept; ingest again")

    def open(self, entry: Entry) -> AbstractContextManager[BinaryIO]:
        """A small object in one ranged GET (no HEAD first; never more than the cap and a byte,
        even if it grew since it was listed); a larger one as a stream of blocks."""
        path = self._path(entry.key)
        if entry.size is not None and entry.size <= _ONE_REQUEST:
            body = self.fs.cat_file(path, start=0, end=self.settings.max_bytes + 1)
            return closing(cast(BinaryIO, io.BytesIO(body)))
        return cast(AbstractContextManager[BinaryIO], self.fs.open(path, "rb"))

    # -- listing -------------------------------------------------------------------------------
    def _s3_listing(self) -> Iterator[Mapping[str, Any]]:
        """Every object under the prefix, one page of 1,000 keys at a time."""
        bucket, _, prefix = self.root.partition("/")
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{prefix}/" if prefix else "", "MaxKeys": 1000}
        while True:
            page = self.fs.call_s3("list_objects_v2", **request)
            for obj in page.get("Contents", ()):
                if not obj["Key"].endswith("/"):   # folder markers
                    yield {"name": f"{bucket}/{obj['Key']}", "size": obj.get("Size"), "ETag": obj.get("ETag"),
                           "LastModified": obj.get("LastModified")}
            if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def _walk(self) -> Iterator[Mapping[str, Any]]:
        if not self.fs.exists(self.root):
            raise FileNotFoundError(self.root)
        for _folder, _dirs, files in self.fs.walk(self.root, detail=True):
            for _name, info in sorted(cast(dict[str, Any], files).items()):
                if info.get("type", "file") == "file":
                    yield info

    def _is_file(self) -> bool:
        try:
            return bool(self.root) and "/" in self.root.strip("/") and bool(self.fs.isfile(self.root))
        except Exception as exc:  # noqa: BLE001 - any protocol's error, translated
            raise self._error(exc) from exc

    def _info(self, path: str) -> Mapping[str, Any]:
        try:
            return cast(Mapping[str, Any], self.fs.info(path))
        except Exception as exc:  # noqa: BLE001 - any protocol's error, translated
            raise self._error(exc) from exc

    # -- entries -------------------------------------------------------------------------------
    def _entry(self, info: Mapping[str, Any]) -> Entry:
        path = str(info["name"]).rstrip("/")
        name = path.rsplit("/", 1)[-1] if self._single else path[len(self.root):].lstrip("/")
        size = info.get("size")
        version = info.get("ETag") or info.get("etag") or info.get("md5") or info.get("checksum") or ""
        return Entry(self._key(path), name, int(size) if size is not None else None, str(version).strip('"'),
                     _mtime_ns(info))

    def _key(self, path: str) -> str:
        return f"{self.protocol}://{path.lstrip('/') if self.protocol != 'file' else path}"

    def _path(self, key: str) -> str:
        return key[len(self.protocol) + 3:]

    def _error(self, exc: Exception) -> ConfigError:
        if isinstance(exc, FileNotFoundError):
            return ConfigError(f"Cannot ingest {self.url!r}: no such bucket, prefix or path ({exc}); check the URL")
        if isinstance(exc, PermissionError):
            return ConfigError(f"Cannot list {self.url!r}: access denied ({exc}). Check the credentials: "
                               f"{_CREDENTIALS}.")
        return ConfigError(f"Cannot list {self.url!r}: {type(exc).__name__}: {exc}. {_CREDENTIALS[0].upper()}"
                           f"{_CREDENTIALS[1:]}.")


def _filesystem(url: str, protocol: str) -> tuple[Any, str]:
    fsspec = require("fsspec", "fsspec", "s3", f"Ingesting {url}")
    package, extra = _PACKAGES.get(protocol, ("", ""))
    if package:   # asked first: fsspec keeps a class it imported once, whatever is installed now
        require(package, package, extra, f"Ingesting {url}")
    try:
        fs, path = fsspec.core.url_to_fs(url, skip_instance_cache=True, use_listings_cache=False)
    except ImportError as exc:
        if package:
            raise MissingDependencyError(package, extra, f"Ingesting {url}") from exc
        raise ConfigError(f"Ingesting {url} needs a package that is not installed: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"Cannot ingest {url!r}: {exc}; use a folder, s3://BUCKET/PREFIX, https://... "
                          "or another fsspec URL") from exc
    return fs, str(path)


def _mtime_ns(info: Mapping[str, Any]) -> int:
    value = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or info.get("created")
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1e9)
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    return 0
