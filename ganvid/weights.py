"""Pretrained files: the manifest (`weights.toml`), the local cache, and safe downloads.

Every network ganvid runs gets its file through `resolve(name_or_path)`: a path that exists is
used as is; a manifest name is looked up in the cache (`$GANVID_HOME/weights`, else the
platform cache dir), in a pip package that already ships the file, or in torch.hub's folder.
Nothing is downloaded behind the user's back: `ganvid weights download NAME` does that, with
HTTP Range resume into `<file>.part`, a SHA-256 check, an atomic rename, a lock so two
processes never fetch the same file, and Google Drive's "can't scan for viruses" pages
followed. This module knows nothing of networks; it only moves and checks bytes.

Why ~690 lines: the manifest's schema checks, where files live, their verification and the
import of hand-fetched files all turn on one `WeightEntry` and one cache layout; the HTTP side
of downloading lives in `ganvid.fetch`.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganvid.errors import DownloadError, InputError, WeightsError
from ganvid.fetch import DEFAULT_TIMEOUT_S, FetchError, Session, byte_bar, fetch
from ganvid.files import cache_dir, held, sha256_file

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]

MANIFEST_ENV = "GANVID_MANIFEST"
SCHEMA = 1

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")


# ----------------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class WeightEntry:
    """One pretrained file. Unknown checksums are "" and an unknown size is None."""

    name: str
    file: str  # path relative to the weights folder, e.g. "interfacegan/ffhq/age_boundary.npy"
    format: str
    urls: tuple[str, ...]
    licence: str
    used_by: tuple[str, ...]
    sha256: str = ""
    sha256_prefix: str = ""
    size: int | None = None  # bytes
    size_note: str = ""
    page: str = ""  # where a person can fetch it by hand
    bundled: str = ""  # "python_package:relative/path"
    torch_hub: bool = False
    notes: str = ""

    @property
    def basename(self) -> str:
        return Path(self.file).name


@dataclass(frozen=True)
class Manifest:
    """The parsed, validated manifest: entries by name (file order) and named groups."""

    path: Path
    entries: dict[str, WeightEntry]
    groups: dict[str, tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, name: str) -> WeightEntry:
        """The entry called `name`; WeightsError with close names when there is none."""
        if name in self.entries:
            return self.entries[name]
        close = difflib.get_close_matches(name, [*self.entries, *self.groups], n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise WeightsError(
            f"no pretrained file is called {name!r}{hint}; `ganvid weights list` shows every name"
        )

    def expand(self, names: Iterable[str]) -> list[WeightEntry]:
        """Entries for names and group names (groups may name groups), in order, no repeats."""
        out: dict[str, WeightEntry] = {}

        def visit(name: str, trail: tuple[str, ...]) -> None:
            if name in self.groups and name not in self.entries:
                if name in trail:
                    raise WeightsError(f"{self.path}: group {name!r} contains itself")
                for member in self.groups[name]:
                    visit(member, (*trail, name))
            else:
                entry = self.entry(name)
                out.setdefault(entry.name, entry)

        for name in names:
            visit(name, ())
        return list(out.values())


def manifest_path() -> Path:
    """$GANVID_MANIFEST if set, else the `weights.toml` that ships inside the package."""
    override = os.environ.get(MANIFEST_ENV)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent / "weights.toml"


def manifest(path: str | Path | None = None) -> Manifest:
    """Read and validate the manifest (default: `manifest_path()`). WeightsError if invalid."""
    path = Path(path) if path is not None else manifest_path()
    if tomllib is None:
        raise WeightsError("reading weights.toml on Python 3.10 needs `pip install tomli`")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise WeightsError(f"cannot read the weights manifest {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise WeightsError(f"the weights manifest {path} is not valid TOML: {error}") from error
    return _parse_manifest(data, path)


_ENTRY_KEYS = {
    "name",
    "file",
    "format",
    "urls",
    "licence",
    "used_by",
    "sha256",
    "sha256_prefix",
    "size",
    "size_note",
    "page",
    "bundled",
    "torch_hub",
    "notes",
}


def _parse_manifest(data: dict[str, Any], path: Path) -> Manifest:
    def bad(what: str) -> WeightsError:
        return WeightsError(f"weights manifest {path}: {what}")

    if data.get("schema", SCHEMA) != SCHEMA:
        raise bad(f"schema {data.get('schema')!r} is not {SCHEMA}; update ganvid")
    entries: dict[str, WeightEntry] = {}
    files: set[str] = set()
    for raw in data.get("weight", []):
        entry = _parse_entry(raw, bad)
        if entry.name in entries:
            raise bad(f"two entries are called {entry.name!r}")
        if entry.file in files:
            raise bad(f"two entries use the file {entry.file!r}")
        entries[entry.name] = entry
        files.add(entry.file)
    groups: dict[str, tuple[str, ...]] = {}
    for group, members in data.get("groups", {}).items():
        if group in entries:
            raise bad(f"group {group!r} has the name of a file entry")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise bad(f"group {group!r} must be a list of names")
        groups[group] = tuple(members)
    for group, members in groups.items():
        for member in members:
            if member not in entries and member not in groups:
                raise bad(f"group {group!r} names {member!r}, which is neither a file nor a group")
    return Manifest(path=path, entries=entries, groups=groups)


def _parse_entry(raw: Any, bad: Any) -> WeightEntry:
    if not isinstance(raw, dict):
        raise bad("each [[weight]] must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise bad(f"entry name {name!r} must be lower-case letters, digits and dashes")
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise bad(f"entry {name!r} has unknown fields {unknown}")

    def text(key: str, required: bool = False) -> str:
        value = raw.get(key, "")
        if not isinstance(value, str) or (required and not value):
            raise bad(f"entry {name!r}: {key} must be {'a non-empty' if required else 'a'} string")
        return value

    def texts(key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise bad(f"entry {name!r}: {key} must be a list of strings")
        return tuple(value)

    file = text("file", required=True)
    parts = Path(file).parts
    if Path(file).is_absolute() or ".." in parts or "\\" in file:
        raise bad(f"entry {name!r}: file {file!r} must be a plain relative path")
    urls = texts("urls")
    for url in urls:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise bad(f"entry {name!r}: {url!r} is not an http(s) URL")
    sha256 = text("sha256").lower()
    if sha256 and not _SHA256_RE.match(sha256):
        raise bad(f"entry {name!r}: sha256 must be 64 hex digits or empty")
    prefix = text("sha256_prefix").lower()
    if prefix and not _HEX_RE.match(prefix):
        raise bad(f"entry {name!r}: sha256_prefix must be hex digits")
    if sha256 and prefix and not sha256.startswith(prefix):
        raise bad(f"entry {name!r}: sha256 does not start with sha256_prefix")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise bad(
            f"entry {name!r}: size must be a positive number of bytes (leave it out if unknown)"
        )
    bundled = text("bundled")
    if bundled and (":" not in bundled or not all(bundled.split(":", 1))):
        raise bad(f"entry {name!r}: bundled must read 'package:relative/path'")
    torch_hub = raw.get("torch_hub", False)
    if not isinstance(torch_hub, bool):
        raise bad(f"entry {name!r}: torch_hub must be true or false")
    return WeightEntry(
        name=name,
        file=file,
        format=text("format", required=True),
        urls=urls,
        licence=text("licence", required=True),
        used_by=texts("used_by"),
        sha256=sha256,
        sha256_prefix=prefix,
        size=size,
        size_note=text("size_note"),
        page=text("page"),
        bundled=bundled,
        torch_hub=torch_hub,
        notes=text("notes"),
    )


# ------------------------------------------------------------------------------------ licences

#: Licence tags of the manifest -> (what a person reads, non-commercial only).
LICENCES: dict[str, tuple[str, bool]] = {
    "nvidia-sc-nc": ("NVIDIA Source Code License (non-commercial)", True),
    "s-lab-nc": ("S-Lab License 1.0 (non-commercial)", True),
    "ibug-300w-nc": ("trained on iBUG 300-W (non-commercial)", True),
    "cc-by-nc-4.0": (
        "CC BY-NC 4.0 (non-commercial; cite the paper, indicate changes)",
        True,
    ),
    "mit": ("MIT", False),
    "bsd-2": ("BSD 2-Clause", False),
    "bsd-3": ("BSD 3-Clause", False),
    "dlib-models": ("dlib models (free use)", False),
}
LICENCE_SHOWN = "licences-shown.txt"
"""File in the cache dir listing the files whose licence notice was shown (one name a line)."""


def licence_text(entry: WeightEntry) -> str:
    """The readable licence of an entry (the tag itself when unknown)."""
    return LICENCES.get(entry.licence, (entry.licence, False))[0]


def licence_notice(entry: WeightEntry) -> str | None:
    """The first-use notice of a non-commercial file, or None."""
    text, non_commercial = LICENCES.get(entry.licence, (entry.licence, False))
    if not non_commercial:
        return None
    return f"{entry.name} ({entry.basename}) is licensed {text}; `ganvid weights list` shows it"


def _show_licence_once(entry: WeightEntry) -> None:
    """Print the licence notice the first time a non-commercial file is used from this cache."""
    notice = licence_notice(entry)
    if notice is None:
        return
    record = cache_dir() / LICENCE_SHOWN
    try:
        shown = set(record.read_text(encoding="utf-8").split())
    except OSError:
        shown = set()
    if entry.name in shown:
        return
    from ganvid.ui import warn

    warn(notice)
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        with open(record, "a", encoding="utf-8") as stream:
            stream.write(entry.name + "\n")
    except OSError:
        pass  # a read-only cache: the notice is shown again next time, nothing worse


def _show_licence_of_file(path: Path, catalog: Manifest | None) -> None:
    """The first-use notice for a file given by path that carries a manifest file's name."""
    try:
        catalog = catalog if catalog is not None else manifest()
    except WeightsError:
        return  # a broken manifest does not stop a file given by path
    named = [e for e in catalog.entries.values() if e.basename == path.name]
    if len(named) == 1:
        _show_licence_once(named[0])


# ------------------------------------------------------------------------------ where files live


def weights_dir() -> Path:
    """Where downloaded and imported pretrained files are kept: `cache_dir()/weights`."""
    return cache_dir() / "weights"


def _entry(name: str | WeightEntry, catalog: Manifest | None) -> WeightEntry:
    if isinstance(name, WeightEntry):
        return name
    return (catalog if catalog is not None else manifest()).entry(name)


def local_path(name: str | WeightEntry, catalog: Manifest | None = None) -> Path:
    """Where the file belongs in the cache (whether or not it is there)."""
    return weights_dir() / _entry(name, catalog).file


def _bundled_path(entry: WeightEntry) -> Path | None:
    """The copy a pip package ships, found without importing the package."""
    if not entry.bundled:
        return None
    package, relative = entry.bundled.split(":", 1)
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def _torch_hub_checkpoints() -> Path:
    """torch.hub.get_dir()/checkpoints, computed without importing torch."""
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        return Path(torch_home).expanduser() / "hub" / "checkpoints"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "torch" / "hub" / "checkpoints"


def _candidates(entry: WeightEntry) -> list[tuple[str, Path]]:
    """(where, path) places the file may already be, in order of preference."""
    places = [("cache", weights_dir() / entry.file)]
    bundled = _bundled_path(entry)
    if bundled is not None:
        places.append((f"pip package {entry.bundled.split(':')[0]}", bundled))
    if entry.torch_hub:
        places.append(("torch hub", _torch_hub_checkpoints() / entry.basename))
    return places


def locate(name: str | WeightEntry, catalog: Manifest | None = None) -> tuple[str, Path] | None:
    """(where, path) of the first copy present on this machine, or None."""
    for where, path in _candidates(_entry(name, catalog)):
        if path.is_file():
            return where, path
    return None


def find(name: str | WeightEntry, catalog: Manifest | None = None) -> Path | None:
    """Path of a present copy of the file, or None."""
    found = locate(name, catalog)
    return found[1] if found else None


def _by_hand(entry: WeightEntry) -> str:
    source = entry.page or (entry.urls[0] if entry.urls else "")
    fetch = f"fetch it by hand from {source} and " if source else ""
    return (
        f"{fetch}put it at {weights_dir() / entry.file} "
        "(or run `ganvid weights import --from DIR` on the folder holding it)"
    )


def missing_message(entry: WeightEntry) -> str:
    """One line: what is missing, the command that gets it, its URLs, where to put it by hand."""
    if entry.bundled and not entry.urls:
        package = entry.bundled.split(":")[0]
        return (
            f"pretrained file {entry.file} ({entry.name}) is missing: it ships with the pip "
            f"package {package}; reinstall it (`pip install --force-reinstall {package}`) or "
            + _by_hand(entry)
        )
    urls = f" from {' or '.join(entry.urls)}" if entry.urls else ""
    return (
        f"pretrained file {entry.file} ({entry.name}) is not in {weights_dir()}: run "
        f"`ganvid weights download {entry.name}` to fetch it{urls}, or " + _by_hand(entry)
    )


def _no_url_message(entry: WeightEntry) -> str:
    if entry.bundled:
        return missing_message(entry)
    return f"no direct download URL is known for {entry.file} ({entry.name}): " + _by_hand(entry)


def resolve(name_or_path: str | Path, catalog: Manifest | None = None) -> Path:
    """A usable file for a path or a manifest name; WeightsError (one line) saying how to get it.

    An existing file path is returned as is. A manifest name is looked up in the cache, in a pip
    package that ships it, then in torch.hub's folder (entries with torch_hub = true). A copy
    whose size differs from the manifest's (an interrupted copy) counts as broken.
    """
    as_path = Path(str(name_or_path)).expanduser()
    if as_path.is_file():
        _show_licence_of_file(as_path, catalog)
        return as_path
    key = str(name_or_path)
    catalog = catalog if catalog is not None else manifest()
    if key not in catalog.entries:
        if os.sep in key or as_path.suffix:
            raise WeightsError(
                f"{key}: no such file, and no pretrained file of that name "
                "(`ganvid weights list` shows every name)"
            )
        try:
            catalog.entry(key)
        except WeightsError as error:
            raise WeightsError(f"{key}: no such file, and {error}") from None
    entry = catalog.entries[key]
    found = find(entry)
    if found is None:
        raise WeightsError(missing_message(entry))
    _show_licence_once(entry)
    size = found.stat().st_size
    if entry.size is not None and size != entry.size:
        raise WeightsError(
            f"{found} is {size} bytes, not {entry.size}: the copy is incomplete or wrong; delete "
            f"it and run `ganvid weights download {entry.name}`"
        )
    return found


# ------------------------------------------------------------------------------------ checking


def _problem(entry: WeightEntry, path: Path) -> str:
    """What is wrong with `path` as a copy of `entry` ("" when size and checksum agree)."""
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        return f"size {size} bytes, expected {entry.size}"
    if entry.sha256 or entry.sha256_prefix:
        actual = sha256_file(path)
        if entry.sha256 and actual != entry.sha256:
            return f"SHA-256 {actual[:12]}…, expected {entry.sha256[:12]}…"
        if not actual.startswith(entry.sha256_prefix):
            return f"SHA-256 {actual[:12]}… does not start with {entry.sha256_prefix}"
    return ""


@dataclass(frozen=True)
class Check:
    """Result of `verify`: status is 'ok', 'unchecked' (present, no checksum known),
    'missing' or 'corrupt'."""

    name: str
    status: str
    path: Path | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unchecked")


def verify(name: str | WeightEntry, catalog: Manifest | None = None) -> Check:
    """Check the present copy of a file against the manifest's size and SHA-256."""
    entry = _entry(name, catalog)
    found = locate(entry)
    if found is None:
        return Check(entry.name, "missing", None, missing_message(entry))
    where, path = found
    problem = _problem(entry, path)
    if problem:
        return Check(entry.name, "corrupt", path, f"{path}: {problem}")
    if entry.sha256:
        return Check(entry.name, "ok", path, f"SHA-256 matches ({where})")
    if entry.sha256_prefix:
        return Check(
            entry.name, "ok", path, f"SHA-256 prefix {entry.sha256_prefix} matches ({where})"
        )
    sized = "size matches; " if entry.size is not None else ""
    return Check(entry.name, "unchecked", path, f"present ({where}); {sized}no checksum is known")


# ------------------------------------------------------------------------------------ download


@contextmanager
def _download_lock(target: Path) -> Iterator[None]:
    """Only one process downloads a given file at a time; the others wait, then reuse it."""
    from filelock import FileLock

    # Lock files live apart so the weights folder holds only weights.
    locks = weights_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    relative = target.relative_to(weights_dir()).as_posix().replace("/", "__")
    lock = FileLock(str(locks / f"{relative}.lock"))
    waiting = f"waiting for another ganvid process that is downloading {target.name}"
    with held(lock, 0.5, waiting):
        yield


def download(
    name: str | WeightEntry,
    progress: bool = True,
    *,
    catalog: Manifest | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    attempts: int = 3,
    force: bool = False,
) -> Path:
    """Download one manifest file into the cache and return its path.

    Each URL is tried in turn. Bytes go to `<file>.part` (resumed with an HTTP Range request
    after a dropped connection, here or in a later run), are checked against the manifest's
    size and SHA-256 when known (a mismatch deletes the part file), then renamed into place.
    A present copy is returned without downloading unless `force`. DownloadError (one line)
    names the file, each URL's failure and where to put the file by hand.
    """
    entry = _entry(name, catalog)
    if not force:
        found = find(entry)
        if found is not None and (entry.size is None or found.stat().st_size == entry.size):
            return found
    if not entry.urls:
        raise DownloadError(_no_url_message(entry))
    target = weights_dir() / entry.file
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")

    def complete(part: Path) -> bool:
        return bool(entry.sha256 or entry.size) and not _problem(entry, part)

    with _download_lock(target):
        if not force and target.is_file() and not _problem(entry, target):
            return target  # another process finished it while we waited
        failures = []
        with byte_bar(entry.name, progress) as bar:
            session = Session(timeout_s)
            for url in entry.urls:
                try:
                    fetch(session, url, part, bar, attempts, complete)
                except FetchError as error:
                    failures.append(f"{url}: {error}")
                    continue
                problem = _problem(entry, part)
                if problem:
                    part.unlink(missing_ok=True)
                    failures.append(f"{url}: downloaded file rejected ({problem}), not kept")
                    continue
                os.replace(part, target)
                return target
    resume = (
        f"; run `ganvid weights download {entry.name}` again to resume"
        if part.is_file()
        else f"; retry with `ganvid weights download {entry.name}`"
    )
    raise DownloadError(
        f"could not download {entry.file} ({entry.name}): {'; '.join(failures)}{resume}, or "
        + _by_hand(entry)
    )


# -------------------------------------------------------------------------------------- import


@dataclass(frozen=True)
class Imported:
    """One file found by `import_from`: `path` is where it now lives, or None with a `problem`."""

    name: str
    source: Path
    path: Path | None
    problem: str = ""


def _matches(source: Path, entry: WeightEntry, unique_basename: bool) -> bool:
    """Same file name; where the name is shared, the same folder name too (ffhq vs ffhqu)."""
    if source.name != entry.basename:
        return False
    return unique_basename or source.parent.name == Path(entry.file).parent.name


def import_from(
    directory: str | Path,
    names: Iterable[str] = (),
    catalog: Manifest | None = None,
) -> list[Imported]:
    """Bring files a user fetched by hand into the cache (hard link, else copy; atomic).

    Files under `directory` (searched recursively) are matched to manifest entries by file name;
    where two entries share a file name (InterFaceGAN ffhq / ffhqu), by their folder too, unless
    `names` picks one. A file whose size or SHA-256 disagrees with the manifest is not imported.
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise InputError(
            f"{directory}: not a folder (give the folder holding the downloaded files)"
        )
    catalog = catalog if catalog is not None else manifest()
    entries = catalog.expand(names) if names else list(catalog.entries.values())
    basenames = [entry.basename for entry in entries]
    wanted = set(basenames)
    found = sorted(
        Path(root) / file
        for root, _, files in os.walk(directory)
        for file in files
        if file in wanted
    )
    results = []
    for entry in entries:
        unique = basenames.count(entry.basename) == 1
        sources = [s for s in found if _matches(s, entry, unique)]
        if sources:
            results.append(_import_one(entry, sources))
    return results


def _import_one(entry: WeightEntry, sources: list[Path]) -> Imported:
    target = weights_dir() / entry.file
    problems = []
    for source in sources:
        if target.is_file() and target.samefile(source):
            return Imported(entry.name, source, target)
        problem = _problem(entry, source)
        if problem:
            problems.append(f"{source}: {problem}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(target.name + ".import")
        staging.unlink(missing_ok=True)
        try:
            os.link(source, staging)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, staging)
        os.replace(staging, target)
        return Imported(entry.name, source, target)
    return Imported(entry.name, sources[0], None, "; ".join(problems))


# -------------------------------------------------------------------------------------- doctor


def describe_cache() -> list[tuple[str, str]]:
    """Rows for `ganvid doctor`: cache location, files present, and which groups are ready."""
    try:
        catalog = manifest()
    except WeightsError as error:
        return [("weights", str(error))]
    present = {name for name, entry in catalog.entries.items() if find(entry) is not None}
    rows = [
        ("weights cache", str(weights_dir())),
        ("weights present", f"{len(present)} of {len(catalog)} files (`ganvid weights list`)"),
    ]
    for group in catalog.groups:
        missing = [e.name for e in catalog.expand([group]) if e.name not in present]
        state = "ready" if not missing else f"missing {', '.join(missing)}"
        rows.append((f"weights for {group}", state))
    return rows
