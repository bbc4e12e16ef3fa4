"""Training through transformers' Trainer: causal-LM stages with a token budget, and chat SFT.

Both write a `save_pretrained` model directory (weights, tokenizer, chat template, generation config).
Work happens in a stage's `.partial` directory (see cptlib.core.stages): Trainer checkpoints there let a killed
run resume and end bitwise equal to an uninterrupted one. Under `torchrun` (cptlib.training.launch) the same code
runs in every process, Trainer does DDP or FSDP (`runtime.strategy`), and only rank 0 writes files.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    DataCollatorForLanguageModeling,
    AutoModelForCausalLM,
    DataCollatorForSeq2Seq,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from cptlib.config import Profile, RuntimeConfig, SFTConfig, TrainConfig
from cptlib.models import checkpoint_drift, n_params, weight_drift
from cptlib.core.errors import CptlibError, InputError
from cptlib.core.pool import env_threads
from cptlib.core.files import write_json_atomic

from cptlib.tokenizer import save_tokenizer

CHECKPOINTS = "checkpoints"
MILESTONES = "milestones"


class NonFiniteLossError(CptlibError, RuntimeError):
    """The loss became NaN or inf: the run stops instead of training on garbage."""


class _CheckedTrainer(Trainer):
    """Trainer that stops at the first non-finite loss, naming the step and what to change."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        step = self.state.global_step + 1
        # The check syncs with the device: free on a CPU, so every step there; on a GPU only at the logging
        # steps, where Trainer syncs anyway (a NaN poisons the weights, so it is still caught there).
        if loss.device.type != "cpu" and step % self.args.logging_steps and step != self.args.max_steps:
            return loss
        if not torch.isfinite(loss):
            lr = self.optimizer.param_groups[0]["lr"]
            raise NonFiniteLossError(
                f"loss is {loss.item()} at step {step} (lr {lr:.2e}) while training "
                f"{Path(self.args.output_dir).parent}: lower the stage's lr, or set runtime.precision: fp32"
            )
        return loss


class _LabelledLogitsTrainer(_CheckedTrainer):
    """SFT with the output layer computed only where a label is (`runtime.sft_logits: labelled`). The loss is the
    model's own, the mean cross-entropy over the labelled next tokens, so the update is the same up to float rounding
    (tests/test_train.py); but a reply is ~35% of an SFT batch's tokens, and a 262k-entry vocabulary's output layer
    is most of a small model's compute (Gemma 3 270M: 52.6 against 19.5 tokens/s on one thread)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"][:, 1:]
        hidden = model.get_decoder()(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"))
        keep = labels != -100
        logits = model.get_output_embeddings()(hidden.last_hidden_state[:, :-1][keep])
        cap = getattr(model.config, "final_logit_softcapping", None)
        if cap:  # as the model's own forward does (Gemma 2)
            logits = torch.tanh(logits / cap) * cap
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[keep])
        return (loss, None) if return_outputs else loss


class _MilestoneSaver(TrainerCallback):
    """Saves the model at given optimizer steps (token milestones of the forgetting curve).

    `trainer.save_model` is called in every process (under FSDP it gathers the shards, a collective), and
    writes in rank 0 only; which milestones exist is read once at the start, so all ranks agree."""

    def __init__(self, step_tokens: dict[int, int], out: Path, tokenizer, parent: dict | Path | None):
        self.step_tokens, self.out, self.tokenizer, self.parent = step_tokens, out, tokenizer, parent
        self.trainer: Trainer | None = None  # set once the Trainer exists
        self.done = {p.name for p in out.glob("tokens-*") if not p.name.endswith(".tmp")} if out.is_dir() else set()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        tokens = self.step_tokens.get(state.global_step)
        final = self.out / f"tokens-{tokens:012d}" if tokens is not None else None
        if final is None or final.name in self.done:  # saved before an interruption; resuming reproduces it
            return
        tmp = final.with_name(final.name + ".tmp")
        if state.is_world_process_zero:
            shutil.rmtree(tmp, ignore_errors=True)
        self.trainer.save_model(str(tmp))
        if state.is_world_process_zero:
            save_tokenizer(self.tokenizer, tmp)
            drift = _drift(model, tmp, self.parent)
            write_json_atomic(tmp / "milestone.json", {"tokens": tokens, "step": state.global_step, "drift": drift})
            os.rename(tmp, final)
        self.done.add(final.name)


class _NoFinalCheckpoint(TrainerCallback):
    """No resumable checkpoint at the last step: Trainer saves one there (model, optimizer, scheduler, RNG states)
    when `save_strategy` is "steps", and `_run` saves the final model right after it and deletes the checkpoints.
    For a 135M-parameter model that checkpoint is 1.6 GB written for nothing (~6 s on this CPU). Only `should_save`
    changes, so the training itself, and the weights, are the same."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_save = False


def _drift(model, saved: Path, parent: dict | Path | None) -> dict | None:
    """The drift from the parent (rank 0): from the live model where each process holds it whole (`parent`: its
    weights), else (FSDP, `parent`: its folder) from the checkpoint just saved; None for a model trained from scratch."""
    if parent is None:
        return None
    return weight_drift(model, parent) if isinstance(parent, dict) else checkpoint_drift(saved, parent)




def configure_runtime(runtime: RuntimeConfig) -> None:
    # The profile's threads win; then a worker's share (cptlib.core.pool); under torchrun the processes on one machine
    # share its cores.
    per_process = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    torch.set_num_threads(runtime.threads or env_threads() or per_process)


def use_bf16(runtime: RuntimeConfig) -> bool:
    """Resolve `precision: auto`. On a CPU without bf16 units (AVX-512 BF16 / AMX) autocast emulates bf16
    and measured ~25x slower than fp32 here (bench/train_throughput.py), so auto means fp32 there."""
    if runtime.precision != "auto":
        return runtime.precision == "bf16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    from cptlib.core.provenance import cpu

    return bool({"avx512_bf16", "amx_tile"} & set(cpu()["features"]))  # /proc/cpuinfo; elsewhere fp32


def _parallel_args(runtime: RuntimeConfig, layer_class: str | None) -> dict:
    """TrainingArguments for the strategy: FSDP full-shard with the decoder layers auto-wrapped (activation
    checkpointing inside FSDP, as transformers asks), or DDP / one process with plain gradient checkpointing."""
    if runtime.strategy == "fsdp":
        if layer_class is None:
            raise ValueError("FSDP auto-wrap needs the model's decoder layer class (its decoder has no `layers` list)")
        return {"fsdp": "full_shard auto_wrap", "fsdp_config": {
            "transformer_layer_cls_to_wrap": [layer_class], "activation_checkpointing": runtime.activation_checkpointing,
            "state_dict_type": "FULL_STATE_DICT"}}
    return {"activation_checkpointing": runtime.activation_checkpointing, "ddp_find_unused_parameters": False}


MIN_RESUMABLE_STEPS = 10  # shorter runs write no resumable checkpoint (they restart if interrupted)


def _training_args(out: Path, cfg: TrainConfig | SFTConfig, runtime: RuntimeConfig, seed: int, max_steps: int,
                   batch_size: int, layer_class: str | None = None) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(out / CHECKPOINTS),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=runtime.gradient_accumulation,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.schedule,
        warmup_steps=int(cfg.warmup_frac * max_steps),
        weight_decay=cfg.weight_decay,
        optim=cfg.optim if isinstance(cfg, TrainConfig) else "adamw_torch",  # SFT has no choice: AdamW
        adam_beta2=0.95,
        max_grad_norm=1.0,
        bf16=use_bf16(runtime),
        torch_compile=runtime.compile,
        use_cpu=not torch.cuda.is_available(),
        seed=seed,
        data_seed=seed,
        # A few checkpoints per run are enough to resume; only the newest is kept. A run of fewer than
        # MIN_RESUMABLE_STEPS steps restarts instead: a resumable checkpoint (model, optimizer states: 1.6 GB for a
        # 135M-parameter model) would cost more than the steps it saves.
        save_strategy="steps" if max_steps >= MIN_RESUMABLE_STEPS else "no",
        save_steps=max(1, math.ceil(max_steps / 5)),
        save_total_limit=1,
        logging_steps=max(1, max_steps // 50),
        logging_nan_inf_filter=False,
        disable_tqdm=not runtime.progress,
        report_to="none",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        **_parallel_args(runtime, layer_class),
    )


def last_complete_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest checkpoint that was fully written. Trainer writes `trainer_state.json` last and does not
    write atomically, so a run killed while saving leaves a partial folder; it is removed, not resumed."""
    complete = []
    for path in ckpt_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if ckpt_dir.is_dir() else []:
        if (path / TRAINER_STATE_NAME).is_file():
            complete.append(path)
        else:
            shutil.rmtree(path)
    return max(complete, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


class _SameSecondCheckpoints(logging.Filter):
    """transformers' checkpoint rotation warns "mtime may not be reliable" whenever two checkpoints were written
    within a second, as a tiny model's are, then orders them by step number, which is what resuming needs: the
    warning says nothing about this run, and reached the study's notebooks only when they trained (cold)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "mtime may not be reliable" not in record.getMessage()


@contextlib.contextmanager
def _quiet_rotation():
    logger, rule = logging.getLogger("transformers.trainer_utils"), _SameSecondCheckpoints()
    logger.addFilter(rule)
    try:
        yield
    finally:
        logger.removeFilter(rule)


def _run(trainer: Trainer, out: Path, tokenizer, parent: dict | Path | None, n_parameters: int) -> dict:
    """Train (resuming from the newest complete checkpoint in `out`), save the final model into `out`.
    In every process; files are written by rank 0 (`save_model` gathers FSDP shards in all of them)."""
    ckpt_dir = out / CHECKPOINTS
    rank0 = trainer.is_world_process_zero()
    if rank0:  # removes a half-written checkpoint before any process looks for the newest complete one
        last_complete_checkpoint(ckpt_dir)
    trainer.accelerator.wait_for_everyone()
    resume = last_complete_checkpoint(ckpt_dir)
    with _quiet_rotation():
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.save_model(str(out))
    fields = {
        "steps": trainer.state.global_step,
        "final_loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None),
        "train_seconds": round(result.metrics["train_runtime"], 2),
        "resumed_from": Path(resume).name if resume else None,
        "n_params": n_parameters,
        "drift": _drift(trainer.model, out, parent) if rank0 else None,
        "world_size": trainer.args.world_size,
    }
    if rank0:
        save_tokenizer(tokenizer, out)
        write_json_atomic(out / "train_log.json", trainer.state.log_history)
    trainer.accelerator.wait_for_everyone()
    if rank0:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return fields


def _generation_config(tokenizer: PreTrainedTokenizerBase) -> GenerationConfig:
    """Greedy decoding with the tokenizer's special tokens, and no length cap: the length is the evaluator's
    (a checkpoint's `max_new_tokens` overrides lm-eval's `max_gen_toks` in transformers; issue 35)."""
    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )


def _load_model(init: Path | PreTrainedModel, tokenizer, runtime: RuntimeConfig) -> tuple[PreTrainedModel, dict | Path | None]:
    """The model to train (fp32 master weights; bf16 is autocast) and, when it continues a saved one, that
    parent for the drift: its weights, or under FSDP, where no process holds the whole model, its folder."""
    if isinstance(init, PreTrainedModel):
        model, parent = init, None
    else:
        model = AutoModelForCausalLM.from_pretrained(str(init), dtype=torch.float32, local_files_only=True)
        keep = runtime.strategy != "fsdp"
        parent = {k: v.detach().clone() for k, v in model.named_parameters()} if keep else Path(init)
    if isinstance(init, PreTrainedModel) or not (Path(init) / "generation_config.json").is_file():
        model.generation_config = _generation_config(tokenizer)  # a real checkpoint keeps its own
    return model, parent


def _layer_class(model: PreTrainedModel) -> str | None:
    """The decoder layer class FSDP wraps one unit each (e.g. LlamaDecoderLayer, Qwen2DecoderLayer): the class of the
    first of the decoder's `layers` (transformers' public get_decoder()); None for a model without such a list."""
    layers = getattr(model.get_decoder(), "layers", None)
    return type(layers[0]).__name__ if layers else None


def train_causal_lm(
    init: Path | PreTrainedModel,
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    cfg: TrainConfig,
    runtime: RuntimeConfig,
    seed: int,
    out: Path,
    callbacks: Sequence[TrainerCallback] = (),
) -> dict:
    """Pre-training / CPT: `cfg.tokens` tokens of packed `cfg.seq_len` blocks, milestones saved on the way."""
    configure_runtime(runtime)
    model, parent = _load_model(init, tokenizer, runtime)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    tokens_per_step = cfg.batch_size * cfg.seq_len * world * runtime.gradient_accumulation
    max_steps = max(1, round(cfg.tokens / tokens_per_step))
    step_tokens = {max(1, round(m / tokens_per_step)): m for m in cfg.milestones}
    if len(step_tokens) < len(cfg.milestones):
        raise InputError(
            f"milestones {cfg.milestones} are closer than one optimizer step ({tokens_per_step} tokens); "
            "space them further apart or lower batch_size / seq_len"
        )
    saver = _MilestoneSaver(step_tokens, out / MILESTONES, tokenizer, parent)
    n_parameters = n_params(model)
    trainer = _CheckedTrainer(
        model=model,
        args=_training_args(out, cfg, runtime, seed, max_steps, cfg.batch_size, _layer_class(model)),
        train_dataset=dataset,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        processing_class=tokenizer,
        callbacks=[saver, _NoFinalCheckpoint(), *callbacks],
    )
    saver.trainer = trainer
    fields = _run(trainer, out, tokenizer, parent, n_parameters)
    return {**fields, "tokens": fields["steps"] * tokens_per_step, "tokens_per_step": tokens_per_step,
            "milestone_steps": {str(s): t for s, t in sorted(step_tokens.items())}}


def train_sft(
    init: Path,
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    cfg: SFTConfig,
    runtime: RuntimeConfig,
    seed: int,
    out: Path,
    callbacks: Sequence[TrainerCallback] = (),
) -> dict:
    """Supervised fine-tuning on chat examples (labels already mask everything but assistant tokens)."""
    if runtime.sft_logits == "labelled" and (runtime.gradient_accumulation > 1 or runtime.nproc > 1):
        raise InputError("runtime.sft_logits: labelled averages the loss per batch of one process; with "
                         "gradient_accumulation or nproc > 1 use sft_logits: all")
    configure_runtime(runtime)
    model, parent = _load_model(init, tokenizer, runtime)
    n_parameters = n_params(model)
    max_steps = max(1, math.ceil(cfg.epochs * len(dataset) / cfg.batch_size))
    trainer_class = _LabelledLogitsTrainer if runtime.sft_logits == "labelled" else _CheckedTrainer
    trainer = trainer_class(
        model=model,
        args=_training_args(out, cfg, runtime, seed, max_steps, cfg.batch_size, _layer_class(model)),
        train_dataset=dataset,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100),
        processing_class=tokenizer,
        callbacks=[_NoFinalCheckpoint(), *callbacks],
    )
    fields = _run(trainer, out, tokenizer, parent, n_parameters)
    trained = sum(sum(1 for t in x if t != -100) for x in dataset["labels"])
    return {**fields, "examples": len(dataset), "trained_tokens_per_epoch": trained}


def runtime_spec(profile: Profile) -> dict:
    # Precision, compilation and the global batch change the numbers; threads, progress bars, the strategy
    # (DDP and FSDP compute the same update) and activation checkpointing do not.
    r = profile.runtime
    spec = {"bf16": use_bf16(r), "compile": r.compile}
    if r.sft_logits != "all":  # absent at the default, so existing stage keys stay as they were
        spec["sft_logits"] = r.sft_logits
    if r.nproc * r.gradient_accumulation > 1:  # absent at 1, so single-process stage keys stay as they were
        spec["batch_multiplier"] = r.nproc * r.gradient_accumulation
    return spec
