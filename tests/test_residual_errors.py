"""Every refusal of the residual engine, with its message; a failed run leaves no output behind:
`.venv/bin/pytest tests/test_residual_errors.py`."""
from __future__ import annotations

import json

import pytest
import torch
from residual_helpers import write_model

from cptlib.residual import MergeMethod, ModuleFilter, Residual, ResidualError, apply, extract, restore
from cptlib.residual import merge as merge_module


def pair(tmp_path, base: dict, instruct: dict, **kw):
    return write_model(tmp_path / "base", base, **kw), write_model(tmp_path / "instruct", instruct, **kw)


def test_different_tensor_names(tmp_path):
    base, inst = pair(tmp_path, {"a.weight": torch.ones(2), "b.weight": torch.ones(2)},
                      {"a.weight": torch.ones(2), "c.weight": torch.ones(2)})
    with pytest.raises(ResidualError, match=r"tensor names differ: only in base .*\['b.weight'\]; only in instruct .*\['c.weight'\]"):
        extract(base, inst, tmp_path / "r", progress=False)


def test_different_shapes_name_the_tensor_and_both_shapes(tmp_path):
    base, inst = pair(tmp_path, {"layers.0.w": torch.ones(2, 3)}, {"layers.0.w": torch.ones(3, 2)})
    with pytest.raises(ResidualError, match=r"tensor layers.0.w: shape \[2, 3\] in base .* but \[3, 2\] in instruct"):
        extract(base, inst, tmp_path / "r", progress=False)


def test_vocabulary_difference_is_an_error_by_default(tmp_path):
    base, inst = pair(tmp_path, {"model.embed_tokens.weight": torch.ones(4, 2)},
                      {"model.embed_tokens.weight": torch.ones(6, 2)})
    with pytest.raises(ResidualError, match=r"tensor model.embed_tokens.weight: 4 vocabulary rows in base .* but 6 "
                                            r"in instruct .*shapes \[4, 2\] and \[6, 2\].*--embed-policy slice"):
        extract(base, inst, tmp_path / "r", progress=False)


def test_vocabulary_difference_against_the_target(tmp_path):
    base, inst = pair(tmp_path, {"lm_head.weight": torch.ones(4, 2)}, {"lm_head.weight": torch.ones(4, 2)})
    target = write_model(tmp_path / "t", {"lm_head.weight": torch.ones(5, 2)})
    with pytest.raises(ResidualError, match=r"tensor lm_head.weight: 4 vocabulary rows in residual but 5 in target"):
        restore(base, inst, target, tmp_path / "o", progress=False)


def test_tied_and_untied_embeddings_do_not_mix(tmp_path):
    embed = {"model.embed_tokens.weight": torch.ones(4, 2)}
    untied = {**embed, "lm_head.weight": torch.ones(4, 2)}
    base, inst = pair(tmp_path, embed, embed)
    target = write_model(tmp_path / "t", untied)
    with pytest.raises(ResidualError, match=r"untied embeddings \(a separate lm_head.weight\) in target .* but tied ones in the residual's models"):
        restore(base, inst, target, tmp_path / "o", progress=False)
    with pytest.raises(ResidualError, match=r"untied embeddings \(a separate lm_head.weight\) in the residual's models but tied ones in target"):
        restore(target, target, base, tmp_path / "o", progress=False)
    with pytest.raises(ResidualError, match=r"instruct .* has a separate lm_head.weight \(untied embeddings\) but base .* ties it"):
        extract(base, target, tmp_path / "r", progress=False)


def test_config_untied_without_lm_head(tmp_path):
    base = write_model(tmp_path / "b", {"model.embed_tokens.weight": torch.ones(4, 2)}, config={"tie_word_embeddings": False})
    inst = write_model(tmp_path / "i", {"model.embed_tokens.weight": torch.ones(4, 2)})
    with pytest.raises(ResidualError, match=r"tie_word_embeddings=false but there is no lm_head.weight"):
        extract(base, inst, tmp_path / "r", progress=False)


def test_missing_shard_file(tmp_path):
    base, inst = pair(tmp_path, {"a": torch.ones(2), "b": torch.ones(2)}, {"a": torch.ones(2), "b": torch.ones(2)}, shards=2)
    (inst / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"instruct/model-00002-of-00002.safetensors: safetensors file is missing"):
        extract(base, inst, tmp_path / "r", progress=False)


def test_missing_directory_and_no_safetensors(tmp_path):
    base = write_model(tmp_path / "b", {"a": torch.ones(2)})
    with pytest.raises(FileNotFoundError, match=r"nope: no such model directory"):
        extract(base, tmp_path / "nope", tmp_path / "r", progress=False)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"bin: neither model.safetensors nor model.safetensors.index.json"):
        extract(base, tmp_path / "bin", tmp_path / "r", progress=False)


@pytest.mark.parametrize("damage", ["bad json", "truncated"])
def test_corrupt_file_is_named(tmp_path, damage):
    base, inst = pair(tmp_path, {"a": torch.ones(100)}, {"a": torch.ones(100)})
    file = inst / "model.safetensors"
    data = file.read_bytes()
    file.write_bytes(data[:8] + b"{oops" + data[13:] if damage == "bad json" else data[:-10])
    with pytest.raises(ResidualError, match=r"instruct/model.safetensors: corrupt safetensors file"):
        extract(base, inst, tmp_path / "r", progress=False)


def test_stale_index(tmp_path):
    base, inst = pair(tmp_path, {"a": torch.ones(2), "b": torch.ones(2)}, {"a": torch.ones(2), "b": torch.ones(2)}, shards=2)
    index_path = inst / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"]["ghost"] = "model-00001-of-00002.safetensors"
    index_path.write_text(json.dumps(index))
    with pytest.raises(ResidualError, match=r"the index lists \['ghost'\] but no shard holds them"):
        extract(base, inst, tmp_path / "r", progress=False)


def test_existing_output_directory(tmp_path):
    base, inst = pair(tmp_path, {"a": torch.ones(2)}, {"a": torch.ones(2)})
    (tmp_path / "r").mkdir()
    with pytest.raises(FileExistsError, match=r"r already exists; choose another output directory or remove it"):
        extract(base, inst, tmp_path / "r", progress=False)


def test_failed_run_leaves_no_output(tmp_path, monkeypatch):
    """A failure after some shards were written removes the temporary sibling; `out` never appears."""
    base, inst = pair(tmp_path, {f"t{k}": torch.ones(4) for k in range(4)}, {f"t{k}": torch.ones(4) for k in range(4)})
    calls = []

    def failing(taus):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return taus[0]

    monkeypatch.setattr(merge_module, "task_arithmetic", failing)
    monkeypatch.setattr("cptlib.residual.stream.task_arithmetic", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        restore(base, inst, base, tmp_path / "out", max_shard_size=16, progress=False)
    calls.clear()
    with pytest.raises(RuntimeError, match="disk on fire"):
        extract(base, inst, tmp_path / "out", max_shard_size=16, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "instruct"]


def test_apply_needs_a_residual_directory(tmp_path):
    base, _ = pair(tmp_path, {"a": torch.ones(2)}, {"a": torch.ones(2)})
    with pytest.raises(FileNotFoundError, match=r"base: no residual_manifest.json, so not a residual directory"):
        apply(base, base, tmp_path / "o", progress=False)


def test_integer_tensors_are_refused(tmp_path):
    base, inst = pair(tmp_path, {"ids": torch.arange(3)}, {"ids": torch.arange(3)})
    with pytest.raises(ResidualError, match=r"tensor ids has dtype torch.int64; only floating-point weights"):
        extract(base, inst, tmp_path / "r", progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "magic"}, r"merge method 'magic': choose one of task_arithmetic, ties, dare, breadcrumbs"),
    ({"name": "ties", "density": 1.5}, r"merge method 'ties': density 1.5: must be in \(0, 1\]"),
    ({"name": "ties", "density": 0}, r"merge method 'ties': density 0: must be in \(0, 1\]"),
    ({"name": "dare", "drop_rate": 1.0}, r"merge method 'dare': drop_rate 1.0: must be in \[0, 1\)"),
    ({"name": "dare", "seed": 0.5}, r"merge method 'dare': seed must be an integer, got 0.5"),
    ({"name": "dare", "density": 0.5}, r"merge method 'dare' has no parameter density \(its parameters: drop_rate, seed\)"),
    ({"name": "ties", "density": float("nan")}, r"merge method 'ties': density nan: must be in \(0, 1\]"),
    ({"name": "breadcrumbs", "density": 0.9, "gamma": 0.2}, r"'breadcrumbs': gamma 0.2 \+ density 0.9 exceeds 1"),
])
def test_bad_merge_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MergeMethod(**kwargs)


def test_filters_that_match_nothing(tmp_path):
    base, inst = pair(tmp_path, {"model.layers.0.mlp.up_proj.weight": torch.ones(2)},
                      {"model.layers.0.mlp.up_proj.weight": torch.ones(2)})
    with pytest.raises(ValueError, match=r"module filter preset attention matches no tensor"):
        restore(base, inst, base, tmp_path / "o", module_filter=ModuleFilter(presets=("attention",)), progress=False)
    with pytest.raises(ValueError, match=r"module filter --include \*q_prj\* matches no tensor"):
        restore(base, inst, base, tmp_path / "o", module_filter=ModuleFilter(include=("*q_prj*",)), progress=False)
    with pytest.raises(ValueError, match=r"module filter preset 'attn': choose one of attention, mlp, no-embeddings"):
        ModuleFilter(presets=("attn",))


def test_residuals_of_different_architectures_do_not_add(tmp_path):
    base, inst = pair(tmp_path, {"a": torch.ones(2)}, {"a": torch.ones(2)})
    other = write_model(tmp_path / "o", {"a": torch.ones(3)})
    with pytest.raises(ResidualError, match=r"tensor a: shape \[2\] in one residual but \[3\] in another"):
        Residual.from_models(base, inst) + Residual.from_models(other, other)


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_alpha_is_refused_before_anything_is_read(tmp_path, alpha):
    base, inst = pair(tmp_path, {"a.weight": torch.ones(2)}, {"a.weight": torch.full((2,), 2.0)})
    with pytest.raises(ResidualError, match=rf"alpha must be a finite number, got {alpha}"):
        restore(base, inst, base, tmp_path / "o", alpha=alpha, progress=False)
    assert not (tmp_path / "o").exists()


def test_a_restored_model_that_overflows_is_refused_naming_alpha_and_the_tensor(tmp_path):
    """fp32 holds up to 3.4e38: α = 1e39 is inf in fp32, so even a zero residual entry gives 0 * inf = NaN (the first
    tensor, a.weight) and 1.0 + 1e39 * 1.0 would be inf: nothing is written (it used to be, NaN and all)."""
    base, inst = pair(tmp_path, {"a.weight": torch.ones(2), "b.weight": torch.ones(2)},
                      {"a.weight": torch.ones(2), "b.weight": torch.full((2,), 2.0)})
    with pytest.raises(ResidualError, match=r"not finite in tensor a.weight \(α = 1e\+39, dtype torch.float32\)"):
        restore(base, inst, base, tmp_path / "o", alpha=1e39, progress=False)
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o*"))


def test_the_cli_refuses_nan_inf_and_overflowing_alphas(tmp_path, capsys):
    from cptlib import cli

    for text in ("nan", "inf", "1e400"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["residual", "restore", "--base", "b", "--instruct", "i", "--target", "t", "--out", "o",
                      "--alpha", text])
        assert exit_info.value.code == 2
        assert f"argument --alpha: must be a finite number, got '{text}'" in capsys.readouterr().err


def test_a_target_without_config_json_is_refused_before_anything_is_written(tmp_path):
    """[reliability] 6: the output used to have no config.json, so from_pretrained failed far away."""
    base, inst = pair(tmp_path, {"a.weight": torch.ones(2)}, {"a.weight": torch.full((2,), 2.0)})
    target = write_model(tmp_path / "target", {"a.weight": torch.ones(2)}, config=False)
    with pytest.raises(ResidualError, match=r"target: no config.json; the target must be a model directory saved "
                                            r"with save_pretrained"):
        restore(base, inst, target, tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o*"))


def test_a_killed_run_leaves_a_temporary_folder_that_the_next_run_removes(tmp_path, capsys):
    """[reliability] 7: SIGKILL during a restore left a hidden `.out.tmp-*` folder forever."""
    import subprocess
    import sys

    base, inst = pair(tmp_path, {"a.weight": torch.ones(2)}, {"a.weight": torch.full((2,), 2.0)})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".o.tmp-{dead.stdout.strip()}-abc"
    stale.mkdir()
    (stale / "model-00001-of-00001.safetensors").write_bytes(b"half a shard")
    alive = tmp_path / f".o.tmp-{__import__('os').getpid()}-def"  # a run still writing (this process) is left alone
    alive.mkdir()
    restore(base, inst, base, tmp_path / "o", progress=False)
    assert not stale.exists() and alive.is_dir() and (tmp_path / "o" / "model.safetensors").is_file()
    assert f"removed {stale}, the unfinished output of a run (pid {dead.stdout.strip()}) that was killed" in capsys.readouterr().err


def _damage(model, tensor_bytes=4096):
    """0xFF over the last bytes of the weights (a bad download or disk): the header still parses, the floats are NaN."""
    file = model / "model.safetensors"
    data = bytearray(file.read_bytes())
    data[-tensor_bytes:] = b"\xff" * tensor_bytes
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("which", ["instruct", "base", "target"])
def test_non_finite_weights_are_refused_naming_the_file_and_the_tensor(tmp_path, which):
    """Issue 49, 5: 4 KB of 0xFF in an instruct model's weights gave exit 0 and a residual with ‖Θr‖/‖θ_base‖ = nan."""
    base, inst = pair(tmp_path, {"a.weight": torch.ones(2), "b.weight": torch.ones(1024)},
                      {"a.weight": torch.ones(2), "b.weight": torch.full((1024,), 2.0)})
    target = write_model(tmp_path / "target", {"a.weight": torch.ones(2), "b.weight": torch.ones(1024)})
    _damage({"instruct": inst, "base": base, "target": target}[which])
    damaged = {"instruct": inst, "base": base, "target": target}[which] / "model.safetensors"
    with pytest.raises(ResidualError) as err:
        restore(base, inst, target, tmp_path / "o", progress=False)
    assert str(err.value) == (f"{damaged}: tensor b.weight holds NaN or inf; the file is damaged: re-download or "
                              "re-save the model")
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o*"))
    if which != "target":
        with pytest.raises(ResidualError, match="tensor b.weight holds NaN or inf"):
            extract(base, inst, tmp_path / "r", progress=False)
        assert not (tmp_path / "r").exists()


def test_a_corrupt_config_json_is_one_error_naming_it(tmp_path):
    """A config.json replaced by `{"broken` was a JSONDecodeError traceback."""
    base, inst = pair(tmp_path, {"a.weight": torch.ones(2)}, {"a.weight": torch.full((2,), 2.0)})
    (inst / "config.json").write_text('{"broken')
    with pytest.raises(ResidualError, match=rf"^{inst}/config.json: not valid JSON \(Unterminated string .*\); "
                                            r"re-download or re-save the model$"):
        extract(base, inst, tmp_path / "r", progress=False)
    (inst / "config.json").write_text("[1, 2]")
    with pytest.raises(ResidualError, match=r"config.json: a model config is a JSON object, got list"):
        extract(base, inst, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("out, why", [("/proc/cptlib-x", "No such file or directory"),
                                      ("/sys/cptlib-x", "Operation not permitted")])
def test_an_output_where_no_folder_can_be_made_is_one_line_exit_2(tmp_path, out, why):
    """`--out /proc/x` was a FileNotFoundError traceback from mkdtemp, rc 1 (`/sys`: a file system root may not write)."""
    import subprocess
    import sys

    base, inst = pair(tmp_path, {"a.weight": torch.ones(2)}, {"a.weight": torch.full((2,), 2.0)})
    proc = subprocess.run([sys.executable, "-m", "cptlib.cli", "residual", "extract", "--base", str(base), "--instruct",
                           str(inst), "--out", out, "--no-progress"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"cptlib residual: error: --out {out}: cannot create a folder in "
                                        f"{out.rsplit('/', 1)[0]} ({why}); choose a writable folder for the output"]
    assert not __import__("os").path.exists(out)


@pytest.mark.parametrize("command", [["extract"], ["extract", "--format", "peft"], ["restore", "--target", "T"]])
def test_the_same_folder_as_base_and_instruct_is_refused(tmp_path, capsys, command):
    """`--base M --instruct M` (a slip when editing a command) wrote a residual of zeros and exited 0."""
    from cptlib import cli

    base, _ = pair(tmp_path, {"a.weight": torch.ones(2)}, {"a.weight": torch.full((2,), 2.0)})
    argv = ["residual", command[0], "--base", str(base), "--instruct", f"{base}/", *command[1:],
            "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (f"cptlib residual: error: --base and --instruct are the same folder ({base}): the "
                                       "residual would be zero; pass the instruct model's folder as --instruct\n")
    assert not (tmp_path / "o").exists()


def test_a_peft_adapter_with_an_embed_policy_is_one_line_exit_2(tmp_path, capsys):
    """It was a bare SystemExit: the message without `cptlib residual: error:`, exit 1."""
    from cptlib import cli

    base, inst = pair(tmp_path, {"a.weight": torch.ones(2)}, {"a.weight": torch.full((2,), 2.0)})
    assert cli.main(["residual", "extract", "--base", str(base), "--instruct", str(inst), "--out", str(tmp_path / "o"),
                     "--format", "peft", "--embed-policy", "skip"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cptlib residual: error: --embed-policy skip is for cptlib's own format") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
