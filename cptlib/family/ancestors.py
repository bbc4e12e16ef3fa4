"""The released testbed ancestors: trained once, shipped in `models/<profile>/`, resolved by the study.

    make ancestors PROFILE=default        # = cptlib ancestors build --profile default (train, then export)
    family = released_family(profile)     # what build_family returns when profile.released_ancestors is set

A model developer releases a base and an instruct model; the paper's authors downloaded them. The testbed does
the same: `build` trains the members a developer releases (base_v1, base_v2, instruct_v1, instruct_v2,
other_family, other_instruct, and base + instruct of every other size of `model.sizes`) through the ordinary
content-addressed stages, and exports each into `models/<profile>/<member>/`: the `save_pretrained` files and
`release.json` (sha256 of every file, the recipe, the data it was trained on, tokens, wall time, drift, and the
commit, command and CPU that built it). The study then resolves them through the same path as a real profile's
released checkpoints (`cptlib.family.released.resolved_member`), after checking every hash and that the profile's recipe
and training data are the ones the release was built from. Anything else is one error naming the file and the
command that rebuilds it: a missing or altered ancestor is never retrained silently.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from cptlib.core import paths
from cptlib.core.errors import MissingInputError
from cptlib.config import Profile, stable_dict
from cptlib.family import MEMBERS
from cptlib.presets import PRESETS
from cptlib.core.files import atomic_dir, hash_file, write_json_atomic
from cptlib.core.provenance import provenance
from cptlib.core.stages import read_manifest
from cptlib.members import Member

RELEASE = "release.json"
# The testbed files an ancestor is trained on; a change in any of them means a new release.
TRAINING_FILES = ("corpus_a1.jsonl", "corpus_a2.jsonl", "sft_v1.jsonl", "sft_v2.jsonl")
# Files a member folder ships (a `save_pretrained` directory with its tokenizer); anything else is not released.
SHIPPED = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
           "special_tokens_map.json", "chat_template.jinja")
# Stage manifest fields copied into release.json: what a reader of a release wants to know.
RECORDED = ("kind", "key", "tokens", "steps", "examples", "trained_tokens_per_epoch", "final_loss", "n_params",
            "wall_seconds", "train_seconds", "drift", "resumed_from", "reused_from")


class AncestorError(MissingInputError):
    """A released ancestor is missing, altered, or was built from another recipe; the message says how to fix it."""


def storage(profile: Profile, member: str) -> str:
    """How `member` is stored in the release: the ladder's other sizes as `ladder_storage` says, the rest fp32."""
    return profile.ladder_storage if member.startswith("sizes/") else "float32"


def _store_bfloat16(folder: Path) -> None:
    """Rewrite a member folder's weights in bf16 (its floating tensors) and say so in its config.json. Round to
    nearest even, so the same fp32 stage gives the same bytes on every machine; idempotent."""
    import torch
    from safetensors.torch import load_file, save_file

    weights = folder / "model.safetensors"
    tensors = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config["dtype"] = "bfloat16"
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _drop_generation_cap(config: Path) -> None:
    """A released checkpoint carries no `max_new_tokens`: in transformers it would override the evaluator's cap
    (lm-eval's `max_gen_toks`), so lm-eval's own CLI would cut answers where cptlib does not. Stages trained before
    train.py stopped writing one still hold it; the release drops it (weights and everything else unchanged)."""
    if config.is_file():
        fields = json.loads(config.read_text())
        if fields.pop("max_new_tokens", None) is not None:
            config.write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n")


def release_dir(profile: Profile) -> Path:
    return paths.MODELS_DIR / (profile.release or profile.name)


def size_member(size: str, role: str) -> str:
    """The release folder of a ladder size's member: `sizes/<size>/<role>` (role base_v1 or instruct_v1)."""
    return f"sizes/{size}/{role}"


# The members every seed of a paired release has: the family C1-C4 use, and N1's other family (a whole extra
# pre-training per seed; a release made before issue 48 has it for the first seed only, and the study then runs N1 on
# that seed). The other sizes come from the first training seed only.
SEED_MEMBERS = (Member.BASE_V1, Member.BASE_V2, Member.INSTRUCT_V1, Member.INSTRUCT_V2)
OTHER_MEMBERS = (Member.OTHER_FAMILY, Member.OTHER_INSTRUCT)


def paired(profile: Profile) -> bool:
    """A release with one family per training seed (`base_seed` and `instruct_seed` null): study seed s pairs
    ancestor seed s with CPT seed s, so that every interval samples the ancestors too."""
    return profile.base_seed is None and profile.instruct_seed is None


def seed_member(profile: Profile, seed: int, member: str) -> str:
    """The release folder of a training seed's member: the first seed's (and a shared release's) at the top,
    `seeds/<seed>/<member>` for the other seeds of a paired release."""
    if not paired(profile) or seed == profile.train_seeds[0]:
        return member
    if seed not in profile.train_seeds:
        raise AncestorError(f"training seed {seed} has no released ancestors: profile {profile.name!r} releases one "
                            f"family per training seed {profile.train_seeds}; add {seed} to train_seeds and run "
                            f"`make ancestors PROFILE={profile.release or profile.name}`")
    if member not in SEED_MEMBERS + OTHER_MEMBERS:
        raise AncestorError(f"{member} is released for the first training seed only ({profile.train_seeds[0]}), not "
                            f"for seed {seed}: the members of every seed are {', '.join(SEED_MEMBERS + OTHER_MEMBERS)}")
    return f"seeds/{seed}/{member}"


def member_names(profile: Profile) -> list[str]:
    """The released members: the family (of the first training seed), then, for a paired release, the
    `seeds/<seed>/...` members of every other seed, then `sizes/<size>/base_v1` and `.../instruct_v1` per other size."""
    other_sizes = [s for s in dict.fromkeys(profile.model.sizes) if s != profile.model.size]
    seeds = ([seed_member(profile, s, m) for s in profile.train_seeds[1:] for m in SEED_MEMBERS + OTHER_MEMBERS]
             if paired(profile) else [])
    return list(MEMBERS) + seeds + [size_member(s, m) for s in other_sizes for m in (Member.BASE_V1, Member.INSTRUCT_V1)]


def recipe(profile: Profile) -> dict:
    """What the ancestors depend on, besides their data: the training sections and the numerics."""
    from cptlib.training.train import runtime_spec

    sizes = {s: vars(PRESETS[s]) for s in dict.fromkeys([profile.model.size, *profile.model.sizes])}
    seeds = {"ancestor_seeds": list(profile.train_seeds)} if paired(profile) else {}
    return {"world_seed": profile.world_seed, "base_seed": profile.base_seed, "instruct_seed": profile.instruct_seed, **seeds,
            "tokenizer": stable_dict(profile.tokenizer), "model": {**stable_dict(profile.model), "presets": sizes},
            "pretrain": stable_dict(profile.pretrain), "pretrain_v2": stable_dict(profile.pretrain_v2),
            "sft": stable_dict(profile.sft), "sft_v2": stable_dict(profile.sft_v2), "runtime": runtime_spec(profile)}


def training_data(data: Path) -> dict[str, str]:
    """sha256 of the testbed files the ancestors are trained on, from the testbed stage's manifest."""
    files = read_manifest(data)["manifest"]["files"]
    return {name: files[name]["sha256"] for name in TRAINING_FILES}


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}")
    return out


def _rebuild_hint(profile: Profile) -> str:
    hint = (f"rebuild them with `make ancestors PROFILE={profile.release or profile.name}` (trains every member: see "
            "docs/ancestors.md for the time), or set `released_ancestors: false` in the profile to train them inside "
            "the study")
    others = sorted(p.parent.name for p in paths.MODELS_DIR.glob(f"*/{RELEASE}") if p.parent.name != profile.name)
    if profile.release is None and others and not (paths.MODELS_DIR / profile.name).exists():
        want = recipe(profile)
        same = [o for o in others if json.loads((paths.MODELS_DIR / o / RELEASE).read_text()).get("recipe") == want]
        if same:  # a copy of a shipped profile, or one that `extends:` it and changes only the study
            return (f"its recipe is the one models/{same[0]}/ was released from: add `release: {same[0]}` to the "
                    f"profile (a profile's release is its own name unless it names one); or {hint}")
        # A profile of one's own that `extends:` a released one has no release of its own until it names one.
        return (f"to use another profile's ancestors, name its release in the profile (`release: {others[0]}`; "
                f"released here: {', '.join(others)}; a recipe they were not built with is refused, naming what "
                f"differs); or {hint}")
    return hint


# --- building a release -------------------------------------------------------------------------------------

def reuse_release(profile: Profile) -> list[str]:
    """Put every committed member whose files verify back into `build/stages/` as the finished stage its
    release.json records, so that `train_members` retrains only the members whose stage spec changed (a new SFT
    mix retrains the instruct models, not the bases). A member is reused only under the key its recorded spec
    hashes to: the stage is exactly the one a from-scratch build would reuse. Its manifest says where it came
    from (`reused_from`), and the export copies that into the new release.json. Returns the members reused."""
    from cptlib.core.stages import MANIFEST, is_finished, stage_key

    root, reused, stage_of = release_dir(profile), [], {}
    for member in member_names(profile):
        if not (root / member / RELEASE).is_file():
            continue
        release = json.loads((root / member / RELEASE).read_text())
        trained, spec = release["trained"], release["stage_spec"]
        if stage_key(trained["kind"], spec) != trained["key"]:  # written under another STAGE_VERSION
            continue
        stage_of[member] = final = paths.stages_dir() / f"{trained['kind']}-{trained['key']}"
        if is_finished(final):
            continue
        _check_files(profile, root / member, release)
        with atomic_dir(final) as tmp:
            for name in release["files"]:
                shutil.copyfile(root / member / name, tmp / name)
            parent = stage_of.get(release["parent"]) if release["parent"] else None
            write_json_atomic(tmp / MANIFEST, {
                **trained, "spec": spec, "parent": str(parent) if parent else None, "stage_seconds": 0.0,
                "attempts": [], "provenance": release["built"],
                "reused_from": {"release": paths.shown(root / member), "built": release["built"], "date": release["date"]}})
        reused.append(member)
    return reused


def train_members(profile: Profile) -> tuple[Path, dict[str, Path]]:
    """Train (or reuse) every member to release through the stages; returns (testbed data, {member: stage})."""
    from cptlib.family import build as fam

    seed = profile.train_seeds[0] if paired(profile) else profile.base_seed
    members = fam.train_family(profile, seed)
    data = members.pop("data")
    members.pop("tokenizer")
    for other in profile.train_seeds[1:] if paired(profile) else []:
        family = fam.train_family(profile, other)
        members.update({seed_member(profile, other, m): family[m] for m in SEED_MEMBERS + OTHER_MEMBERS})
    for size in dict.fromkeys(profile.model.sizes):
        if size != profile.model.size:
            base, inst = fam.train_size(profile, size, seed)
            members[size_member(size, Member.BASE_V1)], members[size_member(size, Member.INSTRUCT_V1)] = base, inst
    return data, members


def export(profile: Profile, data: Path, stages: dict[str, Path], command: str) -> Path:
    """Write `models/<profile>/` from trained stages: each member's files and release.json, and an index; a member
    of an earlier release that this one lacks is removed. Each member folder is written beside its final place and renamed, so an interrupted export leaves the old
    release or the new one, never a mix within a member."""
    root = release_dir(profile)
    root.mkdir(parents=True, exist_ok=True)
    common = {"profile": profile.name, "recipe": recipe(profile), "training_data": training_data(data),
              "command": command, "built": provenance(), "date": time.strftime("%Y-%m-%d")}
    index = {}
    for member, stage in stages.items():
        missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (stage / f).is_file()]
        if missing:
            raise AncestorError(f"stage {stage} lacks {missing}: not a trained model directory")
        with atomic_dir(root / member, replace=True) as tmp:
            shipped = [name for name in SHIPPED if (stage / name).is_file()]
            for name in shipped:
                shutil.copyfile(stage / name, tmp / name)
            _drop_generation_cap(tmp / "generation_config.json")
            if storage(profile, member) == "bfloat16":
                _store_bfloat16(tmp)
            files = {name: {"sha256": hash_file(tmp / name), "bytes": (tmp / name).stat().st_size} for name in shipped}
            m = read_manifest(stage)
            stage_fields = {k: m[k] for k in RECORDED if k in m}
            parent = next((p for p, s in stages.items() if m.get("parent") and Path(m["parent"]) == s), None)
            write_json_atomic(tmp / RELEASE, {"member": member, "parent": parent, "files": files,
                                              "storage": storage(profile, member), "trained": stage_fields,
                                              "stage_spec": m["spec"], **common})
        index[member] = {"sha256": files["model.safetensors"]["sha256"], "n_params": m.get("n_params"),
                         "wall_seconds": m.get("wall_seconds"), "parent": parent}
    for stale in sorted({f.parent for f in root.rglob(RELEASE)} - {root} - {root / m for m in stages}, reverse=True):
        shutil.rmtree(stale)  # a member the new release does not have (a size or a seed dropped from the profile)
    for folder in sorted((d for d in root.rglob("*") if d.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    write_json_atomic(root / RELEASE, {**common, "members": index,
                                       "bytes": sum(f.stat().st_size for f in root.rglob("*") if f.is_file())})
    return root


# --- resolving a release ------------------------------------------------------------------------------------

def _where(folder: Path) -> Path:
    """A release folder as messages name it (`git checkout -- <it>` works from the repository root)."""
    return folder.relative_to(paths.REPO_ROOT) if folder.is_relative_to(paths.REPO_ROOT) else folder


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=10,
                              check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def _restore_hint(profile: Profile, folder: Path) -> str:
    """How to get a committed member back: `git checkout --` of exactly the files git sees changed or deleted in it
    (an edited release.json is named, not the weights it no longer matches), else of the folder; for a release git
    does not hold, the rebuild."""
    where = _where(folder)
    if not _git("ls-files", "--", str(where)):
        return _rebuild_hint(profile)
    changed = [line[3:] for line in (_git("status", "--porcelain", "--", str(where)) or "").splitlines()]
    return f"restore it with `git checkout -- {' '.join(changed) or where}` (the committed release), or {_rebuild_hint(profile)}"


def _check_files(profile: Profile, folder: Path, release: dict) -> None:
    """Every file release.json lists is there with its recorded size and sha256."""
    where = _where(folder)
    for name, rec in release["files"].items():
        path = folder / name
        if not path.is_file():
            raise AncestorError(f"released ancestor file {where / name} is missing; {_restore_hint(profile, folder)}")
        if path.stat().st_size != rec["bytes"] or hash_file(path) != rec["sha256"]:
            raise AncestorError(f"released ancestor file {where / name} does not match the sha256 in {where / RELEASE}"
                                f" (one of them altered or truncated); {_restore_hint(profile, folder)}")


def check_release(profile: Profile) -> None:
    """The profile's release folder exists: a profile of one's own names the fix in a second, before any notebook."""
    folder = release_dir(profile)
    if not (folder / RELEASE).is_file():
        raise AncestorError(f"profile {profile.name!r} starts from released ancestors (released_ancestors: true), but "
                            f"{_where(folder)}/ holds no release ({RELEASE}); {_restore_hint(profile, folder)}")


def verify(profile: Profile, member: str, data: Path | None = None) -> dict:
    """The member's release.json, after checking that its folder exists, that every file has its recorded hash,
    and (with `data`, the testbed stage) that the profile's recipe and training data are the release's."""
    folder = release_dir(profile) / member
    where = _where(folder)
    if not (folder / RELEASE).is_file():
        raise AncestorError(f"released ancestor {where} is missing (no {RELEASE}); {_restore_hint(profile, folder)}")
    release = json.loads((folder / RELEASE).read_text())
    _check_files(profile, folder, release)
    differs = _differences(release["recipe"], recipe(profile))
    if release.get("storage", "float32") != storage(profile, member):
        differs.append(f"storage ({release.get('storage', 'float32')} released, {storage(profile, member)} asked: "
                       "ladder_storage)")
    if data is not None:
        differs += [f"testbed file {n}" for n in _differences(release["training_data"], training_data(data))]
    if differs:
        raise AncestorError(f"the released ancestors in {where.parent} were built from another recipe than profile "
                            f"{profile.name!r} asks for (differs in: {', '.join(differs)}); {_rebuild_hint(profile)}")
    return release


def resolve(profile: Profile, member: str, data: Path) -> Path:
    """A `resolved` stage for a verified member, keyed by its files' hashes (as a real checkpoint is resolved)."""
    from cptlib.family.released import resolved_member

    release = verify(profile, member, data)
    version = {name: rec["sha256"] for name, rec in release["files"].items()}
    trained = release["trained"]
    record = {"released": {"member": member, "parent": release["parent"], "built": release["built"],
                           "command": release["command"], **trained},
              "drift": trained.get("drift"), "tokens": trained.get("tokens"), "wall_seconds": trained.get("wall_seconds")}
    # Named from the repository root, so that the stage key is the same in every clone.
    folder = release_dir(profile) / member
    return resolved_member(member.rsplit("/", 1)[-1], paths.shown(folder), version=version, record=record, copy=True)


def released_family(profile: Profile, other_family: bool = True, seed: int | None = None) -> dict[str, Path]:
    """The family as `build_family` returns it (data, tokenizer, members), from the release: training seed
    `seed`'s members for a paired release (the first seed's by default), the one family otherwise. Another seed's
    other family is there where the release has it (a release made before issue 48 has the first seed's only)."""
    from cptlib.family import build as fam

    data = fam.testbed_data(profile)
    seed = profile.train_seeds[0] if seed is None else seed
    first = not paired(profile) or seed == profile.train_seeds[0]
    other = other_family and (first or all((release_dir(profile) / seed_member(profile, seed, m) / RELEASE).is_file()
                                           for m in OTHER_MEMBERS))
    members = [m for m in fam.MEMBERS if other or m not in OTHER_MEMBERS]
    family = {m: resolve(profile, seed_member(profile, seed, m), data) for m in members}
    return {"data": data, "tokenizer": family[Member.BASE_V1], **family}


def released_size(profile: Profile, size: str) -> tuple[Path, Path]:
    """(base_v1, instruct_v1) of `size` from the release (the main size's are the family's own)."""
    from cptlib.family import build as fam

    data = fam.testbed_data(profile)
    roles = (Member.BASE_V1, Member.INSTRUCT_V1)
    names = roles if size == profile.model.size else tuple(size_member(size, r) for r in roles)
    return resolve(profile, names[0], data), resolve(profile, names[1], data)


def summary(profile: Profile) -> list[dict]:
    """One row per released member (for `cptlib ancestors check` and the docs)."""
    rows = []
    for member in member_names(profile):
        r = verify(profile, member)
        t = r["trained"]
        rows.append({"member": member, "parent": r["parent"], "n_params": t.get("n_params"), "tokens": t.get("tokens"),
                     "sft_examples": t.get("examples"), "drift": (t.get("drift") or {}).get("total"),
                     "wall_seconds": t.get("wall_seconds"), "mb": sum(f["bytes"] for f in r["files"].values()) / 1e6})
    return rows

