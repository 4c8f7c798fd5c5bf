"""Load StyleGAN3 generators from every published format without running code from the file.

Formats (detected from the file's first bytes and contents):
  (a) NVIDIA network pickles (`stylegan3-r-ffhq-1024x1024.pkl`, training snapshots): read with an
      allow-listed unpickler. NVIDIA's persistence records (which embed the source text of their
      network modules, normally exec'd on load) become inert `PersistentRecord`s; the generator
      is rebuilt from its `_init_kwargs` and the recorded parameters and buffers. `module_src` is
      never executed, and any global outside the allow-list stops the load.
  (b) stylegan3-editing `.pt` generators: a flat `G_ema.state_dict()` saved with torch.save; the
      config (R/T, resolution, widths, w_dim, mapping depth) is inferred from keys and shapes.
  (c) PTI-tuned state dicts: like (b) but `synthesis.input.transform` is batched [B, 3, 3] (the
      last training batch's transforms); it is dropped and the identity is used.
  (d) ganvid's own format (`save_generator`): {format, version, config, state_dict}.
(b)-(d) load with `torch.load(weights_only=True)`. Missing, unexpected or mis-shaped tensors are
errors that list the names; nothing is silently ignored.

It also owns the one safe `torch.load` (`safe_torch_load`) that every `.pt` loader in `nn/` uses
(ReStyle, StyleGANEX, face parsing, StyleMapGAN), and the strict state-dict loader.

Why ~560 lines: the safe unpickler, the persistence-record reader and the shape inference are
the security boundary for every checkpoint; they are kept in one place so their allow-lists can
be audited together.
"""

from __future__ import annotations

import collections
import io
import os
import pathlib
import pickle
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganvid.errors import CheckpointError, InputError
from ganvid.files import atomic_path
from ganvid.nn.stylegan3 import Generator, SG3Config, synthesis_schedule

FORMAT_NAME = "ganvid.stylegan3"
FORMAT_VERSION = 1
TRANSFORM_KEY = "synthesis.input.transform"
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LIST_LIMIT = 12
_NETWORK = "a StyleGAN3 generator"


# ----------------------------------------------------------------------------- helpers


# Pickled path objects are rebuilt as *pure* paths: they are only informative here, and a pure
# path can be built on any OS (a WindowsPath cannot be instantiated on Linux and vice versa).
# Names cover Python < 3.13 (`pathlib.X`) and 3.13+ (`pathlib._local.X`).
SAFE_GLOBALS: list[tuple[type, str]] = [
    (cls, f"{module}.{name}")
    for module in ("pathlib", "pathlib._local")
    for name, cls in (
        ("PosixPath", pathlib.PurePosixPath),
        ("PurePosixPath", pathlib.PurePosixPath),
        ("WindowsPath", pathlib.PureWindowsPath),
        ("PureWindowsPath", pathlib.PureWindowsPath),
    )
]


def safe_torch_load(
    path: str | os.PathLike,
    allowed: Sequence = SAFE_GLOBALS,
    allowed_text: str = "pathlib paths",
) -> object:
    """torch.load with weights_only=True, an allow-list of classes and CPU storages (files saved
    from a GPU load on a CPU machine; legacy and zip containers both read): the one safe
    `torch.load` every loader uses.

    allowed: the classes the pickle may build besides tensors and plain containers (default:
    pathlib paths), as `torch.serialization.safe_globals` takes them; allowed_text names them in
    the error. Raises CheckpointError naming any other global the pickle asks for, or saying why
    the file is unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    allowed = list(allowed)
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        names = _refused_globals(path, error, allowed)
        raise CheckpointError(
            f"refusing to load {path}: it asks to run or build {', '.join(names)}, which is not "
            f"allowed (only tensors, plain containers and {allowed_text} are read, so no code "
            "from a checkpoint runs). Re-save it as a plain state dict."
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {error}") from error


def _global_name(entry) -> str:
    if isinstance(entry, tuple):
        return entry[1]
    return f"{entry.__module__}.{entry.__qualname__}"


def _refused_globals(path: Path, error: Exception, allowed: Sequence) -> list[str]:
    """Names of the disallowed globals in the file (read without unpickling anything)."""
    allowed_names = {_global_name(entry) for entry in allowed}
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        names = [n for n in names if n not in allowed_names]
    except Exception:  # not a zip checkpoint: fall back to the error text
        names = []
    if not names:
        names = re.findall(r"GLOBAL (\S+) was not an allowed global", str(error))
    return names or ["an unsupported object"]


def name_list(names: list[str], limit: int = _LIST_LIMIT) -> str:
    """The first `limit` names, comma-separated, and how many more: for error messages."""
    shown = ", ".join(names[:limit])
    more = len(names) - limit
    return shown + (f" (+{more} more)" if more > 0 else "")


def load_state_dict_strict(
    module: torch.nn.Module,
    sd: Mapping[str, torch.Tensor],
    source: str,
    prefix: str = "",
    network: str = "the network",
) -> None:
    """Copy sd into module; every name and shape must match, else a CheckpointError naming the
    missing, unexpected and mis-shaped tensors (as `prefix` + key, the names in the file) and
    loading nothing. network: what the message says sd does not match."""
    expected = module.state_dict()
    missing = [prefix + k for k in expected if k not in sd]
    unexpected = [prefix + k for k in sd if k not in expected]
    reshaped = [
        f"{prefix}{k} {list(v.shape)} != {list(expected[k].shape)}"
        for k, v in sd.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {name_list(missing)}")
    if unexpected:
        problems.append(f"unexpected {name_list(unexpected)}")
    if reshaped:
        problems.append(f"wrong shape {name_list(reshaped)}")
    if problems:
        raise CheckpointError(f"{source} does not match {network}: {'; '.join(problems)}")
    module.load_state_dict(dict(sd), strict=True)


# ----------------------------------------------------------------------------- config inference


def _layer_entries(sd: dict[str, torch.Tensor]) -> dict[int, tuple[str, int, int]]:
    """index -> (name, size, channels) for every `synthesis.L{i}_{size}_{ch}.weight`."""
    found = {}
    for key in sd:
        m = re.fullmatch(r"synthesis\.(L(\d+)_(\d+)_(\d+))\.weight", key)
        if m:
            found[int(m.group(2))] = (m.group(1), int(m.group(3)), int(m.group(4)))
    return found


def _channel_base_candidates(channels: list[int], cutoffs: np.ndarray) -> list[int]:
    """channel_base values consistent with channels[i] = rint(min(base / 2 / cutoff_i, max))."""
    channel_max = max(channels)
    lo, hi = 0.0, float("inf")
    for ch, fc in zip(channels, cutoffs, strict=True):
        lo = max(lo, 2 * fc * (ch - 0.5))
        if ch < channel_max:
            hi = min(hi, 2 * fc * (ch + 0.5))
    powers = [2**k for k in range(4, 24) if lo <= 2**k <= hi]
    middle = [round((lo + hi) / 2)] if hi < float("inf") else []
    return powers + middle


def infer_config(sd: dict[str, torch.Tensor], source: str = "state dict") -> SG3Config:
    """Recover the SG3Config of a flat generator state dict from its keys and shapes.

    Inferred: w_dim, z_dim, c_dim, mapping depth, resolution, image channels, conv kernel (T: 3,
    R: 1), radial filters, channel_base and channel_max. Not stored in a state dict, so NVIDIA's
    defaults are used: mapping lr multiplier, fp16 layers, conv clamp, the schedule constants.
    """
    if "mapping.w_avg" not in sd:
        raise CheckpointError(f"{source} has no 'mapping.w_avg': not a StyleGAN3 generator")
    w_dim = int(sd["mapping.w_avg"].shape[0])
    mapping_layers = len([k for k in sd if re.fullmatch(r"mapping\.fc\d+\.weight", k)])
    c_dim = int(sd["mapping.embed.weight"].shape[1]) if "mapping.embed.weight" in sd else 0
    if mapping_layers == 0:
        raise CheckpointError(f"{source} has no mapping layers (mapping.fc0.weight)")
    z_dim = int(sd["mapping.fc0.weight"].shape[1]) - (w_dim if c_dim else 0)
    layers = _layer_entries(sd)
    if not layers or sorted(layers) != list(range(len(layers))) or len(layers) < 4:
        raise CheckpointError(f"{source} has no complete set of synthesis layers L0 ... LN")
    num_layers = len(layers) - 1
    _, img_resolution, img_channels = layers[num_layers]
    first = layers[0][0]
    conv_kernel = int(sd[f"synthesis.{first}.weight"].shape[-1])
    down = sd.get(f"synthesis.{first}.down_filter")
    radial = down is not None and down.ndim == 2
    base = dict(
        img_resolution=img_resolution,
        z_dim=z_dim,
        w_dim=w_dim,
        c_dim=c_dim,
        img_channels=img_channels,
        conv_kernel=conv_kernel,
        use_radial_filters=radial,
        mapping_layers=mapping_layers,
        num_layers=num_layers,
    )
    try:
        probe = SG3Config(**base)
    except InputError as error:
        raise CheckpointError(f"{source}: {error}") from error
    channels = [layers[i][2] for i in range(num_layers)]
    cutoffs = np.asarray([spec.out_cutoff for spec in synthesis_schedule(probe)[1][:num_layers]])
    wanted = [layers[i][0] for i in range(num_layers + 1)]
    for channel_base in _channel_base_candidates(channels, cutoffs):
        cfg = SG3Config(**base, channel_base=channel_base, channel_max=max(channels))
        if [spec.name for spec in synthesis_schedule(cfg)[1]] == wanted:
            return cfg
    raise CheckpointError(
        f"{source}: the synthesis layers {name_list(wanted)} do not follow StyleGAN3's layer "
        "schedule for any channel_base; this generator has a non-standard architecture"
    )


def _prepare_transform(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a batched (PTI) or absent transform: the identity from the constructor is kept."""
    sd = dict(sd)
    transform = sd.get(TRANSFORM_KEY)
    if transform is not None and tuple(transform.shape) != (3, 3):
        del sd[TRANSFORM_KEY]
    if TRANSFORM_KEY not in sd:
        sd[TRANSFORM_KEY] = torch.eye(3)
    return sd


def generator_from_state_dict(
    sd: dict[str, torch.Tensor], prefix: str = "", source: str = "state dict"
) -> Generator:
    """Build a Generator from a flat StyleGAN3 state dict (keys under `prefix`, e.g. 'decoder.').

    The config is inferred (`infer_config`). `synthesis.input.transform` may be absent or
    batched [B, 3, 3] (PTI): then the identity is used. Every other tensor must match exactly.
    Returns the generator on the CPU in eval mode.
    """
    if prefix:
        sd = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        if not sd:
            raise CheckpointError(f"{source} has no tensors under the prefix {prefix!r}")
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: entries that are not tensors: {name_list(bad)}")
    sd = _prepare_transform(sd)
    G = Generator(infer_config(sd, source))
    load_state_dict_strict(G, sd, source, network=_NETWORK)
    return G.eval()


# ----------------------------------------------------------------------------- NVIDIA pickles


@dataclass
class PersistentRecord:
    """What NVIDIA's `_reconstruct_persistent_obj(meta)` would have built, as inert data.

    class_name: e.g. 'SynthesisLayer'; state: the object's __dict__ (torch Module internals,
    plain attributes, `_init_args` / `_init_kwargs`). The embedded module source is not kept.
    """

    class_name: str
    state: dict
    version: Any = None


def _reconstruct_persistent_record(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
        raise CheckpointError("malformed persistence record in the network pickle")
    return PersistentRecord(str(meta.get("class_name")), meta["state"], meta.get("version"))


class _EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict (a dict with attribute access); plain data."""


def _load_storage_from_bytes(blob: bytes):
    """torch.storage._load_from_bytes, but without running pickled code (weights_only)."""
    try:
        return torch.load(io.BytesIO(blob), weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"a tensor storage in the network pickle is unreadable: {error}"
        ) from error


def _numpy_functions() -> dict[str, Any]:
    """numpy's reconstruct helpers, looked up the same way on numpy 1.x and 2.x."""
    return {
        "_reconstruct": np.ndarray.__reduce__(np.zeros(1))[0],
        "scalar": np.float64(0).__reduce__()[0],
        "_frombuffer": np.zeros(1).__reduce_ex__(5)[0],
    }


def _allow_list() -> dict[tuple[str, str], Any]:
    """Every global a StyleGAN3 network pickle may name, mapped to what we give it instead."""
    numpy_fns = _numpy_functions()
    allowed: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_record,
        ("dnnlib.util", "EasyDict"): _EasyDict,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): (
            torch._utils._rebuild_parameter_with_state
        ),
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("_codecs", "encode"): _latin1_encode,  # protocol-2 pickles spell bytes this way
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    for module in ("numpy.core", "numpy._core"):
        allowed[(f"{module}.multiarray", "_reconstruct")] = numpy_fns["_reconstruct"]
        allowed[(f"{module}.multiarray", "scalar")] = numpy_fns["scalar"]
        allowed[(f"{module}.numeric", "_frombuffer")] = numpy_fns["_frombuffer"]
    return allowed


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding != "latin1":
        raise CheckpointError(f"unexpected text encoding {encoding!r} in the network pickle")
    return text.encode("latin1")


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str) -> None:
        super().__init__(file)
        self._allowed = _allow_list()
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed.get((module, name))
        if found is None:
            raise CheckpointError(
                f"{self._source} refers to '{module}.{name}', which is not part of a StyleGAN3 "
                "network pickle; ganvid refuses to load it (it could run code)"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError(f"{self._source} uses pickle persistent ids; not a network pickle")


def read_network_pickle(path: str | os.PathLike) -> Any:
    """Unpickle an NVIDIA network pickle with the allow-list; networks become PersistentRecords."""
    source = str(path)
    with open(path, "rb") as f:
        try:
            return _AllowListUnpickler(f, source).load()
        except CheckpointError:
            raise
        except Exception as error:
            raise CheckpointError(f"{source} is not a readable network pickle: {error}") from error


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers, EasyDicts -> dicts (recursively)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_GENERATOR_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
_MAPPING_KEYS = {"num_layers": "mapping_layers", "lr_multiplier": "mapping_lr_multiplier"}
_NVIDIA_LAYER_DEFAULT_BETA = 0.999  # SynthesisLayer's default when train.py did not pass one


def config_from_init_kwargs(init_args: tuple, init_kwargs: dict, source: str) -> SG3Config:
    """SG3Config from NVIDIA Generator constructor arguments (numpy scalars allowed)."""
    kwargs = _plain(dict(init_kwargs))
    for name, value in zip(_GENERATOR_POSITIONAL, init_args, strict=False):
        kwargs[name] = _plain(value)
    mapping = kwargs.pop("mapping_kwargs", None) or {}
    kwargs.setdefault("magnitude_ema_beta", _NVIDIA_LAYER_DEFAULT_BETA)
    for key, value in mapping.items():
        kwargs[_MAPPING_KEYS.get(key, key)] = value
    known = {f.name for f in fields(SG3Config)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise CheckpointError(
            f"{source}: generator arguments {unknown} are not StyleGAN3 (R/T) arguments"
        )
    try:
        return SG3Config(**kwargs)
    except (InputError, TypeError) as error:
        raise CheckpointError(f"{source}: unusable generator arguments: {error}") from error


def _record_tensors(record: PersistentRecord, prefix: str, out: dict[str, torch.Tensor]) -> None:
    """Collect parameters and non-None buffers of a record tree under dotted names."""
    state = record.state
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for name, value in (state.get("_parameters") or {}).items():
        if value is not None:
            out[prefix + name] = value.detach()
    for name, value in (state.get("_buffers") or {}).items():
        if value is not None and name not in skip:
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise CheckpointError(f"module {prefix + name} in the network pickle is not a record")
        _record_tensors(child, f"{prefix}{name}.", out)


def _check_sg3_record(record: Any, which: str, source: str) -> PersistentRecord:
    if not isinstance(record, PersistentRecord) or record.class_name != "Generator":
        found = getattr(record, "class_name", type(record).__name__)
        raise CheckpointError(f"{source}: '{which}' is a {found}, not a Generator")
    synthesis = (record.state.get("_modules") or {}).get("synthesis")
    has_input = isinstance(synthesis, PersistentRecord) and "input" in (
        synthesis.state.get("_modules") or {}
    )
    if not has_input:
        raise CheckpointError(
            f"{source}: '{which}' has no Fourier-feature input; it is not a StyleGAN3 generator "
            "(StyleGAN2 pickles are not supported here)"
        )
    return record


def _check_derived(G: Generator, record: PersistentRecord, source: str) -> None:
    """Compare the paddings and resampling factors stored in the pickle with ours."""
    layers = record.state["_modules"]["synthesis"].state.get("_modules") or {}
    for name in G.synthesis.layer_names:
        state = layers[name].state if isinstance(layers.get(name), PersistentRecord) else {}
        spec = getattr(G.synthesis, name).spec
        for attr in ("padding", "up_factor", "down_factor"):
            if attr not in state:
                continue
            stored = _plain(state[attr])
            stored = [int(v) for v in stored] if attr == "padding" else int(stored)
            ours = list(spec.padding) if attr == "padding" else getattr(spec, attr)
            if stored != ours:
                raise CheckpointError(
                    f"{source}: layer {name} has {attr}={stored} but ganvid computes {ours}; "
                    "this generator variant is not supported"
                )


def generator_from_network_pickle(data: Any, which: str, source: str) -> Generator:
    """Rebuild a Generator from an unpickled NVIDIA network pickle (dict of records)."""
    if isinstance(data, dict):
        if which not in data:
            raise CheckpointError(
                f"{source} has no '{which}' network; it holds {sorted(map(str, data))}"
            )
        data = data[which]
    record = _check_sg3_record(data, which, source)
    init_args = tuple(record.state.get("_init_args") or ())
    init_kwargs = record.state.get("_init_kwargs") or {}
    G = Generator(config_from_init_kwargs(init_args, init_kwargs, source))
    sd: dict[str, torch.Tensor] = {}
    _record_tensors(record, "", sd)
    load_state_dict_strict(G, sd, source, network=_NETWORK)
    _check_derived(G, record, source)
    return G.eval()


# ----------------------------------------------------------------------------- ours, dispatch


def save_generator(G: Generator, path: str | os.PathLike) -> None:
    """Write G atomically in ganvid's format: config + state dict (loads with weights_only)."""
    path = Path(path)
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": G.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in G.state_dict().items()},
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())


def _generator_from_ours(payload: dict, source: str) -> Generator:
    if payload.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{source} is ganvid format version {payload.get('version')}; this ganvid reads "
            f"version {FORMAT_VERSION} (update ganvid)"
        )
    try:
        config = SG3Config.from_dict(payload["config"])
    except (InputError, TypeError, KeyError) as error:
        raise CheckpointError(f"{source}: bad generator config: {error}") from error
    G = Generator(config)
    load_state_dict_strict(G, payload.get("state_dict") or {}, source, network=_NETWORK)
    return G.eval()


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(14)
    if head.startswith(b"PK\x03\x04"):
        return "torch"
    legacy = head[:4] == b"\x80\x02\x8a\x0a" and len(head) == 14
    if legacy and int.from_bytes(head[4:14], "little") == _TORCH_LEGACY_MAGIC:
        return "torch"
    if head[:1] == b"\x80":
        return "pickle"
    raise CheckpointError(f"{path} is neither a network pickle nor a PyTorch checkpoint")


def _generator_from_torch_object(obj: Any, source: str) -> Generator:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{source} holds a {type(obj).__name__}, not a generator")
    if obj.get("format") == FORMAT_NAME:
        return _generator_from_ours(obj, source)
    if "mapping.w_avg" in obj:
        return generator_from_state_dict(obj, source=source)
    nested = obj.get("state_dict")
    if isinstance(nested, dict) and "decoder.mapping.w_avg" in nested:
        return generator_from_state_dict(nested, prefix="decoder.", source=source)
    keys = name_list(sorted(map(str, obj)))
    raise CheckpointError(f"{source} is not a StyleGAN3 generator checkpoint (keys: {keys})")


def load_generator(
    path: str | os.PathLike, which: str = "G_ema", device: str | torch.device = "cpu"
) -> Generator:
    """Load a StyleGAN3 generator from any supported file (see the module doc) onto `device`.

    which: the network to take from an NVIDIA pickle ('G_ema' for inference, 'G' on request);
    ignored by the other formats. Returns the generator in eval mode.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"generator file not found: {path}")
    if _sniff(path) == "pickle":
        G = generator_from_network_pickle(read_network_pickle(path), which, str(path))
    else:
        # ReStyle files keep pathlib objects in `opts`: the shared loader allows exactly those.
        G = _generator_from_torch_object(safe_torch_load(path), str(path))
    return G.to(device)
