"""Real models and datasets named by hub id or local path, resolved to local files before any training.

    path = resolve_model("Qwen/Qwen2-0.5B")          # the cached snapshot, downloading it if the hub answers
    path = resolve_model("/data/models/qwen2-0.5b")  # a local directory in the hub's layout
    check_dataset(profile.cpt_data)                  # cached or reachable, else an error naming it

The cache is looked up first (local_files_only), so a pre-downloaded model costs no request. Where the hub
cannot be reached (HF_HUB_OFFLINE=1, no network, a proxy that never answers) the error comes within the probe's
timeout (HUB_PROBE_TIMEOUT_S), names the id and says how to pre-download it or point to a
local copy -- never after minutes of retries, never after a training stage has started.
"""
from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

from cptlib.core import paths
from cptlib.config import CPTDataConfig
from cptlib.core.errors import InputError, MissingInputError

# What a causal LM needs (weights, configs, tokenizer, chat template), not the .bin/.pth/.gguf duplicates.
MODEL_FILES = ["*.json", "*.safetensors", "*.jinja", "tokenizer*", "*.txt", "*.model", "*.tiktoken"]
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")


HUB_PROBE_TIMEOUT_S = 3.0


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """False in offline mode or when the hub gives no HTTP answer (any status) within `timeout` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}:
        return False
    answered = []

    def probe():
        # An HTTP request, not a bare TCP connect: a sandbox's transparent proxy accepts any connection.
        request = urllib.request.Request(os.environ.get("HF_ENDPOINT", "https://huggingface.co"), method="HEAD")
        try:
            urllib.request.urlopen(request, timeout=timeout).close()
            answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)
        except (OSError, ValueError):
            pass

    # In a thread: the socket timeout does not cover the name lookup, which can hang without a DNS server.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)


def go_offline() -> None:
    """Offline mode for this process and its children: no hub requests, no retries; the cache serves."""
    import datasets
    import huggingface_hub.constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    datasets.config.HF_HUB_OFFLINE = True
    huggingface_hub.constants.HF_HUB_OFFLINE = True


class HubUnavailableError(MissingInputError):
    """A model or dataset is neither local nor cached, and the hub cannot be reached."""


def local_path(source: str) -> Path | None:
    """The folder `source` names, or None for a hub id. Only "/", "~", "./" and "../" make a path ("org/name" is
    an id even if such a folder exists); "./" and "../" are relative to the repository root, not the cwd."""
    if source.startswith(("/", "~")):
        return Path(source).expanduser().resolve()
    if source.startswith(("./", "../")):
        return (paths.REPO_ROOT / source).resolve()
    return None


def _is_path(source: str) -> bool:
    return local_path(source) is not None


def _hub_cache() -> str:
    import huggingface_hub.constants

    return huggingface_hub.constants.HF_HUB_CACHE


def resolve_model(source: str, revision: str | None = None) -> Path:
    """A local model directory for `source` (a directory, or a hub id found in the cache or downloaded)."""
    if _is_path(source):
        path = local_path(source)
        if not (path / "config.json").is_file():
            raise MissingInputError(f"model directory {path} has no config.json; point the profile's models: entry "
                                    "to a folder saved with save_pretrained (or downloaded with `hf download`)")
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(source, revision=revision, allow_patterns=MODEL_FILES, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    if not hub_reachable():
        raise HubUnavailableError(unavailable_message(source, revision))
    return Path(snapshot_download(source, revision=revision, allow_patterns=MODEL_FILES))


def unavailable_message(source: str, revision: str | None) -> str:
    rev = f" --revision {revision}" if revision else ""
    return (f"model {source!r} is not in the Hugging Face cache ({_hub_cache()}) and the hub is unreachable "
            f"(offline mode or no network). Pre-download it on a machine with hub access and the same HF_HOME "
            f"(HF_HOME={os.environ.get('HF_HOME')}): `hf download {source}{rev} --include "
            + " ".join(repr(p) for p in MODEL_FILES)
            + "` (then copy HF_HOME here), or set the profile's models: entry to a local directory holding its "
            "config.json, *.safetensors and tokenizer files")


def local_data_files(folder: Path) -> list[Path]:
    files = sorted(f for f in Path(folder).rglob("*") if f.is_file() and f.name.endswith(DATA_SUFFIXES))
    if not files:
        raise MissingInputError(f"cpt_data.source {folder} holds no {'/'.join(DATA_SUFFIXES)} files")
    if len({"parquet" if f.suffix == ".parquet" else "json" for f in files}) > 1:
        raise InputError(f"cpt_data.source {folder} mixes JSON and Parquet files; keep one format per folder")
    return files


def check_dataset(cfg: CPTDataConfig) -> None:
    """A hub dataset must be cached or the hub reachable; a local folder must hold data files."""
    if _is_path(cfg.source):
        local_data_files(local_path(cfg.source))
        return
    if hub_reachable():
        return
    go_offline()
    import datasets

    try:
        datasets.load_dataset_builder(cfg.source, cfg.config_name, revision=cfg.revision)
    except (OSError, ValueError) as err:  # datasets: ConnectionError, FileNotFoundError (not cached) or ValueError
        args = ", ".join(repr(a) for a in (cfg.source, cfg.config_name) if a)
        raise HubUnavailableError(
            f"CPT dataset {cfg.source!r}" + (f" (config {cfg.config_name!r})" if cfg.config_name else "")
            + f" is not in the local cache ({datasets.config.HF_DATASETS_CACHE}) and the Hugging Face hub is "
            f"unreachable ({type(err).__name__}). Pre-download it on a machine with hub access and the same HF_HOME: "
            f"`python -c \"import datasets; datasets.load_dataset({args}, split={cfg.split!r})\"` (then copy HF_HOME "
            f"here), or export it to JSONL/Parquet files in a folder and set cpt_data.source to that folder"
        ) from None
