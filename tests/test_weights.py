"""Weights manager: manifest, cache lookup, and downloads against a real HTTP server on 127.0.0.1.

The server (http.server in a thread) serves byte ranges, can drop the connection part-way,
answer 404, serve a Google-Drive style confirmation page, or serve the wrong bytes. Only
loopback addresses are used; nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ganvid import weights
from ganvid.errors import DownloadError, InputError, WeightsError
from ganvid.fetch import network_reason

PAYLOAD = random.Random(0).randbytes(200_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


# ------------------------------------------------------------------------------ the test server


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    ranges: bool = True  # honour Range headers
    drop_after: int | None = None  # close the connection after this many body bytes ...
    drops: int = 0  # ... for this many requests
    need_query: dict[str, str] = field(default_factory=dict)  # else 403


@dataclass
class Hit:
    path: str
    range: str | None
    sent: int  # body bytes written


class _Handler(BaseHTTPRequestHandler):
    timeout = 5  # a stuck client cannot hold a server thread longer than this

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        route = self.server.routes.get(parts.path)  # type: ignore[attr-defined]
        query = dict(urllib.parse.parse_qsl(parts.query))
        hit = Hit(parts.path, self.headers.get("Range"), 0)
        self.server.hits.append(hit)  # type: ignore[attr-defined]
        if route is None or route.status == 404:
            return self._send_status(404)
        if any(query.get(k) != v for k, v in route.need_query.items()):
            return self._send_status(403)
        body, status, extra = route.body, 200, {}
        wanted = self.headers.get("Range")
        if wanted and route.ranges:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(route.body):
                return self._send_status(416)
            body, status = route.body[start:], 206
            extra["Content-Range"] = f"bytes {start}-{len(route.body) - 1}/{len(route.body)}"
        self.send_response(status)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        if route.drops > 0 and route.drop_after is not None:
            route.drops -= 1
            body = body[: route.drop_after]
        # Record before writing: the client can finish reading (and the test assert) before
        # this server thread runs again after write() returns.
        hit.sent = len(body)
        self.wfile.write(body)

    def _send_status(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


class LocalServer:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.routes = {}  # type: ignore[attr-defined]
        self.httpd.hits = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def routes(self) -> dict[str, Route]:
        return self.httpd.routes  # type: ignore[attr-defined]

    @property
    def hits(self) -> list[Hit]:
        return self.httpd.hits  # type: ignore[attr-defined]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    local = LocalServer()
    yield local
    local.close()


def closed_port_url(path: str = "/file.bin") -> str:
    """A loopback URL nobody listens on: connecting is refused, as when offline."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# ------------------------------------------------------------------------- test manifests


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_manifest(path: Path, entries: list[dict], groups: dict | None = None) -> Path:
    lines = ["schema = 1", "[groups]"]
    lines += [f"{name} = {_toml_value(members)}" for name, members in (groups or {}).items()]
    for entry in entries:
        lines.append("[[weight]]")
        full = {"format": "test-bin", "licence": "mit", "used_by": ["tests"], **entry}
        lines += [f"{key} = {_toml_value(value)}" for key, value in full.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def use_manifest(tmp_path, monkeypatch):
    """Write a manifest and point GANVID_MANIFEST at it; returns the parsed Manifest."""

    def make(entries: list[dict], groups: dict | None = None) -> weights.Manifest:
        path = write_manifest(tmp_path / "weights.toml", entries, groups)
        monkeypatch.setenv(weights.MANIFEST_ENV, str(path))
        return weights.manifest()

    return make


def entry(name="model", urls=(), sha256=PAYLOAD_SHA, size=len(PAYLOAD), **extra) -> dict:
    fields = {"name": name, "file": f"{name}.bin", "urls": list(urls), "sha256": sha256}
    if size is not None:
        fields["size"] = size
    return {**fields, **extra}


# -------------------------------------------------------------------------------- downloads


def test_download_fetches_checks_and_renames(server, use_manifest):
    server.routes["/model.bin"] = Route(PAYLOAD)
    use_manifest([entry(urls=[server.url("/model.bin")])])

    path = weights.download("model", progress=False)

    assert path == weights.weights_dir() / "model.bin"
    assert path.read_bytes() == PAYLOAD
    assert not path.with_name("model.bin.part").exists()
    assert [hit.range for hit in server.hits] == [None]
    # Present now: a second call neither downloads nor fails.
    assert weights.download("model", progress=False) == path
    assert len(server.hits) == 1


def test_interrupted_download_resumes_in_a_later_run(server, use_manifest):
    server.routes["/model.bin"] = Route(PAYLOAD, drop_after=70_000, drops=1)
    use_manifest([entry(urls=[server.url("/model.bin")])])

    with pytest.raises(DownloadError) as failure:
        weights.download("model", progress=False, attempts=1)
    part = weights.weights_dir() / "model.bin.part"
    assert part.stat().st_size == 70_000
    assert "ganvid weights download model" in str(failure.value)
    assert not (weights.weights_dir() / "model.bin").exists()

    path = weights.download("model", progress=False)

    assert path.read_bytes() == PAYLOAD
    assert server.hits[-1].range == "bytes=70000-"
    assert server.hits[-1].sent == len(PAYLOAD) - 70_000


def test_dropped_connection_is_resumed_within_one_call(server, use_manifest):
    server.routes["/model.bin"] = Route(PAYLOAD, drop_after=50_000, drops=2)
    use_manifest([entry(urls=[server.url("/model.bin")])])

    path = weights.download("model", progress=False, attempts=3)

    assert path.read_bytes() == PAYLOAD
    assert [hit.range for hit in server.hits] == [None, "bytes=50000-", "bytes=100000-"]
    assert sum(hit.sent for hit in server.hits) == len(PAYLOAD)


def test_server_without_range_support_starts_over(server, use_manifest):
    server.routes["/model.bin"] = Route(PAYLOAD, ranges=False, drop_after=50_000, drops=1)
    use_manifest([entry(urls=[server.url("/model.bin")])])

    assert weights.download("model", progress=False).read_bytes() == PAYLOAD


def test_checksum_mismatch_is_rejected_and_nothing_kept(server, use_manifest):
    wrong = bytes(len(PAYLOAD))  # right size, wrong content
    server.routes["/model.bin"] = Route(wrong)
    use_manifest([entry(urls=[server.url("/model.bin")])])

    with pytest.raises(DownloadError, match="SHA-256"):
        weights.download("model", progress=False)
    assert list(weights.weights_dir().glob("model.bin*")) == []


def test_second_downloader_waits_for_the_first_and_reuses_its_file(server, use_manifest):
    server.routes["/model.bin"] = Route(PAYLOAD)
    catalog = use_manifest([entry(urls=[server.url("/model.bin")])])
    target = weights.local_path("model", catalog)
    target.parent.mkdir(parents=True, exist_ok=True)
    holding, release, result = threading.Event(), threading.Event(), {}

    def first_downloader() -> None:
        with weights._download_lock(target):
            holding.set()
            release.wait(5)
            target.write_bytes(PAYLOAD)

    first = threading.Thread(target=first_downloader)
    first.start()
    assert holding.wait(5)
    second = threading.Thread(
        target=lambda: result.update(path=weights.download("model", progress=False))
    )
    second.start()
    time.sleep(0.3)
    assert second.is_alive()  # blocked on the lock, not downloading
    release.set()
    first.join(5)
    second.join(5)

    assert result["path"] == target
    assert server.hits == []


def test_unknown_checksum_still_checks_the_size(server, use_manifest):
    server.routes["/model.bin"] = Route(PAYLOAD[:1000])
    use_manifest([entry(urls=[server.url("/model.bin")], sha256="")])

    with pytest.raises(DownloadError, match="size 1000 bytes"):
        weights.download("model", progress=False)


def test_http_404_names_the_file_and_url(server, use_manifest):
    url = server.url("/gone.bin")
    use_manifest([entry(urls=[url])])

    with pytest.raises(DownloadError) as failure:
        weights.download("model", progress=False)
    message = str(failure.value)
    assert "HTTP 404" in message and url in message and "model.bin" in message
    assert "\n" not in message
    assert not (weights.weights_dir() / "model.bin").exists()


def test_next_url_is_tried_when_one_fails(server, use_manifest):
    server.routes["/mirror.bin"] = Route(PAYLOAD)
    use_manifest([entry(urls=[server.url("/gone.bin"), server.url("/mirror.bin")])])

    assert weights.download("model", progress=False).read_bytes() == PAYLOAD


def test_offline_error_names_file_command_urls_and_place(use_manifest):
    url = closed_port_url()
    use_manifest([entry(urls=[url])])

    with pytest.raises(DownloadError) as failure:
        weights.download("model", progress=False, timeout_s=5)
    message = str(failure.value)
    assert "model.bin" in message
    assert "connection refused" in message
    assert url in message
    assert "ganvid weights download model" in message
    assert str(weights.weights_dir() / "model.bin") in message
    assert "ganvid weights import --from DIR" in message


def test_network_reasons_read_like_plain_english():
    assert "offline" in network_reason(socket.gaierror(-2, "Name or service not known"))
    assert "timed out" in network_reason(TimeoutError())


DRIVE_FORM = """<html><body>Google Drive can't scan this file for viruses.
<form id="download-form" action="/download" method="get">
<input type="submit" value="Download anyway"/>
<input type="hidden" name="id" value="ABC"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-42">
</form></body></html>"""

DRIVE_LINK = """<html><body><a id="uc-download-link"
href="/uc?export=download&amp;confirm=Xy_9&amp;id=ABC">Download anyway</a></body></html>"""


@pytest.mark.parametrize("style", ["form", "link"])
def test_google_drive_confirmation_page_is_followed(server, use_manifest, style):
    if style == "form":
        server.routes["/uc"] = Route(DRIVE_FORM.encode(), content_type="text/html; charset=utf-8")
        server.routes["/download"] = Route(PAYLOAD, need_query={"confirm": "t", "uuid": "u-42"})
    else:
        # The same path answers the page without a token and the file with one.
        server.routes["/uc"] = Route(PAYLOAD, need_query={"confirm": "Xy_9"})
        server.routes["/page"] = Route(DRIVE_LINK.encode(), content_type="text/html")
    first = "/uc" if style == "form" else "/page"
    use_manifest([entry(urls=[server.url(f"{first}?export=download&id=ABC")])])

    path = weights.download("model", progress=False)

    assert path.read_bytes() == PAYLOAD
    assert len(server.hits) == 2


def test_web_page_without_a_token_is_a_clear_error(server, use_manifest):
    quota = b"<html><body>Too many users have viewed or downloaded this file.</body></html>"
    server.routes["/uc"] = Route(quota, content_type="text/html")
    use_manifest([entry(urls=[server.url("/uc?id=ABC")])])

    with pytest.raises(DownloadError, match="web page instead of the file"):
        weights.download("model", progress=False)
    assert not (weights.weights_dir() / "model.bin").exists()


# ----------------------------------------------------------------------------- cache lookup


def test_resolve_returns_existing_paths_and_cached_files(tmp_path, use_manifest):
    catalog = use_manifest([entry(urls=["http://127.0.0.1:9/model.bin"])])
    own = tmp_path / "my-generator.pt"
    own.write_bytes(b"x")
    assert weights.resolve(own) == own
    cached = weights.local_path("model", catalog)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(PAYLOAD)
    assert weights.resolve("model") == cached


def test_resolve_missing_file_says_how_to_get_it(use_manifest):
    use_manifest([entry(urls=["http://127.0.0.1:9/model.bin"], page="http://127.0.0.1:9/page")])

    with pytest.raises(WeightsError) as failure:
        weights.resolve("model")
    message = str(failure.value)
    assert "\n" not in message
    for part in (
        "model.bin",
        "ganvid weights download model",
        "http://127.0.0.1:9/model.bin",
        str(weights.weights_dir() / "model.bin"),
    ):
        assert part in message


def test_resolve_unknown_name_suggests_close_names(use_manifest):
    use_manifest([entry(name="sg3-r-ffhq-1024")])

    with pytest.raises(WeightsError, match="did you mean sg3-r-ffhq-1024"):
        weights.resolve("sg3-r-ffhq-102")
    with pytest.raises(WeightsError, match="no such file"):
        weights.resolve("missing/generator.pt")


def test_resolve_refuses_a_truncated_copy(use_manifest):
    catalog = use_manifest([entry()])
    cached = weights.local_path("model", catalog)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(PAYLOAD[:10])

    with pytest.raises(WeightsError, match="incomplete"):
        weights.resolve("model")


def test_file_shipped_by_a_pip_package_is_found_offline(use_manifest):
    import importlib.util

    lpips_dir = Path(importlib.util.find_spec("lpips").submodule_search_locations[0])
    shipped = lpips_dir / "weights" / "v0.1" / "alex.pth"
    use_manifest(
        [
            entry(
                name="heads",
                sha256=hashlib.sha256(shipped.read_bytes()).hexdigest(),
                size=shipped.stat().st_size,
                bundled="lpips:weights/v0.1/alex.pth",
            )
        ]
    )

    assert weights.resolve("heads") == shipped
    assert weights.verify("heads").status == "ok"


def test_verify_reports_ok_corrupt_missing_and_unchecked(use_manifest):
    catalog = use_manifest(
        [entry(name="good"), entry(name="bad"), entry(name="absent"), entry(name="free", sha256="")]
    )
    for name, data in (("good", PAYLOAD), ("bad", bytes(len(PAYLOAD))), ("free", PAYLOAD)):
        path = weights.local_path(name, catalog)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    statuses = {name: weights.verify(name).status for name in ("good", "bad", "absent", "free")}

    assert statuses == {"good": "ok", "bad": "corrupt", "absent": "missing", "free": "unchecked"}


def test_import_copies_good_files_and_rejects_bad_ones(tmp_path, use_manifest):
    bad_data = b"not the model"
    catalog = use_manifest(
        [
            entry(name="model"),
            entry(name="other", sha256=PAYLOAD_SHA),
            entry(name="age-a", file="interfacegan/ffhq/age_boundary.npy", sha256="", size=None),
            entry(name="age-u", file="interfacegan/ffhqu/age_boundary.npy", sha256="", size=None),
        ]
    )
    downloads = tmp_path / "Downloads"
    (downloads / "nested").mkdir(parents=True)
    (downloads / "nested" / "model.bin").write_bytes(PAYLOAD)
    (downloads / "other.bin").write_bytes(bad_data)
    (downloads / "ffhqu").mkdir()
    (downloads / "ffhqu" / "age_boundary.npy").write_bytes(b"unaligned")

    results = {r.name: r for r in weights.import_from(downloads)}

    assert weights.local_path("model", catalog).read_bytes() == PAYLOAD
    assert results["other"].path is None and "size" in results["other"].problem
    assert not weights.local_path("other", catalog).exists()
    # Two entries share the file name: the folder name decides.
    assert weights.local_path("age-u", catalog).read_bytes() == b"unaligned"
    assert "age-a" not in results
    assert (downloads / "other.bin").read_bytes() == bad_data  # sources are never touched


def test_import_from_a_missing_folder_is_an_input_error(tmp_path, use_manifest):
    use_manifest([entry()])
    with pytest.raises(InputError):
        weights.import_from(tmp_path / "nowhere")


# -------------------------------------------------------------------------------- manifest


def test_shipped_manifest_is_valid_and_complete():
    import ganvid

    packaged = Path(ganvid.__file__).parent / "weights.toml"
    assert packaged.resolve() == (Path(ganvid.__file__).parent.parent / "weights.toml").resolve()
    catalog = weights.manifest(packaged)

    for group in ("invert", "edit", "toonify"):
        assert catalog.expand([group]), group
    for item in catalog.entries.values():
        assert item.urls or item.bundled or item.page, item.name
        for url in item.urls:
            if "drive.google.com" in url:
                assert url.startswith("https://drive.google.com/uc?export=download&id="), url
    names = {e.name for e in catalog.expand(["edit"])}
    assert {"restyle-e4e-ffhq", "sg3-r-ffhq-1024", "interfacegan-ffhq-age"} <= names


@pytest.mark.parametrize(
    "entries, groups, problem",
    [
        ([entry(), entry()], {}, "two entries"),
        ([entry(sha256="abc")], {}, "64 hex"),
        ([entry(urls=["ftp://x/y"])], {}, "not an http"),
        ([entry(file="../escape.bin")], {}, "relative path"),
        ([entry()], {"g": ["nope"]}, "neither a file nor a group"),
        ([entry(size=0)], {}, "positive"),
    ],
)
def test_invalid_manifest_is_refused(tmp_path, entries, groups, problem):
    path = write_manifest(tmp_path / "bad.toml", entries, groups)
    with pytest.raises(WeightsError, match=problem):
        weights.manifest(path)


def test_groups_expand_recursively_without_repeats(use_manifest):
    catalog = use_manifest(
        [entry(name="a"), entry(name="b"), entry(name="c")],
        {"base": ["a", "b"], "more": ["base", "c", "a"]},
    )
    assert [e.name for e in catalog.expand(["more"])] == ["a", "b", "c"]


# -------------------------------------------------------------------------------------- CLI


def test_cli_list_path_and_download_group(cli, server, use_manifest):
    server.routes["/model.bin"] = Route(PAYLOAD)
    use_manifest(
        [entry(urls=[server.url("/model.bin")]), entry(name="extra", urls=[server.url("/x")])],
        {"starter": ["model"]},
    )

    code, out, _ = cli("weights", "list")
    assert code == 0 and "model" in out and "extra" in out and "missing" in out

    code, _, err = cli("weights", "path", "model")
    assert code != 0 and "ganvid weights download model" in err and len(err.splitlines()) == 1

    code, _, err = cli("weights", "download", "starter")  # with the progress bar
    assert code == 0, err
    target = weights.weights_dir() / "model.bin"
    assert target.read_bytes() == PAYLOAD

    code, out, _ = cli("weights", "path", "model")
    assert code == 0 and out.strip() == str(target)

    code, out, _ = cli("weights", "list")
    assert "present" in out

    code, out, _ = cli("weights", "verify")
    assert code == 0 and "ok" in out


def test_cli_download_failure_is_one_line_and_nonzero(cli, use_manifest):
    use_manifest([entry(urls=[closed_port_url()])])

    code, _, err = cli("weights", "download", "model", "--quiet")

    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "model.bin" in lines[0]


def test_cli_verify_fails_on_a_corrupt_file(cli, use_manifest):
    catalog = use_manifest([entry()])
    path = weights.local_path("model", catalog)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(len(PAYLOAD)))

    code, out, err = cli("weights", "verify")

    assert code != 0 and "corrupt" in out and "failed verification" in err


def test_cli_import_from_folder(cli, tmp_path, use_manifest):
    catalog = use_manifest([entry()])
    (tmp_path / "fetched").mkdir()
    (tmp_path / "fetched" / "model.bin").write_bytes(PAYLOAD)

    code, _, err = cli("weights", "import", "--from", tmp_path / "fetched")

    assert code == 0, err
    assert weights.local_path("model", catalog).read_bytes() == PAYLOAD
    (tmp_path / "empty").mkdir()
    code, _, err = cli("weights", "import", "--from", tmp_path / "empty")
    assert code != 0 and "no file under" in err and len(err.splitlines()) == 1


def test_doctor_reports_the_cache(cli, use_manifest):
    use_manifest([entry()], {"invert": ["model"]})

    code, _, err = cli("doctor")

    assert code == 0
    assert str(weights.weights_dir()) in err
    assert "0 of 1" in err and "missing model" in err
