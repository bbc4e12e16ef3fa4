"""A CPT-like training job run in a subprocess by test_train.py: `python _train_job.py DATA OUT [KILL_AT_STEP]`.

With KILL_AT_STEP the process SIGKILLs itself at that optimizer step (after a checkpoint was written), the
way an out-of-memory killer or a pulled plug would end it: no Python cleanup runs.
"""
import os
import signal
import sys
from pathlib import Path

from transformers import TrainerCallback

from cptlib.config import RuntimeConfig, TrainConfig
from cptlib.training.data import packed_lm_dataset
from cptlib.models import llama_config, new_model
from cptlib.tokenizer import load_tokenizer
from cptlib.training.train import train_causal_lm

data, out = Path(sys.argv[1]), Path(sys.argv[2])
kill_at = int(sys.argv[3]) if len(sys.argv) > 3 else None


class KillAt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


tok = load_tokenizer(data / "tokenizer")
cfg = TrainConfig(tokens=20 * 8 * 32, lr=3e-3, batch_size=8, seq_len=32, milestones=[256, 2560])
config = llama_config("tiny", len(tok), cfg.seq_len, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
ds = packed_lm_dataset([data / "corpus.jsonl"], tok, cfg.seq_len, seed=0)
out.mkdir(parents=True, exist_ok=True)
train_causal_lm(new_model(config, seed=0), ds, tok, cfg, RuntimeConfig(progress=False, threads=1), 0, out,
                callbacks=[KillAt()] if kill_at else [])
