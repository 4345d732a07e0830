"""Discrete distributions (observe only: discrete latents are refused by the checker)."""
from __future__ import annotations
