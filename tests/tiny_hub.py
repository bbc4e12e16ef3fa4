"""Tiny checkpoints of the real architectures, laid out like hub models, for tests of the real-model path.

    families = tiny_families(root)                  # {"qwen2": {"base_v1": dir, ...}, "llama3": {...}}
    install_in_hub_cache(dir, "Qwen/Qwen2-0.5B", hf_home)   # so `resolve_model("Qwen/Qwen2-0.5B")` finds it

- "qwen2": Qwen2Config/Qwen2ForCausalLM with tied embeddings (as Qwen2-0.5B), one model.safetensors, a ChatML
  chat template, eos <|endoftext|> (base) / <|im_end|> (instruct), no bos, Qwen's sampling generation config.
- "llama3": LlamaConfig/LlamaForCausalLM with an untied lm_head (as Meta-Llama-3-8B), saved in several shards
  with the index, a LLaMA-3 header chat template, bos <|begin_of_text|>, eos <|end_of_text|> / <|eot_id|>.
Each family: base_v1; base_v2 = base_v1 + a small update ("further pre-trained"); instruct_vN = base_vN + a
small update ("fine-tuned"); tiny shapes (hidden 32, 2 layers), real config classes and file layouts.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from cptlib.tokenizer import train_tokenizer

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
          " + message['content'] + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
TEXTS = [f"the {w} of {v} said on day {i} that the river city market opened" for i in range(40)
         for w, v in [("mayor", "north"), ("chief", "stone"), ("engineer", "bay")]]
HUB_IDS = {
    "qwen2": {"base_v1": "Qwen/Qwen2-0.5B", "instruct_v1": "Qwen/Qwen2-0.5B-Instruct",
              "base_v2": "Qwen/Qwen2.5-0.5B", "instruct_v2": "Qwen/Qwen2.5-0.5B-Instruct"},
    "llama3": {"base_v1": "meta-llama/Meta-Llama-3-8B", "instruct_v1": "meta-llama/Meta-Llama-3-8B-Instruct",
               "base_v2": "meta-llama/Llama-3.1-8B", "instruct_v2": "meta-llama/Llama-3.1-8B-Instruct"},
}


def _tokenizer(arch: str, instruct: bool) -> PreTrainedTokenizerFast:
    base = train_tokenizer(TEXTS, vocab_size=300)  # byte-level BPE; its own specials are renamed below
    if arch == "qwen2":
        specials = {"eos_token": "<|im_end|>" if instruct else "<|endoftext|>", "pad_token": "<|endoftext|>"}
        extra, template = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], CHATML
    else:
        specials = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>" if instruct else "<|end_of_text|>"}
        extra, template = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                           "<|eot_id|>"], LLAMA3
    tok = PreTrainedTokenizerFast(tokenizer_object=base.backend_tokenizer, clean_up_tokenization_spaces=False)
    tok.add_special_tokens({"additional_special_tokens": extra, **specials})
    if instruct or arch == "qwen2":  # Qwen2 base ships the template too; LLaMA-3 base does not
        tok.chat_template = template
    return tok


def _config(arch: str, vocab: int, tok, max_len: int = 256) -> LlamaConfig | Qwen2Config:
    shape = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=max_len)
    if arch == "qwen2":
        return Qwen2Config(**shape, tie_word_embeddings=True, eos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                           pad_token_id=tok.pad_token_id)  # as the tokenizer's, so training does not re-align it
    return LlamaConfig(**shape, tie_word_embeddings=False, rope_theta=500000.0,
                       bos_token_id=tok.convert_tokens_to_ids("<|begin_of_text|>"),
                       eos_token_id=tok.convert_tokens_to_ids("<|end_of_text|>"))


def _generation_config(arch: str, tok, instruct: bool) -> GenerationConfig:
    ids = tok.convert_tokens_to_ids
    if arch == "qwen2":
        eos = [ids("<|im_end|>"), ids("<|endoftext|>")] if instruct else ids("<|endoftext|>")
        return GenerationConfig(eos_token_id=eos, pad_token_id=ids("<|endoftext|>"), do_sample=instruct,
                                temperature=0.7 if instruct else 1.0, top_p=0.8 if instruct else 1.0, repetition_penalty=1.05)
    eos = [ids("<|end_of_text|>"), ids("<|eot_id|>")] if instruct else ids("<|end_of_text|>")
    return GenerationConfig(bos_token_id=ids("<|begin_of_text|>"), eos_token_id=eos, do_sample=True, temperature=0.6, top_p=0.9)


def tiny_family(arch: str, root: Path, seed: int = 0, max_len: int = 256) -> dict[str, Path]:
    """base_v1, base_v2, instruct_v1, instruct_v2 of one architecture, each saved like its hub repository
    (`max_len`: positions; the benchmarks' long prompts need more than the default's 256 byte-level tokens)."""
    cls = Qwen2ForCausalLM if arch == "qwen2" else LlamaForCausalLM
    tok0 = _tokenizer(arch, instruct=False)
    torch.manual_seed(seed)
    base = cls(_config(arch, len(tok0), tok0, max_len))
    weights = {"base_v1": base.state_dict()}
    gen = torch.Generator().manual_seed(seed + 1)

    def nudged(state, scale):
        return {k: v + scale * torch.randn(v.shape, generator=gen) for k, v in state.items()}

    weights["base_v2"] = nudged(weights["base_v1"], 0.01)
    weights["instruct_v1"] = nudged(weights["base_v1"], 0.02)
    weights["instruct_v2"] = nudged(weights["base_v2"], 0.02)
    out = {}
    for role, state in weights.items():
        instruct = role.startswith("instruct")
        tok = _tokenizer(arch, instruct)
        model = cls(_config(arch, len(tok), tok, max_len))
        model.load_state_dict(state)
        if arch == "qwen2":
            model.tie_weights()
        model.generation_config = _generation_config(arch, tok, instruct)
        out[role] = root / arch / role
        # LLaMA-3-8B ships in 4 shards; a 40 kB cap gives this tiny one several too.
        model.save_pretrained(out[role], max_shard_size="40KB" if arch == "llama3" else "5GB")
        tok.save_pretrained(out[role])
    return out


def tiny_gemma_base(root: Path, seed: int = 0, max_len: int = 2048) -> Path:
    """A Gemma 3 base laid out as its release is: Gemma3ForCausalLM (tied embeddings), <bos>/<eos>/<pad> and the turn
    markers <start_of_turn>/<end_of_turn> in the vocabulary, and no chat template (a base release has none)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tok = PreTrainedTokenizerFast(tokenizer_object=train_tokenizer(TEXTS, vocab_size=300).backend_tokenizer,
                                  clean_up_tokenization_spaces=False)
    tok.add_special_tokens({"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
                            "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    ids = tok.convert_tokens_to_ids
    config = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=1, head_dim=8, sliding_window=64,
                              max_position_embeddings=max_len, bos_token_id=ids("<bos>"), eos_token_id=ids("<eos>"),
                              pad_token_id=ids("<pad>"), tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=ids("<bos>"), eos_token_id=ids("<eos>"),
                                               pad_token_id=ids("<pad>"))
    out = Path(root) / "gemma3" / "base_v1"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_families(root: Path) -> dict[str, dict[str, Path]]:
    return {arch: tiny_family(arch, Path(root)) for arch in HUB_IDS}


def install_in_hub_cache(model_dir: Path, repo_id: str, hf_home: Path, commit: str = "0" * 40) -> Path:
    """Copy a model folder into `hf_home` as the hub cache lays out `repo_id` (refs/main -> snapshots/<commit>)."""
    repo = Path(hf_home) / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    shutil.copytree(model_dir, snapshot, dirs_exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def install_families(families: dict[str, dict[str, Path]], hf_home: Path) -> None:
    for arch, members in families.items():
        for role, path in members.items():
            install_in_hub_cache(path, HUB_IDS[arch][role], hf_home)


def write_news(folder: Path, n_docs: int = 60) -> Path:
    """A dated news folder (JSONL, `text` + `date`), half before 2024 so that a date filter has work to do."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "news.jsonl", "w") as f:
        for i in range(n_docs):
            date = f"2023-{1 + i % 12:02d}-15" if i % 2 else f"2024-{1 + i % 9:02d}-15"
            f.write(json.dumps({"text": f"On {date} the mayor of north river city opened market {i}.", "date": date}) + "\n")
    return folder


IFEVAL_ROWS = [  # IFEval's own format; instruction ids whose checkers need no NLTK data
    {"key": 1, "prompt": "Describe the market in lowercase letters only.",
     "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]},
    {"key": 2, "prompt": "Who opened the market? Do not use any commas.",
     "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
    {"key": 3, "prompt": "Tell me about the mayor. Answer in capital letters.",
     "instruction_id_list": ["change_case:english_capital"], "kwargs": [{}]},
    {"key": 4, "prompt": "Name the city, and include the keyword river.",
     "instruction_id_list": ["keywords:existence"], "kwargs": [{"keywords": ["river"]}]},
]
# A user's own tasks, each included from an existing definition with only the data (and name) replaced:
# lm-eval's IFEval (its scorer, resolved next to the included file) and the testbed's multiple-choice template.
LOCAL_TASK = """task: {task}
include: {template}
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
"""


def write_local_tasks(folder: Path) -> Path:
    """A user's own lm-eval tasks, as a real profile's `eval.include_path` names them: an IFEval-format task
    scored by lm-eval's IFEval code (local_ifeval), an old-knowledge and a news multiple-choice task."""
    import lm_eval.tasks

    from cptlib.evaluation.evaluate import TASKS_DIR

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ifeval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in IFEVAL_ROWS))
    ifeval = Path(lm_eval.tasks.__file__).parent / "ifeval" / "ifeval.yaml"
    (folder / "local_ifeval.yaml").write_text(LOCAL_TASK.format(task="local_ifeval", template=ifeval,
                                                                data=folder / "ifeval.jsonl"))
    mc = {"local_mc_old": [("The river city is in the", [" north", " stone"], 0), ("The chief works at the", [" bay", " market"], 1)],
          "local_mc_news": [("The mayor opened market", [" 3", " river"], 0), ("On 2024-01-15 the mayor of north", [" river", " day"], 0)]}
    for task, items in mc.items():
        (folder / f"{task}.jsonl").write_text("".join(json.dumps({"query": q, "choices": c, "gold": g}) + "\n"
                                                      for q, c, g in items))
        (folder / f"{task}.yaml").write_text(LOCAL_TASK.format(task=task, template=TASKS_DIR / "_mc_template_yaml",
                                                               data=folder / f"{task}.jsonl"))
    return folder
