"""Training through Trainer: determinism, SIGKILL-resume, NaN stop, SFT loss masking, milestones."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cptlib.config import RuntimeConfig, SFTConfig, TrainConfig
from cptlib.training.data import _load_jsonl, _tokenize_docs, docs_fingerprint, packed_lm_dataset, sft_dataset, tokenized_docs
from cptlib.models import llama_config, new_model
from cptlib.tokenizer import load_tokenizer
from cptlib.training.train import NonFiniteLossError, train_causal_lm

JOB = Path(__file__).with_name("_train_job.py")
RUNTIME = RuntimeConfig(progress=False, threads=1)


def _job(data, out, kill_at=None):
    cmd = [sys.executable, str(JOB), str(data), str(out)] + ([str(kill_at)] if kill_at else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _weights(path):
    return load_file(str(Path(path) / "model.safetensors"))


def _assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.slow
def test_sigkill_then_resume_is_bitwise_equal_to_uninterrupted(tiny_corpus, tmp_path):
    straight = _job(tiny_corpus, tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-2000:]
    killed = _job(tiny_corpus, tmp_path / "resumed", kill_at=13)  # checkpoints every 4 steps: 4, 8, 12
    assert killed.returncode == -9
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint-12").is_dir()
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    resumed = _job(tiny_corpus, tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_bitwise_equal(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))
    for milestone in ("tokens-000000000256", "tokens-000000002560"):
        _assert_bitwise_equal(_weights(tmp_path / "straight" / "milestones" / milestone),
                              _weights(tmp_path / "resumed" / "milestones" / milestone))


@pytest.mark.slow
def test_same_seeds_give_identical_weights(tiny_corpus, tmp_path):
    for name in ("a", "b"):
        assert _job(tiny_corpus, tmp_path / name).returncode == 0
    _assert_bitwise_equal(_weights(tmp_path / "a"), _weights(tmp_path / "b"))


def _tiny_model(tok, seed=0):
    return new_model(llama_config("tiny", len(tok), 32, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id), seed)


def test_nan_loss_stops_with_clear_error(tiny_corpus, tmp_path):
    tok = load_tokenizer(tiny_corpus / "tokenizer")
    model = _tiny_model(tok)
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    ds = packed_lm_dataset([tiny_corpus / "corpus.jsonl"], tok, 32, seed=0)
    cfg = TrainConfig(tokens=8 * 32 * 4, batch_size=8, seq_len=32)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 1 \(lr 3.00e-03\) while training .*: lower the stage's lr"):
        train_causal_lm(model, ds, tok, cfg, RUNTIME, 0, tmp_path)
    assert not (tmp_path / "model.safetensors").exists()


def test_milestones_record_tokens_and_drift(tiny_corpus, tmp_path):
    """8 sequences x 32 tokens = 256 tokens per step; milestones at 256 and 768 tokens are steps 1 and 3."""
    tok = load_tokenizer(tiny_corpus / "tokenizer")
    ds = packed_lm_dataset([tiny_corpus / "corpus.jsonl"], tok, 32, seed=0)
    first = tmp_path / "first"
    first.mkdir()
    train_causal_lm(_tiny_model(tok), ds, tok, TrainConfig(tokens=256, batch_size=8, seq_len=32), RUNTIME, 0, first)
    cont = tmp_path / "cont"
    cont.mkdir()
    cfg = TrainConfig(tokens=1024, batch_size=8, seq_len=32, milestones=[256, 768])
    result = train_causal_lm(first, ds, tok, cfg, RUNTIME, 0, cont)
    assert result["steps"] == 4 and result["tokens"] == 1024
    assert result["milestone_steps"] == {"1": 256, "3": 768}
    assert sorted(p.name for p in (cont / "milestones").iterdir()) == ["tokens-000000000256", "tokens-000000000768"]
    assert 0 < result["drift"]["total"] < 1
    assert set(result["drift"]) == {"attention", "embed", "mlp", "norm", "total"}


def test_checkpoints_are_saved_on_the_way_but_not_at_the_last_step(tiny_corpus, tmp_path):
    """10 steps save a resumable checkpoint every 2 steps (ceil(10 / 5)); the last step's would be deleted with the
    others right after the final model is saved, so it is not written (1.6 GB for a 135M-parameter model); a run of
    fewer than MIN_RESUMABLE_STEPS steps writes none (it restarts if interrupted)."""
    from transformers import TrainerCallback

    class Saves(TrainerCallback):
        steps: list[int] = []

        def on_save(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    tok = load_tokenizer(tiny_corpus / "tokenizer")
    ds = packed_lm_dataset([tiny_corpus / "corpus.jsonl"], tok, 32, seed=0)
    saves = Saves()
    result = train_causal_lm(_tiny_model(tok), ds, tok, TrainConfig(tokens=2560, batch_size=8, seq_len=32), RUNTIME,
                             0, tmp_path / "ten", callbacks=[saves])
    assert result["steps"] == 10 and saves.steps == [2, 4, 6, 8]
    assert (tmp_path / "ten" / "model.safetensors").is_file() and not (tmp_path / "ten" / "checkpoints").exists()
    saves.steps.clear()
    result = train_causal_lm(_tiny_model(tok), ds, tok, TrainConfig(tokens=2304, batch_size=8, seq_len=32), RUNTIME,
                             0, tmp_path / "nine", callbacks=[saves])
    assert result["steps"] == 9 and saves.steps == []


def test_writing_resumable_checkpoints_or_not_gives_the_same_weights(tiny_corpus, tmp_path, monkeypatch):
    """Whether a run saves checkpoints on the way (MIN_RESUMABLE_STEPS) changes no weight: 6 steps both ways."""
    from safetensors.torch import load_file

    from cptlib.training import train

    tok = load_tokenizer(tiny_corpus / "tokenizer")
    ds = packed_lm_dataset([tiny_corpus / "corpus.jsonl"], tok, 32, seed=0)
    cfg = TrainConfig(tokens=1536, batch_size=8, seq_len=32)
    train_causal_lm(_tiny_model(tok), ds, tok, cfg, RUNTIME, 0, tmp_path / "none")  # 6 < 10: no checkpoint
    monkeypatch.setattr(train, "MIN_RESUMABLE_STEPS", 1)
    train_causal_lm(_tiny_model(tok), ds, tok, cfg, RUNTIME, 0, tmp_path / "saved")  # checkpoints at 2, 4
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("none", "saved"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_milestones_closer_than_a_step_are_an_error(tiny_corpus, tmp_path):
    tok = load_tokenizer(tiny_corpus / "tokenizer")
    ds = packed_lm_dataset([tiny_corpus / "corpus.jsonl"], tok, 32, seed=0)
    cfg = TrainConfig(tokens=1024, batch_size=8, seq_len=32, milestones=[100, 200])
    with pytest.raises(ValueError, match="closer than one optimizer step"):
        train_causal_lm(_tiny_model(tok), ds, tok, cfg, RUNTIME, 0, tmp_path)


def _write_chat(path, turns):
    import json

    path.write_text(json.dumps({"messages": turns}) + "\n")


def test_sft_trains_on_assistant_tokens_and_end_token_only(tiny_corpus, tmp_path):
    tok = load_tokenizer(tiny_corpus / "tokenizer")
    _write_chat(tmp_path / "chat.jsonl", [
        {"role": "system", "content": "the city"},
        {"role": "user", "content": "the company"},
        {"role": "assistant", "content": "born in the north"},
    ])
    (example,) = sft_dataset(tmp_path / "chat.jsonl", tok, 128, seed=0)
    trained = [t for t in example["labels"] if t != -100]
    assert tok.decode(trained) == "born in the north<|end|>"
    first = next(i for i, t in enumerate(example["labels"]) if t != -100)
    assert tok.decode(example["input_ids"][:first]).endswith("<|assistant|>\n")  # headers are not trained
    # ... the reply and its end token are, the newline the template puts after the turn is not.
    assert example["labels"][first:-1] == example["input_ids"][first:-1]
    assert example["labels"][-1] == -100 and tok.decode(example["input_ids"][-1:]) == "\n"
    assert len(example["attention_mask"]) == len(example["input_ids"])


def test_sft_too_long_names_the_limit(tiny_corpus, tmp_path):
    tok = load_tokenizer(tiny_corpus / "tokenizer")
    _write_chat(tmp_path / "chat.jsonl", [{"role": "user", "content": "the " * 50},
                                          {"role": "assistant", "content": "a"}])
    with pytest.raises(ValueError, match=r"1 conversations in .* longer than sft.max_len=16 tokens"):
        sft_dataset(tmp_path / "chat.jsonl", tok, 16, seed=0)


def test_missing_training_file_says_what_to_do(tiny_corpus, tmp_path):
    tok = load_tokenizer(tiny_corpus / "tokenizer")
    with pytest.raises(FileNotFoundError, match="build the testbed first"):
        packed_lm_dataset([tmp_path / "nope.jsonl"], tok, 32, seed=0)


def test_tokenized_documents_are_cached_by_the_content_of_files_and_tokenizer(tiny_corpus, tmp_path):
    """The replay corpus is tokenized once: later calls read datasets' cache file under a fingerprint of what decides
    the tokens, and get the same documents as a fresh tokenization."""
    from cptlib.tokenizer import save_tokenizer, train_tokenizer

    tok = load_tokenizer(tiny_corpus / "tokenizer")
    files = [tiny_corpus / "corpus.jsonl"]
    first, again = tokenized_docs(files, tok), tokenized_docs(files, tok)
    fingerprint = docs_fingerprint(files, tok)
    assert [Path(c["filename"]).name for c in again.cache_files] == [f"cache-{fingerprint}.arrow"]
    assert again.cache_files == first.cache_files
    fresh = _tokenize_docs(_load_jsonl(files), tok)  # datasets' own fingerprint of the call: computed anew
    assert again["input_ids"] == first["input_ids"] == fresh["input_ids"]

    changed = tmp_path / "corpus.jsonl"
    changed.write_text(files[0].read_text().replace("city", "town", 1))
    assert docs_fingerprint([changed], tok) != fingerprint
    other = train_tokenizer((line for line in open(tiny_corpus / "replay.jsonl")), vocab_size=300)
    save_tokenizer(other, tmp_path / "tok")
    assert docs_fingerprint(files, load_tokenizer(tmp_path / "tok")) != fingerprint


def test_replay_mixes_in_the_asked_share(tiny_corpus):
    tok = load_tokenizer(tiny_corpus / "tokenizer")
    plain = packed_lm_dataset([tiny_corpus / "corpus.jsonl"], tok, 32, seed=0)
    mixed = packed_lm_dataset([tiny_corpus / "corpus.jsonl"], tok, 32, 0, [tiny_corpus / "replay.jsonl"], 0.2)
    share = 1 - len(plain) / len(mixed)
    assert 0.15 < share < 0.25


def test_training_drops_only_the_same_second_checkpoint_warning(tmp_path, caplog):
    """Tiny models write two checkpoints within a second; transformers then warns "mtime may not be reliable" and
    orders them by step (what resuming needs). Training hides that one record and nothing else, and only while it
    runs: the study's notebooks had it as their one stderr line, in cold runs only."""
    import logging

    from cptlib.training.train import _quiet_rotation

    logger = logging.getLogger("transformers.trainer_utils")
    same = "mtime may not be reliable on this filesystem, falling back to numerical ordering"
    with caplog.at_level(logging.WARNING, logger="transformers.trainer_utils"):
        with _quiet_rotation():
            logger.warning(same)
            logger.warning("another warning")
        logger.warning(same)
    assert [r.getMessage() for r in caplog.records] == ["another warning", same]


def test_fsdp_wraps_the_decoder_layer_class_found_through_public_apis():
    """FSDP's unit is the class of the decoder's layers, found with transformers' public get_decoder() (it was read
    from the private `_no_split_modules`, which names the same class for the families the study runs)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from cptlib.training.train import _layer_class

    llama = new_model(llama_config("tiny", 512, 64, 1, 2, 0), seed=0)
    qwen = Qwen2ForCausalLM(Qwen2Config(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1, vocab_size=64))
    assert (_layer_class(llama), _layer_class(qwen)) == ("LlamaDecoderLayer", "Qwen2DecoderLayer")


def test_sft_on_labelled_logits_is_the_models_own_loss_and_gradient(tiny_corpus, tmp_path):
    """runtime.sft_logits: labelled computes the output layer on the reply tokens only; its loss must be the model's
    own mean cross-entropy over them, and its gradient the same up to float rounding. (Trained weights are not
    compared: Adam turns a 1e-12 rounding difference in a near-zero gradient into a full-size step.)"""
    import json

    from transformers import DataCollatorForSeq2Seq

    from cptlib.training.train import _LabelledLogitsTrainer, train_sft

    tok = load_tokenizer(tiny_corpus / "tokenizer")
    convs = [[{"role": "user", "content": f"the company {i}"},
              {"role": "assistant", "content": "born in the north " * (i + 1)}] for i in range(4)]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps({"messages": c}) + "\n" for c in convs))
    ds = sft_dataset(tmp_path / "chat.jsonl", tok, 128, seed=0)
    model = new_model(llama_config("tiny", len(tok), 128, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id), seed=0)
    batch = DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=-100)([ds[i] for i in range(4)])
    grads = {}
    for way in ("own", "labelled"):
        model.zero_grad()
        loss = model(**batch).loss if way == "own" else _LabelledLogitsTrainer.compute_loss(None, model, batch)
        loss.backward()
        grads[way] = (loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()})
    assert torch.allclose(grads["own"][0], grads["labelled"][0], rtol=1e-6)
    for name, g in grads["own"][1].items():
        assert torch.allclose(g, grads["labelled"][1][name], rtol=1e-4, atol=1e-7), name

    model.save_pretrained(tmp_path / "init")
    fields = train_sft(tmp_path / "init", ds, tok, SFTConfig(epochs=1, lr=1e-3, batch_size=2, max_len=128),
                       RuntimeConfig(progress=False, threads=1, sft_logits="labelled"), 0, tmp_path / "out")
    assert fields["steps"] == 2 and fields["final_loss"] < 6.5


def test_labelled_logits_refuse_gradient_accumulation(tiny_corpus, tmp_path):
    from cptlib.core.errors import InputError
    from cptlib.training.train import train_sft

    runtime = RuntimeConfig(progress=False, threads=1, sft_logits="labelled", gradient_accumulation=2)
    with pytest.raises(InputError, match="sft_logits: all"):
        train_sft(tmp_path / "none", [], load_tokenizer(tiny_corpus / "tokenizer"), SFTConfig(), runtime, 0, tmp_path)


def test_drift_from_checkpoints_equals_the_in_process_drift(tiny_corpus, tmp_path):
    """Under FSDP no process holds the whole model, so the drift is read from the saved checkpoint and the parent's
    files (models.checkpoint_drift); it must be the in-process drift (weight_drift) exactly, group by group."""
    from cptlib.models import checkpoint_drift, weight_drift
    from cptlib.training.train import _drift

    tok = load_tokenizer(tiny_corpus / "tokenizer")
    config = llama_config("tiny", len(tok), 128, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    parent, child = new_model(config, seed=0), new_model(config, seed=0)
    with torch.no_grad():
        for p in child.parameters():
            p.add_(0.01 * torch.randn_like(p))
    parent.save_pretrained(tmp_path / "parent")
    child.save_pretrained(tmp_path / "child")
    weights = {k: v.detach().clone() for k, v in parent.named_parameters()}
    expected = weight_drift(child, weights)
    assert set(expected) >= {"total", "embed", "attention", "mlp"} and expected["total"] > 0
    assert checkpoint_drift(tmp_path / "child", tmp_path / "parent") == pytest.approx(expected, rel=1e-12)
    assert _drift(child, tmp_path / "child", tmp_path / "parent") == pytest.approx(expected, rel=1e-12)
    assert _drift(child, tmp_path / "child", weights) == expected
    assert _drift(child, tmp_path / "child", None) is None
