"""`cptlib plan`: parameter counts against the published ones and a real model, and the report's numbers."""
import pytest

from cptlib.config import load_profile
from cptlib.family.plan import KNOWN_SHAPES, model_shape, n_parameters, report
from tiny_hub import tiny_family


@pytest.mark.parametrize("repo,published", [
    ("Qwen/Qwen2-0.5B", 494_032_768),             # model card / safetensors metadata (tied embeddings)
    ("meta-llama/Meta-Llama-3-8B", 8_030_261_248),  # untied: embeddings and lm_head each 128256 x 4096
])
def test_parameter_count_matches_the_published_one(repo, published):
    shape, origin = model_shape(repo)  # no cache here: the stated table
    assert origin == "cptlib.family.plan.KNOWN_SHAPES"
    assert n_parameters(shape) == published


@pytest.mark.parametrize("arch", ["qwen2", "llama3"])
def test_parameter_count_from_config_json_equals_the_model(tmp_path, arch):
    from transformers import AutoModelForCausalLM

    path = tiny_family(arch, tmp_path)["base_v1"]
    shape, origin = model_shape(str(path))
    assert origin == "config.json"
    assert n_parameters(shape) == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(str(path)).parameters())


def test_llama_plan_needs_fsdp():
    """8.03e9 x 16 B = 119.7 GiB of states: no replica fits 72 GiB usable, so single/DDP cannot run; FSDP over 8
    GPUs holds 15 GiB of them each."""
    text = report(load_profile("llama3_8b"))
    assert "8.030B parameters" in text and "states       119.7 GiB" in text
    assert "single/DDP: does not fit one GPU" in text and ": fits" in text


def test_unknown_model_says_what_is_missing(tmp_path):
    shape, why = model_shape("someone/unknown-model")
    assert shape is None and "hf download someone/unknown-model config.json" in why
    assert "someone/unknown-model" not in KNOWN_SHAPES
