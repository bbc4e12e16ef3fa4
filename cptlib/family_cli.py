"""`cptlib build` and `cptlib cpt`: the command line of cptlib.family (imported lazily: fast `--help`)."""
from __future__ import annotations

# Kept in sync with cptlib.family.MEMBERS by tests/test_cli.py; importing it here would load torch.
MEMBERS = ("base_v1", "base_v2", "instruct_v1", "instruct_v2", "other_family", "other_instruct")


def register(subparsers) -> None:
    build = subparsers.add_parser(
        "build", help="build the testbed data, tokenizer and model family of a profile",
        description="Build (or reuse: stages are content-addressed) the synthetic testbed and the model "
        "family base_v1, base_v2, instruct_v1, instruct_v2, other_family, other_instruct for each training seed.",
    )
    build.add_argument("--profile", default="default", help="params/<profile>.yaml or a YAML path (default: default)")
    build.add_argument("--seed", type=int, action="append", help="training seed(s); default: the profile's train_seeds")
    build.add_argument("--data-only", action="store_true", help="only the testbed data and tokenizer")
    build.set_defaults(func=_build_command)

    run_cpt = subparsers.add_parser(
        "cpt", help="continued pre-training of a family member on the era-B news",
        description="CPT of one family member with the profile's `cpt` recipe; prints the output directory.",
    )
    run_cpt.add_argument("--profile", default="default")
    run_cpt.add_argument("--model", required=True, choices=MEMBERS, help="which family member to continue")
    run_cpt.add_argument("--seed", type=int, default=None, help="training seed (default: the profile's first)")
    run_cpt.set_defaults(func=_cpt_command)


def _build_command(args) -> int:
    from cptlib.config import load_profile
    from cptlib.family import build_family, testbed_data, tokenizer_stage

    profile = load_profile(args.profile)
    if args.data_only:
        data = testbed_data(profile)
        print(f"testbed   {data}\ntokenizer {tokenizer_stage(profile, data)}")
        return 0
    for seed in args.seed or profile.train_seeds:
        for name, path in build_family(profile, seed).items():
            print(f"seed {seed}  {name:<12} {path}")
    return 0


def _cpt_command(args) -> int:
    from cptlib.config import load_profile
    from cptlib.family import build_family, cpt

    profile = load_profile(args.profile)
    seed = profile.train_seeds[0] if args.seed is None else args.seed
    print(cpt(profile, build_family(profile, seed)[args.model], seed))
    return 0
