"""Reading a profile: the YAML file (duplicate keys refused), its `extends` chain merged section by section, the
overrides of a notebook run (`{"cpt.lr": 3e-4}`) and the run name they write under, and a validation error turned
into one message that names the file, the key and the fix."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from cptlib.config.schema import ConfigError, MergeSpec, Profile, check_run_name
from cptlib.core import paths


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping: PyYAML keeps the last silently, so a second `cpt:` section
    added at the end of a copied profile would drop the first one's keys."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one section (YAML would keep only the last): merge "
                    "them into one", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        known = sorted(p.stem for p in paths.PARAMS_DIR.glob("*.yaml"))
        hint = (f" (a path is read from the current folder; the shipped profile is `{path.stem}`, without .yaml)"
                if path.stem in known and path.resolve() != paths.params_file(path.stem).resolve() else "")
        if path.suffix == ".yaml" and path.with_suffix(".yml").is_file():
            hint = f" ({path.with_suffix('.yml').name} is there: a profile's file ends in .yaml; rename it {path.name})"
        raise ConfigError(f"profile file {path} does not exist{hint}; known profiles: {known}")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeys)
    except yaml.YAMLError as err:  # one line: the file, where, and what (PyYAML's message spans five)
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        hint = " (YAML indents with spaces, not tabs)" if "'\\t'" in what else ""
        raise ConfigError(f"{path}:{where} not valid YAML: {what}{hint}") from None
    if data is None:
        raise ConfigError(f"{path} is empty: a profile sets its keys, or starts with `extends: default`")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile is a mapping of keys to values, got {type(data).__name__}")
    return data


def _profile_path(source: str | Path) -> Path:
    return (Path(source) if str(source).endswith((".yaml", ".yml")) else paths.params_file(str(source))).resolve()


def _chain(source: str | Path) -> list[tuple[Path, dict]]:
    """The profile's file and those it `extends`, child first, each with its YAML: a cycle or a missing parent is
    one error that names the child."""
    chain: list[tuple[Path, dict]] = []
    while source is not None:
        path = _profile_path(source)
        if any(path == p for p, _ in chain):
            raise ConfigError(f"{path}: 'extends' forms a cycle: {' -> '.join(p.stem for p in (*[p for p, _ in chain], path))}")
        if chain and not path.is_file():
            known = sorted(p.stem for p in paths.PARAMS_DIR.glob("*.yaml"))
            raise ConfigError(f"{chain[-1][0]}: extends {source!r}, but profile file {path} does not exist; known "
                              f"profiles: {known}")
        data = _read_yaml(path)
        chain.append((path, data))
        source = data.get("extends")
        if isinstance(source, str) and source.endswith((".yaml", ".yml")) and not Path(source).is_absolute():
            source = str(path.parent / source)  # beside the profile that names it, wherever the command runs
    return chain


def profile_files(source: str | Path) -> list[Path]:
    """The files a profile is made of (itself, then what it extends): what `make` reruns the notebooks for."""
    return [path for path, _ in _chain(source)]


def resolve(source: str | Path) -> tuple[dict, Path]:
    """The raw profile dict with `extends` applied, and the file it came from."""
    chain = _chain(source)
    data: dict = {}
    for depth, (path, raw) in enumerate(reversed(chain)):  # the root first, each child's keys over its parent's
        own = {k: v for k, v in raw.items() if k != "extends"}
        own.setdefault("name", path.stem)
        if depth:
            data.pop("name", None)
            data.pop("description", None)
        data = _merge(data, own)
    return data, chain[0][0]


def _tagged(annotation, tag) -> type[BaseModel] | None:
    """The member of a tagged union (Annotated[Union[Annotated[X, Tag(t)], ...], Discriminator]) whose tag is `tag`."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    for member in get_args(annotation):
        if get_origin(member) is Annotated and any(getattr(m, "tag", None) == tag for m in get_args(member)[1:]):
            return get_args(member)[0]
    return None


def _walk(loc: tuple) -> tuple[Any, list]:
    """The section that holds the last key of a validation error's location, and the location as a profile writes
    it (without the tags pydantic adds inside a tagged union, e.g. the method of a study.merges entry)."""
    section, shown = Profile, []
    for i, part in enumerate(loc):
        if isinstance(part, int):  # an item of a list of sections
            section = (get_args(section) or (section,))[0]
            shown.append(part)
            continue
        member = None if isinstance(section, type) and issubclass(section, BaseModel) else _tagged(section, part)
        if member is not None:
            section = member
            continue
        shown.append(part)
        if i < len(loc) - 1:
            section = section.model_fields[str(part)].annotation
            # An optional section (`X | None`): its fields are X's.
            section = next((a for a in getattr(section, "__args__", ()) if isinstance(a, type)
                            and issubclass(a, BaseModel)), section)
    return section, shown


def _explain(err: ValidationError, path: Path) -> str:
    lines = []
    for e in err.errors():
        section, shown = _walk(e["loc"])
        key = ".".join(map(str, shown))
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(e["loc"][-1]), list(section.model_fields), n=1)
            hint = f" (did you mean {'.'.join([*map(str, shown[:-1]), close[0]])!r}?)" if close else ""
            if not close and issubclass(section, MergeSpec):
                own = [f for f in section.model_fields if f != "method"]
                hint = f" (merge method {section.model_fields['method'].default!r} takes {', '.join(own) or 'no parameters'})"
            lines.append(f"unknown key {key!r}{hint}")
        elif e["type"] == "value_error":  # a validator's own message already names keys and values
            lines.append(f"{key + ': ' if key else ''}{e['msg'].removeprefix('Value error, ')}")
        elif e["type"] == "union_tag_invalid":  # e.g. a merge method that does not exist
            lines.append(f"{key}: {e['ctx']['tag']!r} is not one of {e['ctx']['expected_tags']}")
        elif e["type"] == "union_tag_not_found":
            lines.append(f"{key}: expected a section (e.g. `method: ties` and its keys), got {e.get('input')!r}")
        else:
            lines.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
    return f"{path}: " + "; ".join(lines)


def from_dict(data: dict[str, Any], source: str | Path = "<dict>") -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_explain(err, Path(source))) from None


def load_profile(source: str | Path) -> Profile:
    """Load `params/<name>.yaml` (or a YAML path), apply `extends`, validate."""
    data, path = resolve(source)
    return from_dict(data, path)


def expand_overrides(overrides: dict[str, Any]) -> dict:
    """{"cpt.lr": 3e-4, "study": {"alphas": [1.0]}} -> nested dicts, for merging over a profile."""
    nested: dict = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override key {key!r}: use a profile key, dotted for a section (e.g. 'cpt.lr')")
        *sections, last = key.split(".")
        node = nested
        for part in sections:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override key {key!r}: {part!r} is set to a value and used as a section")
        node[last] = _merge(node[last], value) if isinstance(value, dict) and isinstance(node.get(last), dict) else value
    return nested


# A run's name is a folder under build/ and figures/: one plain word, so that it stays inside them (`../x` would not)
# and make can name it; build/stages/ holds every profile's content-addressed stages.
def load_with_overrides(source: str | Path, overrides: dict[str, Any] | None = None,
                        run_name: str | None = None) -> Profile:
    """A profile with `overrides` merged over it, validated. A run that differs from the profile file gets its own
    name (`run_name`, default `<profile>-<hash of the overrides>`), so its stages' tables, notebooks and figures
    never land in the profile's folders; `run_name` may not be another profile's name."""
    data, path = resolve(source)
    overrides = dict(overrides or {})
    nested = expand_overrides(overrides)
    if "name" in nested or "extends" in nested:
        raise ConfigError("overrides may not set 'name' or 'extends': pass run_name, or another profile")
    own = data["name"]
    if run_name is not None:
        try:
            check_run_name(run_name)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    if overrides and run_name == own:
        raise ConfigError(f"run name {own!r} is the profile's own name: a run with overrides must not write into the "
                          f"profile's folders (build/{own}/, figures/{own}/); choose another run_name, or none for "
                          f"{own}-<hash of the overrides>")
    if overrides:
        from cptlib.core.files import hash_json

        data = _merge(data, nested)
        data["name"] = run_name or f"{own}-{hash_json(overrides)[:8]}"
    elif run_name:
        data["name"] = run_name
    if data["name"] != own:
        data.setdefault("release", own)  # the released ancestors stay the profile's
    if data["name"] != path.stem or path.parent != paths.PARAMS_DIR.resolve():
        if paths.params_file(data["name"]).is_file():
            raise ConfigError(f"run name {data['name']!r} is the name of the profile params/{data['name']}.yaml; a run "
                              "with other parameters must not write into its folders: choose another run_name")
    return from_dict(data, f"{path} with overrides {overrides}" if overrides else path)
