"""Kubernetes resource quantities (cpu "250m", memory "512Mi") as numbers."""

from __future__ import annotations

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}


def parse(quantity: str | int | float) -> float:
    """The quantity in base units (cores for cpu, bytes for memory)."""
    if isinstance(quantity, int | float):
        return float(quantity)
    text = quantity.strip()
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    if text[-1:] in _DECIMAL and not text[-2:-1].isalpha():
        return float(text[:-1]) * _DECIMAL[text[-1]]
    return float(text)
