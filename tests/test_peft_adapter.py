"""`cptlib residual extract --format peft`: the instruction residual as a PEFT LoRA adapter, loaded by PEFT itself
(no mock) and compared with cptlib's own low-rank and full residuals on tiny LLaMAs with an untied and a tied head."""
from __future__ import annotations

import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from cptlib.residual import ModuleFilter, ResidualError, apply, extract, restore
from cptlib.residual.peft_adapter import ADAPTER_FILE, extract_peft, read_manifest
from residual_helpers import llama_family, read_model

MATRIX = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
NO_NORMS = ModuleFilter(exclude=("*norm*",))  # what `vectors="drop"` leaves: the target's own norms


def _load(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def _attach(target, adapter, **config):
    """PeftModel.from_pretrained as a user calls it (config overrides only where a test says why)."""
    if not config:
        return PeftModel.from_pretrained(_load(target), adapter)
    lora = LoraConfig.from_pretrained(adapter)  # from_pretrained's keyword arguments do not override fields
    for key, value in config.items():
        setattr(lora, key, value)
    return PeftModel.from_pretrained(_load(target), adapter, config=lora)


def _max_diff(model, reference: dict, only=None) -> dict[str, float]:
    state = model.state_dict()
    return {name: (state[name] - ref).abs().max().item() for name, ref in reference.items()
            if only is None or any(m in name for m in only)}


def _logits(model, seed=0):
    ids = torch.randint(0, 48, (2, 9), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(ids).logits


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("rank", [2, None])
def test_merged_adapter_equals_cptlib_residual_on_every_matrix(tmp_path, tied, rank):
    """Rank r: equals `apply` of cptlib's rank-r residual; no rank: equals the full `restore`. Within 1e-5 on every
    attention and MLP matrix (the factors are the same SVD, so untied rank-r agrees bit for bit)."""
    f = llama_family(tmp_path, tied=tied)
    adapter = extract_peft(f["base"], f["instruct"], tmp_path / "adapter", rank=rank, vectors="drop", progress=False)
    if rank is None:
        restore(f["base"], f["instruct"], f["cpt"], tmp_path / "ref", module_filter=NO_NORMS, progress=False)
    else:
        extract(f["base"], f["instruct"], tmp_path / "residual", rank=rank, progress=False)
        apply(f["cpt"], tmp_path / "residual", tmp_path / "ref", module_filter=NO_NORMS, progress=False)
    reference = read_model(tmp_path / "ref")
    # A tied model merges correctly only without PEFT's ensure_weight_tying (see the next test).
    merged = _attach(f["cpt"], adapter, **({"ensure_weight_tying": False} if tied else {})).merge_and_unload()
    diffs = _max_diff(merged, reference)
    assert max(d for n, d in diffs.items() if any(m in n for m in MATRIX)) < 1e-5
    assert max(diffs.values()) < 1e-5  # embeddings too; norms are the target's on both sides
    assert (_logits(merged) - _logits(_load(tmp_path / "ref"))).abs().max() < 1e-4


def test_tied_head_attached_adapter_moves_both_ends_and_peft_merge_adds_twice(tmp_path):
    """Tied embeddings: the adapter as written (ensure_weight_tying) gives the restored model's logits at load
    time, the use it exists for. PEFT 0.21.2's merge_and_unload then adds the embedding delta twice (once per tied
    layer); this pins that behaviour so an upgrade that fixes it is noticed (docs/residual.md says to merge with
    ensure_weight_tying=False, as the test above does)."""
    f = llama_family(tmp_path, tied=True)
    adapter = extract_peft(f["base"], f["instruct"], tmp_path / "adapter", vectors="drop", progress=False)
    assert json.loads((adapter / "adapter_config.json").read_text())["ensure_weight_tying"] is True
    restore(f["base"], f["instruct"], f["cpt"], tmp_path / "ref", module_filter=NO_NORMS, progress=False)
    reference = _load(tmp_path / "ref")
    attached = _attach(f["cpt"], adapter)
    assert (_logits(attached) - _logits(reference)).abs().max() < 1e-4
    # Without ensure_weight_tying the output layer would miss the delta at load time:
    untied_attach = _attach(f["cpt"], adapter, ensure_weight_tying=False)
    assert (_logits(untied_attach) - _logits(reference)).abs().max() > 1e-2
    cpt_embed = read_model(f["cpt"])["model.embed_tokens.weight"]
    delta = read_model(tmp_path / "ref")["model.embed_tokens.weight"] - cpt_embed
    merged = attached.merge_and_unload().model.embed_tokens.weight.detach()
    assert (merged - cpt_embed - 2 * delta).abs().max() < 1e-5


def test_vectors_save_replaces_norms_with_the_instruct_value(tmp_path):
    f = llama_family(tmp_path, tied=False)
    adapter = extract_peft(f["base"], f["instruct"], tmp_path / "adapter", progress=False)  # vectors="save"
    merged = _attach(f["cpt"], adapter).merge_and_unload().state_dict()
    instruct = read_model(f["instruct"])
    norms = [n for n in instruct if "norm" in n]
    assert norms and all(torch.equal(merged[n], instruct[n]) for n in norms)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert sorted(config["modules_to_save"]) == sorted(n.removesuffix(".weight") for n in norms)


def test_adapter_keys_and_shapes_are_what_peft_itself_saves(tmp_path):
    """The file holds exactly the LoRA tensors PEFT's own get_peft_model_state_dict names for the same config
    (less the full embedding copies PEFT adds with save_embedding_layers, which would overwrite the target's)."""
    f = llama_family(tmp_path, tied=False)
    adapter = extract_peft(f["base"], f["instruct"], tmp_path / "adapter", rank=2, progress=False)
    with safe_open(adapter / ADAPTER_FILE, framework="pt") as fh:
        ours = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    peft_model = get_peft_model(_load(f["base"]), LoraConfig.from_pretrained(adapter))
    theirs = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(peft_model, save_embedding_layers=False).items()}
    assert ours == theirs
    assert ours["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] == (2, 16)
    assert ours["base_model.model.model.embed_tokens.lora_embedding_A"] == (2, 48)


def test_manifest_sizes_ranks_and_errors(tmp_path):
    f = llama_family(tmp_path, tied=False)
    low = read_manifest(extract_peft(f["base"], f["instruct"], tmp_path / "r1", rank=1, progress=False))
    full = read_manifest(extract_peft(f["base"], f["instruct"], tmp_path / "full", progress=False))
    assert low["size"]["adapter_bytes"] < full["size"]["adapter_bytes"]
    assert full["lora_relative_error"] < 1e-6 < low["lora_relative_error"] < 1
    q = low["tensors"]["model.layers.0.self_attn.q_proj.weight"]
    assert q["rank"] == 1 and 0 < q["relative_error"] < 1
    assert low["terms"][0]["base"]["sha256"] and low["peft_version"]
    assert 0 < low["not_lora_norm_share"] < 1  # the norms, saved with their instruct value


def test_refuses_mismatched_vocabularies_and_a_taken_output(tmp_path):
    a = llama_family(tmp_path / "a", tied=False, vocab=48)
    b = llama_family(tmp_path / "b", tied=False, vocab=56)
    with pytest.raises(ResidualError, match="vocab|shape|differ"):
        extract_peft(a["base"], b["instruct"], tmp_path / "adapter", progress=False)
    assert not (tmp_path / "adapter").exists()
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        extract_peft(a["base"], a["instruct"], tmp_path / "taken", progress=False)


def test_cli_extract_format_peft(tmp_path, capsys):
    from cptlib.cli import main

    f = llama_family(tmp_path, tied=True)
    out = tmp_path / "adapter"
    assert main(["residual", "extract", "--base", str(f["base"]), "--instruct", str(f["instruct"]), "--out", str(out),
                 "--rank", "2", "--format", "peft", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "PEFT LoRA adapter" in text and "self_attn.q_proj" in text and "PeftModel.from_pretrained" in text
    assert (out / "adapter_config.json").is_file() and (out / ADAPTER_FILE).is_file()
    capsys.readouterr()
    assert main(["residual", "extract", "--base", str(f["base"]), "--instruct", str(f["instruct"]), "--out",
                 str(tmp_path / "x"), "--format", "peft", "--embed-policy", "slice"]) == 2
    assert capsys.readouterr().err.startswith("cptlib residual: error: --embed-policy slice is for cptlib's own format")
