"""Resumable HTTP downloads into a `.part` file: Range requests after a dropped connection,
Google Drive's "can't scan for viruses" confirmation pages followed (form, link or cookie), a
byte progress bar, free-space checks and one short reason per failure. It moves bytes only:
which files to fetch, where they go and how they are checked is `ganvid.weights`' business.
"""

from __future__ import annotations

import html
import http.client
import http.cookiejar
import re
import shutil
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from ganvid.errors import DownloadError
from ganvid.files import HOME_ENV, human_size

CHUNK_BYTES = 1 << 20
MAX_PAGE_BYTES = 2 << 20  # an interstitial HTML page is read whole, up to this size
MAX_CONFIRM_HOPS = 3
DEFAULT_TIMEOUT_S = 30.0


class FetchError(Exception):
    """One URL failed for good (HTTP error, offline, a web page instead of the file)."""


class Interrupted(Exception):
    """The transfer stopped part-way; what arrived is kept in the .part file."""


class RangeRefused(FetchError):
    """HTTP 416: the server cannot serve the requested byte range."""


class NoBar:
    def start(self, total: int | None, completed: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


class ByteBar:
    """One rich progress task in bytes, sharing ganvid's console."""

    def __init__(self, progress: Any, label: str) -> None:
        self._progress = progress
        self._task = progress.add_task(label, total=None)

    def start(self, total: int | None, completed: int) -> None:
        self._progress.update(self._task, total=total, completed=completed)

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)


@contextmanager
def byte_bar(label: str, enabled: bool) -> Iterator[ByteBar | NoBar]:
    if not enabled:
        yield NoBar()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from ganvid.ui import console

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield ByteBar(progress, label)


def network_reason(reason: object) -> str:
    """A short, human reason for a failed connection (offline, refused, timed out...)."""
    if isinstance(reason, socket.gaierror):
        return "host not found (offline, or DNS failure)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (offline, or the server is down)"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out (slow or no network)"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return f"network error ({reason.strerror})"
    return f"network error ({reason})"


class _FormParser(HTMLParser):
    """Collects <form action> with their <input name value> pairs, and every <a href>."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), {}))
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1][1][values["name"]] = values.get("value", "")
        elif tag == "a" and values.get("href"):
            self.links.append(values["href"])


def confirm_url(
    page: str, page_url: str, cookies: Iterable[http.cookiejar.Cookie] = ()
) -> str | None:
    """The URL that confirms a Google-Drive style 'cannot scan for viruses' page, or None.

    Handles the download form (hidden id / confirm / uuid inputs, any action URL), an older
    link carrying `confirm=TOKEN`, and the `download_warning*` cookie holding the token.
    """
    parser = _FormParser()
    parser.feed(page)
    for action, fields in parser.forms:
        if "confirm" in fields or "uuid" in fields:
            query = urllib.parse.urlencode(fields)
            return urllib.parse.urljoin(page_url, action or page_url).split("?")[0] + "?" + query
    for href in parser.links:
        if "confirm=" in href:
            return urllib.parse.urljoin(page_url, html.unescape(href))
    for cookie in cookies:
        if cookie.name.startswith("download_warning") and cookie.value:
            return _with_query(page_url, confirm=cookie.value)
    return None


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(params)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _is_html(response: http.client.HTTPResponse) -> bool:
    return response.headers.get_content_type() in ("text/html", "application/xhtml+xml")


class Session:
    """An opener with a cookie jar (Drive ties its confirm token to a cookie) and a timeout."""

    def __init__(self, timeout_s: float) -> None:
        from ganvid import __version__

        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.timeout_s = timeout_s
        self.user_agent = f"ganvid/{__version__} (python urllib)"

    def _request(self, url: str, offset: int) -> http.client.HTTPResponse:
        headers = {"User-Agent": self.user_agent}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            return self.opener.open(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 416:
                raise RangeRefused("HTTP 416 (cannot resume)") from error
            raise FetchError(f"HTTP {error.code} {error.reason}") from error
        except urllib.error.URLError as error:
            raise FetchError(network_reason(error.reason)) from error
        except TimeoutError as error:
            raise FetchError(network_reason(error)) from error
        except (ConnectionError, http.client.HTTPException) as error:
            raise FetchError(f"connection failed ({error})") from error

    def open(self, url: str, offset: int) -> http.client.HTTPResponse:
        """The response carrying the file's bytes, through any confirmation pages."""
        for _ in range(MAX_CONFIRM_HOPS + 1):
            response = self._request(url, offset)
            if not _is_html(response):
                return response
            with response:
                page = response.read(MAX_PAGE_BYTES).decode("utf-8", "replace")
                page_url = response.geturl()
            next_url = confirm_url(page, page_url, self.cookies)
            if next_url is None:
                raise FetchError(
                    "got a web page instead of the file (Google Drive's daily quota may be "
                    "spent, or the file is not shared)"
                )
            url = next_url
        raise FetchError("too many confirmation pages")


def _content_range_start(value: str | None) -> int | None:
    match = re.match(r"bytes (\d+)-", value or "")
    return int(match.group(1)) if match else None


def fetch_once(session: Session, url: str, part: Path, bar: ByteBar | NoBar) -> None:
    """Append the rest of the file to `part`, resuming from its current size when possible."""
    offset = part.stat().st_size if part.is_file() else 0
    response = session.open(url, offset)
    with response:
        if offset and response.status == 206:
            if _content_range_start(response.headers.get("Content-Range")) != offset:
                raise FetchError("the server sent the wrong byte range when resuming")
            mode = "ab"
        else:  # 200: no resume support (or nothing to resume): start from byte 0
            offset, mode = 0, "wb"
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        check_free_space(part.parent, length)
        bar.start(offset + length if length is not None else None, offset)
        received = 0
        with open(part, mode) as out:
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except (http.client.HTTPException, OSError) as error:
                    raise Interrupted(f"transfer broke off ({error})") from error
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.advance(len(chunk))
    if length is not None and received < length:
        raise Interrupted(f"connection closed after {offset + received} of {offset + length} bytes")


def check_free_space(folder: Path, needed: int | None) -> None:
    if needed is None:
        return
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DownloadError(
            f"not enough disk space in {folder}: {human_size(needed)} needed, "
            f"{human_size(free)} free; set {HOME_ENV} to a folder on a larger disk"
        )


def fetch(
    session: Session,
    url: str,
    part: Path,
    bar: ByteBar | NoBar,
    attempts: int,
    complete: Callable[[Path], bool] = lambda part: False,
) -> None:
    """Fetch one URL into `part`, resuming after dropped connections up to `attempts` times.

    complete(part): whether a part file the server will not resume (HTTP 416) is already the
    whole file; otherwise it is deleted and the download starts over.
    """
    last = ""
    for _ in range(max(1, attempts)):
        try:
            fetch_once(session, url, part, bar)
            return
        except RangeRefused:
            if part.is_file() and complete(part):
                return
            part.unlink(missing_ok=True)
            last = "the server could not resume; started over"
        except Interrupted as error:
            last = str(error)
    kept = part.stat().st_size if part.is_file() else 0
    raise FetchError(f"{last}; {human_size(kept)} kept in {part.name} to resume from")
