"""`cptlib build`, `cptlib cpt` and `cptlib ancestors`: the command line of cptlib.family and cptlib.family.ancestors
(the heavy modules imported inside the commands: a fast `--help`)."""
from __future__ import annotations

from cptlib.family import MEMBERS
from cptlib.core.errors import InputError


def _seed(text: str) -> int:
    """A training seed: train_seeds forbids negative ones, so `--seed -1` is refused here, not sent to add it there."""
    import argparse

    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0 (a training seed, e.g. --seed 0), got {text!r}")
    return seed


def register(subparsers) -> None:
    build = subparsers.add_parser(
        "build", help="build the testbed data and resolve (or train) the model family of a profile",
        description="Build (or reuse: stages are content-addressed) the synthetic testbed, then the model family "
        "base_v1, base_v2, instruct_v1, instruct_v2, other_family, other_instruct for each training seed: resolved "
        "from models/<profile>/ when the profile sets released_ancestors (see `cptlib ancestors`), else trained.",
    )
    build.add_argument("--profile", default="default", help="params/<profile>.yaml or a YAML path (default: default)")
    build.add_argument("--seed", type=_seed, action="append",
                       help="training seed(s); default: the profile's train_seeds")
    build.add_argument("--data-only", action="store_true", help="only the testbed data and tokenizer")
    build.set_defaults(func=_build_command)

    run_cpt = subparsers.add_parser(
        "cpt", help="continued pre-training of a family member on the era-B news",
        description="CPT of one family member with the profile's `cpt` recipe; prints the output directory.",
    )
    run_cpt.add_argument("--profile", default="default")
    run_cpt.add_argument("--model", required=True, choices=MEMBERS, help="which family member to continue")
    run_cpt.add_argument("--seed", type=_seed, default=None, help="training seed (default: the profile's first)")
    run_cpt.set_defaults(func=_cpt_command)


    anc = subparsers.add_parser(
        "ancestors", help="train and release the testbed ancestors into models/<profile>/, or check them",
        description="build: train (or reuse, stages are content-addressed) every member a model developer releases "
        "-- base_v1, base_v2, instruct_v1, instruct_v2, other_family, other_instruct, and base + instruct of each "
        "other size of model.sizes -- and export them into models/<profile>/<member>/ (save_pretrained files and "
        "release.json with sha256, recipe, data, tokens, wall time, drift, commit, command, CPU). check: verify the "
        "release against its hashes and against the profile's recipe and data, without training.",
    )
    anc.add_argument("action", choices=["build", "check"])
    anc.add_argument("--profile", default="default", help="params/<profile>.yaml (default: default)")
    anc.add_argument("--reuse-released", action="store_true",
                     help="build: first put the committed members back into build/stages as the stages their "
                     "release.json records, so that only members whose recipe or data changed are trained (e.g. a new "
                     "SFT mix retrains the instruct models, not the bases); each reused member's new release.json "
                     "names the release it came from (reused_from)")
    anc.set_defaults(func=_ancestors_command)


def _ancestors_command(args) -> int:
    from cptlib.family import ancestors
    from cptlib.config import load_profile
    from cptlib.family.build import testbed_data

    profile = load_profile(args.profile)
    if not profile.released_ancestors:
        raise InputError(f"profile {profile.name!r} trains its family in the study (released_ancestors: false); "
                         "set released_ancestors: true to release and resolve ancestors")
    if args.action == "build":
        if args.reuse_released:
            reused = ancestors.reuse_release(profile)
            print(f"reusing {len(reused)} committed members as finished stages: {', '.join(reused) or 'none'}")
        data, stages = ancestors.train_members(profile)
        command = f"make ancestors PROFILE={profile.name}" + (" REUSE=1" if args.reuse_released else "")
        root = ancestors.export(profile, data, stages, command)
        print(f"released {len(stages)} members into {root}")
    data = testbed_data(profile)
    for member in ancestors.member_names(profile):
        ancestors.verify(profile, member, data)
    rows = ancestors.summary(profile)
    print(f"{'member':<24}{'params':>10}{'tokens':>11}{'examples':>9}{'drift':>8}{'seconds':>9}{'MB':>7}")
    for r in rows:
        print(f"{r['member']:<24}{r['n_params'] or 0:>10,}{r['tokens'] or 0:>11,}{r['sft_examples'] or 0:>9}"
              f"{r['drift'] or 0:>8.3f}{r['wall_seconds'] or 0:>9.0f}{r['mb']:>7.1f}")
    print(f"all {len(rows)} members match their release.json and profile {profile.name!r}")
    return 0


def _build_command(args) -> int:
    from cptlib.config import load_profile
    from cptlib.family.kind import family_for

    profile = load_profile(args.profile)
    family_for(profile).check_sources()  # before torch is imported: an unreachable checkpoint fails in about a second
    from cptlib.family.resolve import build_family
    from cptlib.family.build import testbed_data, tokenizer_stage

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
    from cptlib.family.kind import family_for

    profile = load_profile(args.profile)
    family_for(profile).check_sources()
    from cptlib.family.resolve import build_family, cpt

    seed = profile.train_seeds[0] if args.seed is None else args.seed
    print(cpt(profile, build_family(profile, seed)[args.model], seed))
    return 0
