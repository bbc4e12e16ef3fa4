"""The residual engine's choices, without torch: what the command line offers (`cptlib residual --help` loads this
module alone) and what the engine's modules accept."""
# Defined here, in the engine, and imported by cptlib.config, where profiles validate them without torch (the merge
# methods, with their parameters, are the registered classes of cptlib.residual.methods, also without torch).
MODULE_SUBSETS = ("attention", "mlp", "no-embeddings", "no-norms")  # the names of merge.FILTER_PRESETS (tests check)

EMBED_POLICIES = ("error", "skip", "slice")  # vocabulary rows that differ: refuse, keep the target's, or the shared rows
DEFAULT_SHARD_SIZE = "5GB"  # transformers' own default for save_pretrained
VECTOR_POLICIES = ("save", "drop")  # a PEFT adapter's norm weights: modules_to_save, or left to the target
EMBEDDING_POLICIES = ("lora", "drop")  # a PEFT adapter's embeddings (and a tied lm_head)
DTYPES = ("float32", "float64", "bfloat16", "float16")  # a residual's storage dtype, by torch's names

__all__ = ["DEFAULT_SHARD_SIZE", "DTYPES", "EMBED_POLICIES", "EMBEDDING_POLICIES", "MODULE_SUBSETS", "VECTOR_POLICIES"]
