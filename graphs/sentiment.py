"""A deterministic sentiment signal for the policy: is the customer frustrated?

The policy uses sentiment to make a call stricter (a frustrated customer's large refund goes to
a person). That signal must not come from the model, which the customer can talk into anything,
so it is computed here from the customer's own words with fixed rules: keywords, repeated
exclamation marks and shouting in capitals. It is crude on purpose: predictable beats clever
for a value that changes who may approve an action.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["FRUSTRATION_WORDS", "Sentiment", "classify_sentiment"]

Sentiment = Literal["frustrated", "neutral"]
"""The two values the policy distinguishes."""

FRUSTRATION_WORDS: tuple[str, ...] = (
    "absurd",
    "angry",
    "annoyed",
    "awful",
    "disgusted",
    "fed up",
    "furious",
    "horrible",
    "infuriating",
    "joke",
    "livid",
    "outrageous",
    "pathetic",
    "ridiculous",
    "scam",
    "sick of",
    "terrible",
    "unacceptable",
    "useless",
    "worst",
)
"""Words and phrases that mark a message as frustrated, matched as whole words, any case."""

_WORDS = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in FRUSTRATION_WORDS) + r")\b", re.IGNORECASE)
_EXCLAMATIONS = re.compile(r"!{3,}|(?:[!?]\s*){3,}")  # "!!!", "?!?", "! ! !"
_SHOUTED_WORD = re.compile(r"\b[A-Z]{2,}\b")
_ANY_WORD = re.compile(r"\b[A-Za-z]{2,}\b")
# Acronyms customers use in calm messages; they are not shouting.
_ACRONYMS = frozenset({"ID", "SMS", "ZIP", "USA", "US", "UK", "OK", "ASAP", "PM", "AM", "FAQ", "PO", "CEO", "TV", "USB"})


def classify_sentiment(text: str) -> Sentiment:
    """Classify one customer message as ``"frustrated"`` or ``"neutral"``.

    A message is frustrated when it contains a frustration word (see ``FRUSTRATION_WORDS``),
    three or more exclamation/question marks in a row, or is shouted: at least three words in
    capitals making up at least half of its words (common acronyms such as ``SMS`` excluded).

    Args:
        text: The customer's message as written.

    Returns:
        ``"frustrated"`` or ``"neutral"``; the same text always gives the same answer.
    """
    if _WORDS.search(text) or _EXCLAMATIONS.search(text):
        return "frustrated"
    words = _ANY_WORD.findall(text)
    shouted = [w for w in _SHOUTED_WORD.findall(text) if w not in _ACRONYMS]
    if len(shouted) >= 3 and len(shouted) * 2 >= len(words):
        return "frustrated"
    return "neutral"
