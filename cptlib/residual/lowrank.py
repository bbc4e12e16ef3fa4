"""Low-rank residuals: each matrix Θ ≈ (U·diag(S))[:, :r] · Vh[:r] by truncated SVD (Eckart–Young optimal).

A low-rank residual directory stores, for a matrix `W`, the tensors `W.svd_US` (m×r) and `W.svd_Vh` (r×n);
vectors and matrices too small to gain from it (r·(m+n) ≥ m·n) are stored whole under their own name.
"""
from __future__ import annotations

import math

import torch

US_SUFFIX, VH_SUFFIX = ".svd_US", ".svd_Vh"


def factorizes(shape: tuple[int, ...], rank: int) -> bool:
    """Whether storing rank-r factors takes fewer numbers than the matrix itself."""
    return len(shape) == 2 and rank * (shape[0] + shape[1]) < shape[0] * shape[1]


def truncated_svd(t: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(U·diag(S) truncated to r columns, Vh truncated to r rows, relative Frobenius error ‖Θ − Θ_r‖/‖Θ‖).

    The error comes from the discarded singular values, sqrt(Σ_{i>r} s_i²) / sqrt(Σ_i s_i²), so it is exact
    without forming Θ_r. A full (not randomised) SVD: slower on large matrices, but its error is the optimum.
    """
    u, s, vh = torch.linalg.svd(t, full_matrices=False)
    total = float(s.double().square().sum())
    dropped = float(s[rank:].double().square().sum())
    error = math.sqrt(dropped / total) if total > 0 else 0.0
    return (u[:, :rank] * s[:rank]).contiguous(), vh[:rank].contiguous(), error


def factor_shapes(shape: tuple[int, ...], rank: int) -> tuple[tuple[int, int], tuple[int, int]]:
    r = min(rank, shape[0], shape[1])
    return (shape[0], r), (r, shape[1])


def reconstruct(us: torch.Tensor, vh: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """U·S @ Vh, in out's dtype, into `out`."""
    return torch.matmul(us.to(out.dtype), vh.to(out.dtype), out=out)
