"""Residual arithmetic and merge methods on hand-worked tensors: `.venv/bin/pytest tests/test_residual_math.py`."""
from __future__ import annotations

import json
import math

import pytest
import torch
from residual_helpers import read_model, write_model

from cptlib.residual import MANIFEST_FILE, MergeMethod, ModuleFilter, Residual, apply, extract, restore
from cptlib.residual.lowrank import truncated_svd
from cptlib.residual.merge import breadcrumbs, dare, keep_top, ties

EPS32 = torch.finfo(torch.float32).eps


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


@pytest.fixture
def hand_models(tmp_path):
    base = write_model(tmp_path / "base", {"w": t([1.0, 2.0], [3.0, 4.0]), "b": t(0.5, -1.0)})
    instruct = write_model(tmp_path / "instruct", {"w": t([1.5, 2.0], [2.0, 4.25]), "b": t(0.5, -0.75)})
    target = write_model(tmp_path / "target", {"w": t([10.0, 10.0], [10.0, 10.0]), "b": t(1.0, 1.0)})
    return base, instruct, target


def test_extract_hand_worked(hand_models, tmp_path):
    """Θr = instruct − base:  w: [[1.5−1, 2−2], [2−3, 4.25−4]] = [[0.5, 0], [−1, 0.25]];  b: [0, 0.25].
    ‖Θr_w‖ = sqrt(0.25 + 1 + 0.0625) = sqrt(1.3125);  ‖θ_base,w‖ = sqrt(1 + 4 + 9 + 16) = sqrt(30)."""
    base, instruct, _ = hand_models
    out = extract(base, instruct, tmp_path / "r", progress=False)
    stored = read_model(out)
    assert torch.equal(stored["w"], t([0.5, 0.0], [-1.0, 0.25]))
    assert torch.equal(stored["b"], t(0.0, 0.25))
    norms = json.loads((out / MANIFEST_FILE).read_text())["tensors"]["w"]
    assert norms["residual_norm"] == pytest.approx(math.sqrt(1.3125), rel=1e-12)
    assert norms["base_norm"] == pytest.approx(math.sqrt(30), rel=1e-12)


def test_apply_hand_worked_alpha_half(hand_models, tmp_path):
    """θ = target + 0.5·Θr:  w: [[10 + 0.25, 10], [10 − 0.5, 10 + 0.125]];  b: [1, 1 + 0.125]."""
    base, instruct, target = hand_models
    r = extract(base, instruct, tmp_path / "r", progress=False)
    out = read_model(apply(target, r, tmp_path / "o", alpha=0.5, progress=False))
    assert torch.equal(out["w"], t([10.25, 10.0], [9.5, 10.125]))
    assert torch.equal(out["b"], t(1.0, 1.125))


def random_models(tmp_path, shape=(64, 32), dtype=torch.float32):
    """base ~ N(0, 0.02); instruct = fl(base + d), d ~ N(0, 0.01), as one fine-tuning step leaves it; cpt alike."""
    gen = torch.Generator().manual_seed(0)
    b = 0.02 * torch.randn(shape, generator=gen)
    i = b + 0.01 * torch.randn(shape, generator=gen)
    c = b + 0.01 * torch.randn(shape, generator=gen)
    return [write_model(tmp_path / n, {"x.weight": x.to(dtype)}) for n, x in (("base", b), ("instruct", i), ("cpt", c))]


def test_apply_base_plus_residual_is_instruct_bitwise_fp32(tmp_path):
    """apply(base, instruct − base) == instruct bit for bit, because fl(i − b) is exact here: when
    i = fl(b + d), i − b is representable (the Fast2Sum lemma, for |d| ≤ |b|, and in practice beyond), so
    b + fl(i − b) = i exactly. test_fp32_round_trip_limit shows inputs where it is not."""
    base, instruct, _ = random_models(tmp_path)
    r = extract(base, instruct, tmp_path / "r", progress=False)
    out = apply(base, r, tmp_path / "o", progress=False)
    assert torch.equal(read_model(out)["x.weight"], read_model(instruct)["x.weight"])


def test_fp32_round_trip_limit_and_float64_residual(tmp_path):
    """i = 1 + 2⁻²³, b = −1.5: i − b = 2.5 + 2⁻²³ lies halfway between fp32 neighbours 2.5 and 2.5 + 2⁻²²
    (spacing 2⁻²² in [2, 4)), rounds to even 2.5; b + 2.5 = 1.0 ≠ i. A float64 residual holds 2.5 + 2⁻²³
    exactly, and b + it = i exactly, so `--dtype float64` makes the round trip exact for fp32 models."""
    i = torch.tensor([1.0 + 2**-23], dtype=torch.float32)
    base = write_model(tmp_path / "base", {"x": torch.tensor([-1.5])})
    instruct = write_model(tmp_path / "instruct", {"x": i})
    r32 = extract(base, instruct, tmp_path / "r32", progress=False)
    assert read_model(apply(base, r32, tmp_path / "o32", progress=False))["x"].item() == 1.0
    r64 = extract(base, instruct, tmp_path / "r64", dtype=torch.float64, progress=False)
    out = read_model(apply(base, r64, tmp_path / "o64", progress=False))["x"]
    assert out.dtype == torch.float32 and torch.equal(out, i)


def test_bf16_models_round_trip_exactly_with_fp32_residual(tmp_path):
    """bf16 has 8 significant bits, fp32 24: the difference of two bf16 values within 2¹⁵ of each other is
    exact in fp32, so even unrelated bf16 weights (not a fine-tune) round-trip bit for bit."""
    gen = torch.Generator().manual_seed(1)
    b, i = (torch.randn(4096, generator=gen).bfloat16() for _ in range(2))
    base, instruct = write_model(tmp_path / "b", {"x": b}), write_model(tmp_path / "i", {"x": i})
    out = read_model(apply(base, extract(base, instruct, tmp_path / "r", progress=False), tmp_path / "o", progress=False))
    assert out["x"].dtype == torch.bfloat16 and torch.equal(out["x"], i)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_alpha_zero_gives_target_bitwise(tmp_path, dtype):
    base, instruct, cpt = random_models(tmp_path, dtype=dtype)
    out = restore(base, instruct, cpt, tmp_path / "o", alpha=0.0, progress=False)
    assert torch.equal(read_model(out)["x.weight"], read_model(cpt)["x.weight"])


def test_restore_equals_extract_then_apply_bitwise(tmp_path):
    base, instruct, cpt = random_models(tmp_path)
    one_pass = restore(base, instruct, cpt, tmp_path / "o1", alpha=0.7, progress=False)
    two_pass = apply(cpt, extract(base, instruct, tmp_path / "r", progress=False), tmp_path / "o2", alpha=0.7, progress=False)
    assert torch.equal(read_model(one_pass)["x.weight"], read_model(two_pass)["x.weight"])


def test_sum_of_residuals_equals_applying_one_then_the_other(tmp_path):
    """t + (τ1 + τ2) and (t + τ1) + τ2 round differently; each has two roundings of at most ½ ulp of sums
    bounded by |t| + |τ1| + |τ2|, so they differ by at most 2·eps·(|t| + |τ1| + |τ2|) per entry (fp32 tolerance)."""
    base, instruct, cpt = random_models(tmp_path)
    other = write_model(tmp_path / "other", {"x.weight": 0.02 * torch.randn(64, 32, generator=torch.Generator().manual_seed(5))})
    r1, r2 = Residual.from_models(base, instruct), Residual.from_models(base, other)
    both = read_model((r1 + r2).apply_to(cpt, tmp_path / "both", progress=False))["x.weight"]
    first = r1.apply_to(cpt, tmp_path / "first", progress=False)
    seq = read_model(r2.apply_to(first, tmp_path / "seq", progress=False))["x.weight"]
    tensors = {n: read_model(p)["x.weight"] for n, p in (("b", base), ("i", instruct), ("o", other), ("c", cpt))}
    bound = 2 * EPS32 * (tensors["c"].abs() + (tensors["i"] - tensors["b"]).abs() + (tensors["o"] - tensors["b"]).abs())
    assert ((both - seq).abs() <= bound).all()
    assert not torch.equal(both, read_model(cpt)["x.weight"])


def test_scaling_and_negation(tmp_path):
    """0.5·r + 0.5·r == r exactly (halving is exact); r + (−r) == 0 exactly (x + (−x) = 0), so it gives the target."""
    base, instruct, cpt = random_models(tmp_path)
    r = Residual.from_models(base, instruct)
    halves = read_model((r * 0.5 + 0.5 * r).apply_to(cpt, tmp_path / "h", progress=False))["x.weight"]
    assert torch.equal(halves, read_model(r.apply_to(cpt, tmp_path / "r", progress=False))["x.weight"])
    zero = read_model((r - r).apply_to(cpt, tmp_path / "z", progress=False))["x.weight"]
    assert torch.equal(zero, read_model(cpt)["x.weight"])
    assert torch.equal((-r).tensor("x.weight"), -r.tensor("x.weight"))


def test_ties_hand_worked_two_vectors():
    """density 0.5 keeps 2 of 4 per vector: τ1 = [3, −1, 0.5, −4] → [3, 0, 0, −4]; τ2 = [−2, −3, 1, 0.5] →
    [−2, −3, 0, 0]. Elected sign of the sums [1, −3, 0, −4]: [+, −, 0, −]. Disjoint mean of agreeing
    non-zero entries: [3 (τ2's −2 disagrees), −3 (τ1's 0 does not count), 0, −4]."""
    merged = ties([t(3.0, -1.0, 0.5, -4.0), t(-2.0, -3.0, 1.0, 0.5)], density=0.5)
    assert torch.equal(merged, t(3.0, -3.0, 0.0, -4.0))


def test_ties_agreeing_entries_are_averaged():
    """τ1 = [2, 4], τ2 = [6, −1], density 1: signs elected from [8, 3] are [+, +]; entry 0 averages
    (2 + 6)/2 = 4; entry 1 keeps only τ1's 4 (τ2's −1 disagrees)."""
    assert torch.equal(ties([t(2.0, 4.0), t(6.0, -1.0)], density=1.0), t(4.0, 4.0))


def test_keep_top_hand_worked():
    """[0.1, −5, 2, −0.3, 4] with density 0.4 keeps round(0.4·5) = 2 largest magnitudes: −5 and 4."""
    x = t(0.1, -5.0, 2.0, -0.3, 4.0)
    assert torch.equal(x * keep_top(x, 0.4), t(0.0, -5.0, 0.0, 0.0, 4.0))


def test_ties_density_one_on_one_residual_equals_task_arithmetic(tmp_path):
    base, instruct, cpt = random_models(tmp_path)
    r = Residual.from_models(base, instruct)
    plain = read_model(r.apply_to(cpt, tmp_path / "ta", alpha=0.8, progress=False))["x.weight"]
    tied = read_model(r.apply_to(cpt, tmp_path / "ties", alpha=0.8, method=MergeMethod("ties", density=1.0),
                                 progress=False))["x.weight"]
    assert torch.equal(plain, tied)


def test_dare_masks_rescales_and_is_reproducible():
    """Each entry is either dropped (0) or kept and scaled by 1/(1 − 0.75) = 4 (exact); about p = 75% drop.
    The mask depends on (seed, tensor name, term) only, not on what was computed before."""
    x = torch.randn(20000, generator=torch.Generator().manual_seed(3))
    a = dare([x.clone()], drop_rate=0.75, seed=7, name="layer.w")
    torch.randn(100)  # global RNG use in between must not matter
    b = dare([x.clone()], drop_rate=0.75, seed=7, name="layer.w")
    assert torch.equal(a, b)
    assert not torch.equal(a, dare([x.clone()], drop_rate=0.75, seed=8, name="layer.w"))
    assert not torch.equal(a, dare([x.clone()], drop_rate=0.75, seed=7, name="other.w"))
    kept = a != 0
    assert torch.equal(a[kept], x[kept] * 4)
    assert abs(1 - kept.float().mean().item() - 0.75) < 4 * math.sqrt(0.75 * 0.25 / x.numel())


def test_dare_through_apply_is_reproducible(tmp_path):
    base, instruct, cpt = random_models(tmp_path)
    r = Residual.from_models(base, instruct)
    runs = [read_model(r.apply_to(cpt, tmp_path / f"d{k}", method=MergeMethod("dare", drop_rate=0.5, seed=1),
                                  progress=False))["x.weight"] for k in range(2)]
    assert torch.equal(runs[0], runs[1])


def test_breadcrumbs_hand_worked():
    """Magnitudes 1..10; γ = 0.1 drops round(0.1·10) = 1 largest (|−10|); density 0.5 keeps the next 5
    (9, −8, 7, −6, 5); the 4 smallest (1, −2, 3, −4) are dropped."""
    x = t(1.0, -2.0, 3.0, -4.0, 5.0, -6.0, 7.0, -8.0, 9.0, -10.0)
    assert torch.equal(breadcrumbs([x], density=0.5, gamma=0.1), t(0, 0, 0, 0, 5.0, -6.0, 7.0, -8.0, 9.0, 0))


def test_lowrank_hand_worked():
    """Θ = diag(3, 2, 1) has singular values 3, 2, 1; rank 1 keeps 3·e1·e1ᵀ = diag(3, 0, 0) with relative
    error sqrt(2² + 1²) / sqrt(3² + 2² + 1²) = sqrt(5/14)."""
    us, vh, error = truncated_svd(torch.diag(t(3.0, 2.0, 1.0)), 1)
    assert torch.allclose(us @ vh, torch.diag(t(3.0, 0.0, 0.0)), atol=1e-6)
    assert error == pytest.approx(math.sqrt(5 / 14), rel=1e-6)


def test_lowrank_residual_stores_factors_and_applies_like_full(tmp_path):
    """A rank-2 residual of a 64×32 matrix stores 2·(64 + 32) = 192 numbers instead of 2048; when Θr has
    rank 2 the approximation is exact up to fp32 SVD rounding, and the 1-D tensor is stored whole."""
    gen = torch.Generator().manual_seed(4)
    b = 0.02 * torch.randn(64, 32, generator=gen)
    delta = 0.01 * torch.randn(64, 2, generator=gen) @ torch.randn(2, 32, generator=gen)
    base = write_model(tmp_path / "b", {"m.weight": b, "v.weight": torch.ones(8)})
    instruct = write_model(tmp_path / "i", {"m.weight": b + delta, "v.weight": torch.full((8,), 2.0)})
    r = extract(base, instruct, tmp_path / "r", rank=2, progress=False)
    manifest = json.loads((r / MANIFEST_FILE).read_text())
    assert manifest["size"] == {"stored_bytes": (192 + 8) * 4, "full_bytes": (2048 + 8) * 4}
    assert manifest["tensors"]["m.weight"]["relative_error"] < 1e-6
    assert sorted(read_model(r)) == ["m.weight.svd_US", "m.weight.svd_Vh", "v.weight"]
    out = read_model(apply(base, r, tmp_path / "o", progress=False))
    assert torch.allclose(out["m.weight"], b + delta, atol=1e-7)
    assert torch.equal(out["v.weight"], torch.full((8,), 2.0))


def layered(tmp_path, name, value):
    names = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight",
             "model.layers.0.input_layernorm.weight", "lm_head.weight"]
    return write_model(tmp_path / name, {n: torch.full((4, 2), value) for n in names})


@pytest.mark.parametrize("presets, changed", [
    (("attention",), {"model.layers.0.self_attn.q_proj.weight"}),
    (("mlp",), {"model.layers.0.mlp.up_proj.weight"}),
    (("no-embeddings",), {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight",
                          "model.layers.0.input_layernorm.weight"}),
])
def test_module_filter_presets(tmp_path, presets, changed):
    base, instruct, target = (layered(tmp_path, n, v) for n, v in (("b", 1.0), ("i", 2.0), ("t", 5.0)))
    out = restore(base, instruct, target, tmp_path / "o", module_filter=ModuleFilter(presets=presets), progress=False)
    tensors = read_model(out)
    assert {n for n, x in tensors.items() if x[0, 0] == 6.0} == changed
    assert {n for n, x in tensors.items() if x[0, 0] == 5.0} == set(tensors) - changed
    statuses = json.loads((out / "cptlib_manifest.json").read_text())["tensors"]
    assert all(statuses[n]["status"].startswith("filtered") for n in set(tensors) - changed)


def test_module_filter_regex_and_exclude(tmp_path):
    base, instruct, target = (layered(tmp_path, n, v) for n, v in (("b", 1.0), ("i", 2.0), ("t", 5.0)))
    f = ModuleFilter(include=("re:layers\\.0\\.",), exclude=("*layernorm*",))
    tensors = read_model(restore(base, instruct, target, tmp_path / "o", module_filter=f, progress=False))
    assert {n for n, x in tensors.items() if x[0, 0] == 6.0} == {"model.layers.0.self_attn.q_proj.weight",
                                                                "model.layers.0.mlp.up_proj.weight"}


@pytest.mark.parametrize("policy, rows_changed", [("slice", 4), ("skip", 0)])
def test_embed_policy_on_target_with_more_vocabulary(tmp_path, policy, rows_changed):
    """Residual 4 vocabulary rows (2 − 1 = 1 each), target 6 rows of 5: slice adds 1 to rows 0–3 only
    (rows 4–5 are tokens the residual knows nothing about); skip keeps the target's embeddings."""
    base = write_model(tmp_path / "b", {"model.embed_tokens.weight": torch.ones(4, 2), "w": torch.ones(2)})
    instruct = write_model(tmp_path / "i", {"model.embed_tokens.weight": torch.full((4, 2), 2.0), "w": torch.ones(2)})
    target = write_model(tmp_path / "t", {"model.embed_tokens.weight": torch.full((6, 2), 5.0), "w": torch.ones(2)})
    out = read_model(restore(base, instruct, target, tmp_path / "o", embed_policy=policy, progress=False))
    expected = torch.full((6, 2), 5.0)
    expected[:rows_changed] = 6.0
    assert torch.equal(out["model.embed_tokens.weight"], expected)


def test_extract_slice_when_instruct_added_tokens(tmp_path):
    """Instruct added 2 token rows (6 vs 4): with slice the residual covers the 4 rows both have."""
    base = write_model(tmp_path / "b", {"lm_head.weight": torch.ones(4, 3)})
    instruct = write_model(tmp_path / "i", {"lm_head.weight": torch.full((6, 3), 3.0)})
    r = extract(base, instruct, tmp_path / "r", embed_policy="slice", progress=False)
    assert torch.equal(read_model(r)["lm_head.weight"], torch.full((4, 3), 2.0))
