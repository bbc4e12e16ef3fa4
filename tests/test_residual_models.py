"""The residual engine on tiny transformers LLaMAs (tied and untied, sharded and not), its manifests and its
command line: `.venv/bin/pytest tests/test_residual_models.py`."""
from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from residual_helpers import llama_family, read_model, write_model

from cptlib.cli import main
from cptlib.residual import APPLY_MANIFEST_FILE, MANIFEST_FILE, ModuleFilter, Residual, apply, extract, inspect, restore


def reference_restore(paths: dict, alpha: float = 1.0) -> dict[str, torch.Tensor]:
    """The straightforward way: load all three models with transformers, θ_cpt + α·(θ_instruct − θ_base)."""
    from transformers import LlamaForCausalLM

    models = {n: LlamaForCausalLM.from_pretrained(paths[n], dtype=torch.float32) for n in ("base", "instruct", "cpt")}
    sd = {n: m.state_dict() for n, m in models.items()}
    return {k: sd["cpt"][k] + alpha * (sd["instruct"][k] - sd["base"][k]) for k in sd["cpt"]}


@pytest.mark.parametrize("tied", [True, False])
def test_restored_model_loads_with_transformers_and_equals_reference(tmp_path, tied):
    paths = llama_family(tmp_path, tied=tied, shard="20KB")
    out = restore(paths["base"], paths["instruct"], paths["cpt"], tmp_path / "out", alpha=1.0, progress=False)
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert model.config.tie_word_embeddings is tied
    assert ("lm_head.weight" in read_model(out)) is not tied
    got, want = model.state_dict(), reference_restore(paths)
    assert sorted(got) == sorted(want)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_sharded_and_unsharded_inputs_give_identical_outputs(tmp_path):
    sharded = llama_family(tmp_path / "s", tied=False, shard="20KB")
    single = llama_family(tmp_path / "u", tied=False)
    assert (sharded["base"] / "model.safetensors.index.json").is_file()
    assert (single["base"] / "model.safetensors").is_file()
    outs = [restore(p["base"], p["instruct"], p["cpt"], tmp_path / f"o{k}", progress=False)
            for k, p in enumerate((sharded, single))]
    a, b = read_model(outs[0]), read_model(outs[1])
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_block_streaming_equals_whole_tensors(tmp_path, monkeypatch):
    """With blocks of 5 entries (rows of 16 → one row per block; vectors in 5-entry pieces), every pass gives
    the same bytes as with whole-tensor blocks, including an fp64 residual cast down by the writer."""
    paths = llama_family(tmp_path, tied=False)

    def run(tag):
        r = extract(paths["base"], paths["instruct"], tmp_path / f"r{tag}", dtype=torch.float64, progress=False)
        return [read_model(p) for p in (r, apply(paths["cpt"], r, tmp_path / f"a{tag}", alpha=0.3, progress=False),
                                        restore(paths["base"], paths["instruct"], paths["cpt"], tmp_path / f"o{tag}",
                                                module_filter=ModuleFilter(presets=("mlp",)), progress=False))]

    whole = run("whole")
    monkeypatch.setattr("cptlib.residual.checkpoint.CHUNK_ELEMENTS", 5)
    monkeypatch.setattr("cptlib.residual.writer.CHUNK_ELEMENTS", 5)
    blocks = run("blocks")
    for a, b in zip(whole, blocks):
        assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_output_shards_are_capped_and_indexed(tmp_path):
    """Tensors of the tiny model are ≤ 3 KB, so a 10 KB cap holds every shard under 10 KB; the index has
    the standard layout: metadata.total_size (the bytes of all tensors) and a weight_map covering each."""
    paths = llama_family(tmp_path, tied=False)
    out = restore(paths["base"], paths["instruct"], paths["cpt"], tmp_path / "o", max_shard_size="10KB", progress=False)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    tensors = read_model(out)
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in tensors.values())
    assert sorted(index["weight_map"]) == sorted(tensors)
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) > 1 and sorted(set(index["weight_map"].values())) == [s.name for s in shards]
    assert all(s.stat().st_size <= 10_000 + 1024 for s in shards)  # + the shard's JSON header


def test_output_chats_like_instruct_and_keeps_target_config(tmp_path):
    """Tokenizer, chat template and generation config come from the instruct model (through the residual
    directory for extract + apply); config.json and the weights' dtype come from the target."""
    paths = llama_family(tmp_path, tied=True)
    (paths["instruct"] / "chat_template.jinja").write_text("{{ messages }}")
    (paths["instruct"] / "tokenizer_config.json").write_text('{"marker": "instruct"}')
    (paths["instruct"] / "generation_config.json").write_text('{"eos_token_id": 99}')
    (paths["cpt"] / "tokenizer_config.json").write_text('{"marker": "cpt"}')
    config = json.loads((paths["cpt"] / "config.json").read_text())
    config["marker"] = "target"
    (paths["cpt"] / "config.json").write_text(json.dumps(config))
    r = extract(paths["base"], paths["instruct"], tmp_path / "r", progress=False)
    for out in (apply(paths["cpt"], r, tmp_path / "o1", progress=False),
                restore(paths["base"], paths["instruct"], paths["cpt"], tmp_path / "o2", progress=False)):
        assert (out / "chat_template.jinja").read_text() == "{{ messages }}"
        assert json.loads((out / "tokenizer_config.json").read_text()) == {"marker": "instruct"}
        assert json.loads((out / "generation_config.json").read_text()) == {"eos_token_id": 99}
        assert json.loads((out / "config.json").read_text())["marker"] == "target"


def test_bf16_target_keeps_its_dtype(tmp_path):
    paths = llama_family(tmp_path, tied=False, dtype=torch.bfloat16)
    out = restore(paths["base"], paths["instruct"], paths["cpt"], tmp_path / "o", progress=False)
    assert {t.dtype for t in read_model(out).values()} == {torch.bfloat16}


def test_manifests_record_sources_hashes_and_norms(tmp_path):
    paths = llama_family(tmp_path, tied=False, shard="20KB")
    r = extract(paths["base"], paths["instruct"], tmp_path / "r", progress=False)
    manifest = json.loads((r / MANIFEST_FILE).read_text())
    files = sorted(paths["base"].glob("*.safetensors"))
    assert manifest["base"]["sha256"] == {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert manifest["terms"][0]["instruct"]["path"] == str(paths["instruct"].resolve())
    assert manifest["dtype"] == "float32" and manifest["tie_word_embeddings"] is False
    base, inst = read_model(paths["base"]), read_model(paths["instruct"])
    name = "model.layers.1.mlp.down_proj.weight"
    assert manifest["tensors"][name]["residual_norm"] == pytest.approx(float((inst[name] - base[name]).norm()), rel=1e-6)
    assert manifest["tensors"][name]["base_norm"] == pytest.approx(float(base[name].norm()), rel=1e-6)
    out = apply(paths["cpt"], r, tmp_path / "o", alpha=0.5, progress=False)
    applied = json.loads((out / APPLY_MANIFEST_FILE).read_text())
    assert applied["alpha"] == 0.5 and applied["method"] == {"name": "task_arithmetic"}
    assert applied["residual_terms"][0]["extracted_from"] == manifest["terms"]
    assert {m["status"] for m in applied["tensors"].values()} == {"applied"}


def test_inspect_hand_worked(tmp_path):
    """Θr = instruct − base = [3, 4] (‖Θr‖ = 5), base = [0, 12] (‖θ_base‖ = 12): relative norm 5/12.
    cos(Θr, 2Θr) = 1, cos(Θr, −Θr) = −1. Target = base + [6, 8]: drift ‖[6, 8]‖/‖Θr‖ = 10/5 = 2."""
    base = write_model(tmp_path / "b", {"model.layers.0.mlp.up_proj.weight": torch.tensor([0.0, 12.0])})
    inst = write_model(tmp_path / "i", {"model.layers.0.mlp.up_proj.weight": torch.tensor([3.0, 16.0])})
    double = write_model(tmp_path / "i2", {"model.layers.0.mlp.up_proj.weight": torch.tensor([6.0, 20.0])})
    negative = write_model(tmp_path / "i3", {"model.layers.0.mlp.up_proj.weight": torch.tensor([-3.0, 8.0])})
    target = write_model(tmp_path / "t", {"model.layers.0.mlp.up_proj.weight": torch.tensor([6.0, 20.0])})
    r, r2, r3 = (extract(base, i, tmp_path / f"r{k}", progress=False) for k, i in enumerate((inst, double, negative)))
    report = inspect(r, against=r2, target=target, progress=False)
    assert report["relative_norms"]["total"]["all"]["relative"] == pytest.approx(5 / 12)
    assert report["relative_norms"]["layer"]["layer   0"]["relative"] == pytest.approx(5 / 12)
    assert report["relative_norms"]["module"]["mlp.up_proj"]["residual_norm"] == pytest.approx(5.0)
    assert report["cosine"]["total"]["all"] == pytest.approx(1.0)
    assert inspect(r, against=r3, progress=False)["cosine"]["total"]["all"] == pytest.approx(-1.0)
    assert report["drift"]["total"]["all"]["relative"] == pytest.approx(2.0)


def test_residual_api_repr_and_lazy_terms(tmp_path):
    paths = llama_family(tmp_path, tied=True)
    r = Residual.from_models(paths["base"], paths["instruct"])
    combo = 0.5 * r + Residual.load(extract(paths["base"], paths["cpt"], tmp_path / "r", progress=False))
    assert [c for c, _ in combo.terms] == [0.5, 1.0]
    assert "ModelPair" in repr(combo) and "StoredResidual" in repr(combo)


def test_cli_extract_apply_restore_inspect(tmp_path, capsys):
    paths = llama_family(tmp_path, tied=False)
    r, o1, o2 = tmp_path / "r", tmp_path / "o1", tmp_path / "o2"
    common = ["--no-progress"]
    assert main(["residual", "extract", "--base", str(paths["base"]), "--instruct", str(paths["instruct"]),
                 "--out", str(r), *common]) == 0
    assert main(["residual", "apply", "--target", str(paths["cpt"]), "--residual", str(r), "--out", str(o1),
                 "--alpha", "0.5", "--method", "ties", "--density", "0.5", "--only", "mlp", *common]) == 0
    assert main(["residual", "restore", "--base", str(paths["base"]), "--instruct", str(paths["instruct"]),
                 "--target", str(paths["cpt"]), "--out", str(o2), "--method", "dare", "--drop-rate", "0.3", *common]) == 0
    assert main(["residual", "inspect", str(r), "--against", str(r), "--target", str(paths["cpt"]),
                 "--json", str(tmp_path / "report.json"), *common]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["cosine"]["total"]["all"] == pytest.approx(1.0)
    assert math.isfinite(report["drift"]["total"]["all"]["relative"])
    manifest = json.loads((o1 / APPLY_MANIFEST_FILE).read_text())
    assert manifest["method"] == {"name": "ties", "density": 0.5} and manifest["module_filter"]["presets"] == ["mlp"]
    assert "‖Θr‖/‖θ_base‖" in capsys.readouterr().out
    assert main(["residual", "apply", "--target", str(paths["cpt"]), "--residual", str(r), "--out", str(o1), *common]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cptlib residual: error:") and "already exists" in err and "\n" not in err
