"""Shopper words for what the engine calls modes, probabilities and cosines, in one place for every page.

The API and the command line keep the engine's words (``routed``, ``soft``, ``similarity``);
people on the pages read "Only the likeliest category" and "93% match".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog import Catalog
from ..search import MODES, SearchResult

LIKELY_CHIPS = 3  # categories offered first; the rest of the catalog's are one tap further

MODE_WORDS = {
    "soft": ("Best guess, with a second look",
             "Searches the likeliest category; when we are unsure, also the next ones, and shows the one whose "
             "items match best."),
    "routed": ("Only the likeliest category",
               "Fastest. If we guess the category wrong, the results are the wrong kind of clothes."),
    "direct": ("Every category",
               "The closest-looking items, whatever their category."),
}


@dataclass(frozen=True)
class ModeChoice:
    name: str
    label: str
    help: str
    recommended: bool


@dataclass(frozen=True)
class Chip:
    """A category to search in: its name, how likely the photo is one, and whether the results are from it."""

    name: str
    probability: float | None
    current: bool


def modes(catalog: Catalog) -> list[ModeChoice]:
    """The modes in plain words, the catalog's default first (it won on validation data)."""
    order = [catalog.default_mode] + [m for m in MODES if m != catalog.default_mode]
    return [ModeChoice(m, *MODE_WORDS[m], recommended=m == catalog.default_mode) for m in order]


def chips(catalog: Catalog, result: SearchResult) -> tuple[list[Chip], list[Chip], bool]:
    """Categories to re-search in: the likeliest the catalog stocks, the others, and whether all are searched.

    The chip the results came from is current, unless the search covered every category.
    """
    everything = result.mode == "direct" and not result.chosen
    current = {int(result.hits[0].category)} if result.hits and not everything else set()
    if result.chosen:
        current = set(result.searched)
    counts = catalog.counts()
    order = [int(c) for c in np.argsort(-result.probabilities, kind="stable") if counts[c] > 0]
    made = [Chip(catalog.class_names[c], float(result.probabilities[c]), c in current) for c in order]
    return made[:LIKELY_CHIPS], made[LIKELY_CHIPS:], everything


def item_chips(catalog: Catalog, item_category: str, result: SearchResult) -> tuple[list[Chip], list[Chip], bool]:
    """An item page's categories: its own first, then the others the catalog stocks."""
    everything = result.mode == "direct" and not result.chosen
    current = {catalog.class_names[c] for c in result.searched} if not everything else set()
    names = [item_category] + [n for n in catalog.stocked() if n != item_category]
    made = [Chip(n, None, n in current and (result.chosen or n == item_category)) for n in names]
    return made[:1], made[1:], everything


def percent(probability: float) -> str:
    """A probability for people: whole percent, "under 1%" rather than "0%"."""
    value = 100 * probability
    return "under 1%" if 0 < value < 0.5 else f"{value:.0f}%"


def match(similarity: float) -> str:
    """A cosine similarity as a shopper reads it: "93% match"."""
    return f"{100 * max(similarity, 0.0):.0f}% match"


def sentence(message: str) -> str:
    """Error messages are written as clauses ("the file is empty"); show them as sentences."""
    message = message.strip()
    if not message:
        return message
    return message[0].upper() + message[1:] + ("" if message[-1] in ".!?" else ".")
