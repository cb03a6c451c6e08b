"""The sentiment signal the policy trusts is a fixed rule on the customer's words."""

from __future__ import annotations

import pytest

from graphs.sentiment import FRUSTRATION_WORDS, classify_sentiment

CASES = [
    ("calm-refund", "Could I get a refund on order 1001, please?", "neutral"),
    ("ridiculous", "This is ridiculous, refund me", "frustrated"),
    ("furious-any-case", "I am FURIOUS about this", "frustrated"),
    ("angry", "I'm angry that nobody answered", "frustrated"),
    ("terrible", "terrible service", "frustrated"),
    ("worst", "Worst order ever.", "frustrated"),
    ("unacceptable", "This delay is unacceptable", "frustrated"),
    ("three-exclamations", "Where is my order!!!", "frustrated"),
    ("mixed-marks", "Why?!? Why?!", "frustrated"),
    ("one-exclamation", "Thanks so much!", "neutral"),
    ("shouting", "WHERE IS MY ORDER", "frustrated"),
    ("acronyms-are-not-shouting", "Please send the SMS and the ZIP code ASAP", "neutral"),
    ("one-capital-word", "Order 1001 has NOT arrived yet, could you check?", "neutral"),
    ("word-inside-another", "the scampi was fine", "neutral"),
    ("empty", "", "neutral"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify_sentiment(text: str, expected: str) -> None:
    assert classify_sentiment(text) == expected


@pytest.mark.parametrize("word", FRUSTRATION_WORDS)
def test_every_frustration_word_marks_a_message_frustrated(word: str) -> None:
    assert classify_sentiment(f"well, {word} really") == "frustrated"


def test_same_text_same_answer() -> None:
    text = "I've waited ten days!!!"
    assert {classify_sentiment(text) for _ in range(5)} == {"frustrated"}
