"""Merge methods for residuals (docs/paper.md §1, Q3; docs/residual.md): each a small class registered by name,
whose fields are its parameters.

    m = MergeMethod("ties", density=0.2)       # the registered class of that name: Ties(density=0.2)
    tau = m(name, taus)                         # the merged τ of one tensor from its task vectors τ_1..τ_k
    m.params()                                  # {"name": "ties", "density": 0.2}: what a residual's manifest records
    m.label()                                   # "TIES d=0.2": what the study's tables call it

A method's parameters (defaults, ranges, help) are its fields: the checks here, the command line's options
(cptlib.residual.cli) and a profile's `study.merges` (cptlib.config) all read them, so a new method is one class
here. The tensor arithmetic is cptlib.residual.merge's; this module imports torch only when a method merges (the
command line's help and a profile's validation never do).
"""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields
from typing import ClassVar

from cptlib.core.errors import InputError

METHODS: dict[str, type[Merge]] = {}  # name -> class, in the order they are registered


def register(cls: type[Merge]) -> type[Merge]:
    """Make a Merge subclass a method of its `name` (the command line, profiles and MergeMethod find it there)."""
    METHODS[cls.name] = cls
    return cls


def param(default: float | int, help: str, **bounds: float):
    """A method's parameter: its default, what it means (the command line's help), and its range as `gt`, `ge`,
    `lt`, `le` (checked when a method is made, and when a profile is validated)."""
    return field(default=default, metadata={"help": help, "bounds": bounds})


def parameters(cls: type[Merge]) -> dict[str, tuple[type, dict]]:
    """{parameter: (its type, its field metadata)} of a method class."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], dict(f.metadata)) for f in fields(cls)}


_BOUND_TEXT = {"gt": ("(", ">"), "ge": ("[", ">="), "lt": (")", "<"), "le": ("]", "<=")}


def bounds_text(bounds: dict[str, float]) -> str:
    """A range as an interval, "in (0, 1]"; one bound as a comparison, ">= 0"."""
    low = [k for k in ("gt", "ge") if k in bounds]
    high = [k for k in ("lt", "le") if k in bounds]
    if low and high:
        return f"in {_BOUND_TEXT[low[0]][0]}{bounds[low[0]]:g}, {bounds[high[0]]:g}{_BOUND_TEXT[high[0]][0]}"
    return " and ".join(f"{_BOUND_TEXT[k][1]} {bounds[k]:g}" for k in low + high)


def _within(value: float, bounds: dict[str, float]) -> bool:
    tests = {"gt": value.__gt__, "ge": value.__ge__, "lt": value.__lt__, "le": value.__le__}
    return not math.isnan(value) and all(tests[k](v) for k, v in bounds.items())


@dataclass(frozen=True)
class Merge:
    """A merge method: `__call__(name, taus)` returns the merged τ of the tensor `name` (the caller adds α·τ to the
    target); its fields are its parameters (declared with `param`)."""
    name: ClassVar[str]

    def __post_init__(self):
        for p, (kind, meta) in parameters(type(self)).items():
            value = getattr(self, p)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and isinstance(value, float)):
                raise InputError(f"merge method {self.name!r}: {p} must be a{'n integer' if kind is int else ' number'}, "
                                 f"got {value!r}")
            if kind is float:  # 1 and 1.0 are one setting (and one stage key)
                object.__setattr__(self, p, float(value))
            if not _within(float(value), meta["bounds"]):
                raise InputError(f"merge method {self.name!r}: {p} {value}: must be {bounds_text(meta['bounds'])}")
        self.check()

    def check(self) -> None:
        """What the parameters' ranges alone do not say (e.g. two that must fit together); an InputError if not."""

    def __call__(self, name: str, taus: list) -> typing.Any:
        raise NotImplementedError

    def params(self) -> dict:
        """The method as a residual's manifest records it: its name and parameters."""
        return {"name": self.name, **{p: getattr(self, p) for p in parameters(type(self))}}

    def label(self) -> str:
        """The method in a table or a figure."""
        raise NotImplementedError


def MergeMethod(name: str = "task_arithmetic", **params) -> Merge:  # noqa: N802 -- the engine's constructor by name
    """The merge method `name` with `params` (its fields; those left out at their defaults)."""
    if name not in METHODS:
        raise InputError(f"merge method {name!r}: choose one of {', '.join(METHODS)}")
    own = parameters(METHODS[name])
    unknown = [p for p in params if p not in own]
    if unknown:
        raise InputError(f"merge method {name!r} has no parameter {', '.join(unknown)} "
                         f"(its parameters: {', '.join(own) or 'none'})")
    return METHODS[name](**params)


@register
@dataclass(frozen=True)
class TaskArithmetic(Merge):
    """Task arithmetic (Ilharco et al. 2023): Σ_t τ_t."""
    name: ClassVar[str] = "task_arithmetic"

    def __call__(self, name, taus):
        from cptlib.residual.merge import task_arithmetic

        return task_arithmetic(taus)

    def label(self) -> str:
        return "task arithmetic"


@register
@dataclass(frozen=True)
class Ties(Merge):
    """TIES (Yadav et al. 2023): trim each τ_t to its largest entries, elect a sign per entry, average the agreeing."""
    name: ClassVar[str] = "ties"
    density: float = param(1.0, "fraction of entries kept per tensor", gt=0, le=1)

    def __call__(self, name, taus):
        from cptlib.residual.merge import ties

        return ties(taus, self.density)

    def label(self) -> str:
        return f"TIES d={self.density:g}"


@register
@dataclass(frozen=True)
class Dare(Merge):
    """DARE (Yu et al. 2024): drop each entry with probability p, rescale the rest by 1/(1−p), sum the τ_t."""
    name: ClassVar[str] = "dare"
    drop_rate: float = param(0.0, "probability p of dropping an entry (the rest x 1/(1-p))", ge=0, lt=1)
    seed: int = param(0, "mask seed (a mask depends on it, the tensor's name and the term, not on the order)")

    def __call__(self, name, taus):
        from cptlib.residual.merge import dare

        return dare(taus, self.drop_rate, self.seed, name)

    def label(self) -> str:
        return f"DARE p={self.drop_rate:g}"


@register
@dataclass(frozen=True)
class Breadcrumbs(Merge):
    """Model Breadcrumbs (Davari & Belilovsky 2024): per τ_t drop the largest γ and the smallest entries by magnitude,
    keeping a fraction `density`; sum the τ_t."""
    name: ClassVar[str] = "breadcrumbs"
    density: float = param(1.0, "fraction of entries kept per tensor", gt=0, le=1)
    gamma: float = param(0.0, "fraction of largest-magnitude entries dropped", ge=0, lt=1)

    def check(self) -> None:
        if self.gamma + self.density > 1.0:
            raise InputError(f"merge method 'breadcrumbs': gamma {self.gamma:g} + density {self.density:g} exceeds 1 "
                             "(it drops the largest gamma and keeps the next density of the entries)")

    def __call__(self, name, taus):
        from cptlib.residual.merge import breadcrumbs

        return breadcrumbs(taus, self.density, self.gamma)

    def label(self) -> str:
        return f"breadcrumbs d={self.density:g} γ={self.gamma:g}"
