"""An offline chat model that reads a customer's plain messages and answers with tool calls.

``CustomerServiceModel`` is a real LangChain ``BaseChatModel``: bound to tools with
``bind_tools`` it returns ``AIMessage``s whose ``tool_calls`` a LangGraph agent routes, exactly as
it would route a hosted model's. It is deterministic (same conversation, same answer, same tool
call ids) and needs no network, so the reference graph, its tests and the demo run anywhere.

This module is longer than the house ~400 lines because the parser and the reply writer are one
model; they share the phrase table and the tool vocabulary, and splitting them would only move
private helpers between files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import ToolCall, tool_call
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from graphs.sentiment import classify_sentiment

__all__ = ["PHRASES", "CustomerServiceModel"]

PHRASES: list[tuple[str, str]] = [
    ("I'm jane@example.com", "verify_customer"),
    ("my email is jane@example.com", "verify_customer"),
    ("Jane Doe, 94107", "verify_customer"),
    ("name Jane Doe zip 94107", "verify_customer"),
    ("where is order 1001", "get_order"),
    ("check order 1001", "get_order"),
    ("status of order 1001", "get_order"),
    ("how do I return an item?", "search_help"),
    ("help with shipping", "search_help"),
    ("refund $80 on order 1001", "issue_refund"),
    ("refund 80 for 1001", "issue_refund"),
    ("I want $2,400 back for order 1003", "issue_refund"),
    ("10% discount on 1002", "apply_discount"),
    ("cancel order 1002", "cancel_order"),
    ("cancel 1002", "cancel_order"),
    ("change the address of 1002 to 1 Main St, Springfield, 12345", "change_address"),
    ("what do you recommend for 1001", "recommend_resolution"),
    ("draft a reply about the late delivery", "draft_reply"),
    ("write me an email about the return label", "draft_reply"),
    ("open a ticket about a broken zipper", "create_ticket"),
    ("report a problem with the checkout page", "create_ticket"),
    ("stop emails", "update_preferences"),
    ("no sms", "update_preferences"),
    ("email me offers", "update_preferences"),
    ("language es", "update_preferences"),
    ("I want a human", "request_human"),
    ("let me talk to a manager", "request_human"),
    ("dispute the charge on 1001", "dispute_payment"),
    ("chargeback on order 1001", "dispute_payment"),
    ("refund $20 on 1001 and $30 on 1001", "issue_refund"),
]
"""Example customer phrases and the tool each one calls (the last one calls it twice)."""

# ---------------------------------------------------------------------------------------------
# Reading a customer's message
# ---------------------------------------------------------------------------------------------

_I = re.IGNORECASE


class _Then:
    """``first``, then ``second`` later in the same stretch of text (a line, or up to a period):
    ``first.*second`` without its backtracking. Only the leftmost ``first`` of a stretch can
    start a match, so one pass reads the text once, in time linear in its length (the pattern
    took 17 s on a 60,000-character message)."""

    def __init__(self, first: str, second: str, *, stretch: str = "\n") -> None:
        self.first = re.compile(first, _I)
        self.second = re.compile(second, _I)
        self.stretch = stretch

    def search(self, text: str) -> re.Match[str] | None:
        for part in text.split(self.stretch):
            m = self.first.search(part)
            found = self.second.search(part, m.end()) if m else None
            if found:
                return found
        return None


class _Any:
    """The first of several searchers that finds something."""

    def __init__(self, *searchers: _Searcher) -> None:
        self.searchers = searchers

    def search(self, text: str) -> re.Match[str] | None:
        for s in self.searchers:
            found = s.search(text)
            if found:
                return found
        return None


_Searcher = re.Pattern[str] | _Then | _Any
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")  # starts only where a run starts: linear
_EMAIL_LEAD = re.compile(
    r"(?:\b(?:i'?m|i am|this is|it'?s|my e-?mail(?: address)? is|e-?mail(?: address)?\s*(?:is|:)?)\s*)?$", _I
)
_NOT_NAME = ("a|about|address|an|and|at|by|cancel|check|code|discount|dispute|for|from|help|i|in|is|my|number|of"
             "|on|order|please|postal|refund|status|the|ticket|to|where|with|zip|thanks|thank|you|hi|hello|hey|yes|ok")
_NAME_WORD = rf"(?!(?:{_NOT_NAME})\b)[A-Za-z][A-Za-z'-]*"
_NAME = rf"(?P<name>{_NAME_WORD}(?:\s+{_NAME_WORD}){{1,3}}?)"
_ZIP_TAIL = r"\s*,?\s*(?:and\s+)?(?:my\s+)?(?:(?:zip|postal)(?:\s*code)?|postcode)?\s*(?:is|:)?\s*(?P<zip>\d{5})\b"
_NAME_ZIP = [
    re.compile(rf"\bname\s*(?:is|:)?\s*{_NAME}{_ZIP_TAIL}", _I),
    re.compile(rf"\b(?:i'?m|i am|this is)\s+{_NAME}{_ZIP_TAIL}", _I),
    re.compile(rf"^\s*{_NAME}{_ZIP_TAIL}\s*[.!]*\s*$", _I),
    re.compile(rf"\b{_NAME}\s*,?\s*(?:and\s+)?(?:my\s+)?zip(?:\s*code)?\s*(?:is|:)?\s*(?P<zip>\d{{5}})\b", _I),
]
_ZIP_ONLY = re.compile(r"\b(?:my\s+)?(?:zip|postal)(?:\s*code)?\s*(?:is|:)?\s*(\d{5})\b|^\s*(\d{5})\s*[.!]?\s*$", _I)
_NAME_ONLY = re.compile(rf"\bname\s*(?:is|:)\s*(?P<name>{_NAME_WORD}(?:\s+{_NAME_WORD}){{1,3}})", _I)
# Only beside an email or a zip, and capitalised: "jane@example.com, Jane Doe".
_NAME_ALONE = re.compile(r"^\s*(?:(?i:i'?m|i am|this is)\s+)?(?P<name>[A-Z][a-z'-]+(?:\s+[A-Z][A-Za-z'-]+){1,3})\s*[.!]?\s*$")
_ORDER_KW = re.compile(r"\b(?:order|ord)\s*(?:no\.?|number|num|id)?\s*#?\s*(\d{3,})\b|#\s*(\d{3,})\b", _I)
_ORDER_PREP = re.compile(r"\b(?:on|for|of|about|with|from|to)\s+(?:my\s+|the\s+)?#?(\d{4,})\b", _I)
_NUMBER = re.compile(r"(?<![\w.,])(\$\s*)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w%]|,\d)")
_PERCENT = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)", _I)
_SPLIT = re.compile(r"(?<!\s)\s*(?:;|\band also\b|\band then\b|\balso\b|\bplus\b|\band\b|(?<=[.!?])\s+(?=[A-Z]))\s*", _I)
_ABBREVIATIONS = ("st.", "ave.", "rd.", "dr.", "blvd.", "apt.", "no.", "mr.", "ms.", "mrs.", "ln.")

_HUMAN = re.compile(
    r"\b(?:speak|talk|chat)\s+(?:to|with)\s+(?:a|an|the|your|some)?\s*(?:real\s+|live\s+)?"
    r"(?:human|person|agent|manager|supervisor|representative|someone|somebody)\b"
    r"|\b(?:want|need|get|give me|connect me (?:to|with)|transfer me to)\s+(?:a|an|the|your)?\s*"
    r"(?:real\s+|live\s+)?(?:human|person|agent|manager|supervisor|representative)\b"
    r"|^\s*(?:human|agent|operator|representative)\W*$|\bescalate\b",
    _I,
)
_DRAFT = _Then(r"\b(?:draft|write|compose|prepare)\b", r"\b(?:reply|response|e-?mail|message|letter)\b")
_TICKET = re.compile(
    r"\b(?:open|file|create|raise|submit|log|start)\s+(?:a\s+|an\s+)?(?:new\s+)?(?:support\s+)?"
    r"(?:ticket|case|complaint)\b|\breport\s+(?:a|an|the)?\s*(?:problem|issue|bug|fault|defect)\b",
    _I,
)
_TOPIC = re.compile(r"\b(?:about|regarding|concerning|re:|with|on|for)\s+(.+)$", _I)
_DISPUTE = re.compile(r"\bdispute\b|\bcharge\s*-?\s*back\b|\bunauthori[sz]ed\s+charge\b", _I)
_REFUND = _Any(re.compile(r"\brefund|\bmoney back\b|\breimburse", _I), _Then(r"\b(?:want|get|need|like)\b", r"\bback\b"))
_CANCEL = re.compile(r"\bcancel", _I)
_ADDRESS = _Any(_Then(r"\b(?:change|update|correct|fix|edit|new)\b", r"\baddress\b"),
                _Then(r"\b(?:ship|send|deliver)\b", r"\bto\b"))
_RECOMMEND = re.compile(
    r"\brecommend|\bsuggest|\bwhat should (?:i|we|you) do\b|\bwhat (?:are )?(?:my|the) options\b"
    r"|\bwhat can you do\b",
    _I,
)
_HELP = re.compile(r"\?|\b(?:how|what|when|why|where|which|can i|do you|help|policy|info)\b", _I)
_PREFS: list[tuple[_Searcher, str, Any]] = [
    (_Any(_Then(r"\b(?:stop|no|don'?t|do not|unsubscribe)\b", r"\b(?:e-?mails?|newsletters?)\b", stretch="."),
          re.compile(r"^\s*unsubscribe\b", _I)), "email_opt_in", False),
    (_Then(r"\b(?:stop|no|don'?t|do not)\b", r"\b(?:sms|texts?|text messages?)\b", stretch="."), "sms_opt_in", False),
    (re.compile(r"\b(?:e-?mail me|send me (?:e-?mails?|offers|newsletters?)|subscribe me|sign me up)\b", _I),
     "email_opt_in", True),
    (re.compile(r"\b(?:text me|sms me|send me (?:texts|sms))\b", _I), "sms_opt_in", True),
]
_LANGUAGE_NAMES = "english|spanish|french|german|italian|portuguese|dutch"
_LANGUAGE = re.compile(rf"\blanguage\s*(?:to|:|=|is)?\s*(?:({_LANGUAGE_NAMES})|(?!(?:to|is|in)\b)([a-z]{{2}}))\b"
                       rf"|\b(?:in|to)\s+({_LANGUAGE_NAMES})\b", _I)
_LANGUAGE_CODES = {"english": "en", "spanish": "es", "french": "fr", "german": "de", "italian": "it",
                   "portuguese": "pt", "dutch": "nl"}

_TEXT_TOOLS = frozenset({"draft_reply", "create_ticket", "search_help", "request_human"})
"""Tools whose arguments are free text: an unrecognised follow-on clause belongs to them."""


@dataclass
class _Request:
    """One thing the customer asked for: a tool call, or a question back when details are missing."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    question: str | None = None
    start: int = 0
    end: int = 0


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _percent(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    return f"{int(value) if float(value).is_integer() else value}% "


def _to_number(digits: str, fraction: str | None) -> float:
    return float(digits.replace(",", "") + (fraction or ""))


def _order_id(text: str) -> int | None:
    for pattern in (_ORDER_KW, _ORDER_PREP):
        m = pattern.search(text)
        if m:
            return int(next(g for g in m.groups() if g))
    bare = [m for m in _NUMBER.finditer(text) if not m.group(1) and not m.group(3) and len(m.group(2)) == 4]
    return int(bare[0].group(2)) if bare else None


def _amount(text: str, order: int | None) -> float | None:
    numbers = list(_NUMBER.finditer(text))
    for m in numbers:  # "$80" wins over a bare number
        if m.group(1):
            return _to_number(m.group(2), m.group(3))
    for m in numbers:
        if order is None or m.group(2) != str(order):
            return _to_number(m.group(2), m.group(3))
    return None


def _topic(text: str) -> str:
    m = _TOPIC.search(text)
    topic = (m.group(1) if m else "").strip(" .!?")
    return topic[:1].upper() + topic[1:] if topic else ""


def _address(text: str) -> dict[str, str] | None:
    m = re.search(r"\bto\s+(\d.*)$", text, _I) or re.search(r"\bto\s+(.+)$", text, _I)
    if not m:
        return None
    parts = [p.strip(" .") for p in m.group(1).split(",") if p.strip(" .")]
    if len(parts) < 2:
        return None
    last = re.match(r"^(.*?)\s*(\d{5})(?:-\d{4})?$", parts[-1])
    if not last:
        return None
    rest = last.group(1).strip()
    if rest and not re.fullmatch(r"[A-Za-z]{2}", rest):  # "Springfield 12345"
        line1, city = ", ".join(parts[:-1]), rest
    elif len(parts) >= 3:  # "Springfield, 12345" or "Springfield, IL 12345"
        line1, city = ", ".join(parts[:-2]), parts[-2]
    else:
        return None
    return {"line1": line1, "city": city, "zip": last.group(2)}


def _resolution(text: str) -> str:
    lowered = text.lower()
    if re.search(r"damaged|broken|defective|cracked|faulty", lowered):
        return "Send a replacement at no cost, or refund the item in full if the customer prefers."
    if re.search(r"late|delay|not arrived|never arrived|missing|lost", lowered):
        return "Reship the order with expedited shipping and refund the shipping cost."
    if re.search(r"wrong|incorrect", lowered):
        return "Send the correct item and a prepaid return label for the wrong one."
    return "Offer a refund or a replacement, whichever the customer prefers."


def _cut(text: str, start: int, end: int) -> str:
    return (text[:start] + " " + text[end:]).strip(" ,.;")


def _identity(text: str, has_text_tool: bool) -> tuple[_Request | None, str]:
    """The identity details the customer gave (email, name, zip), and the message with them cut out."""
    fields: dict[str, str] = {}
    rest = text
    m = _EMAIL.search(rest)
    if m:
        lead = _EMAIL_LEAD.search(rest[: m.start()])
        if not (lead and lead.group(0).strip()) and has_text_tool:
            return None, text  # "draft a reply to jane@example.com ..." names a recipient, not the customer
        fields["email"] = m.group(0)
        rest = _cut(rest, lead.start() if lead else m.start(), m.end())
    if _ADDRESS.search(rest):  # "... to 1 Main St, New York, 10001" is not a name and a zip
        return (_Request("verify_customer", fields) if fields else None), rest
    for pattern in _NAME_ZIP:
        n = pattern.search(rest)
        if n:
            fields.update(name=n.group("name"), zip=n.group("zip"))
            rest = _cut(rest, n.start(), n.end())
            break
    else:
        z = _ZIP_ONLY.search(rest)
        if z:
            fields["zip"] = z.group(1) or z.group(2)
            rest = _cut(rest, z.start(), z.end())
        n = _NAME_ONLY.search(rest) or (_NAME_ALONE.search(rest) if fields else None)
        if n:
            fields["name"] = n.group("name")
            rest = _cut(rest, n.start(), n.end())
    return (_Request("verify_customer", fields) if fields else None), rest


def _segments(text: str) -> list[tuple[int, int]]:
    """Spans of the clauses of a message: split on "and", "also", ";" and sentence ends."""
    spans, start = [], 0
    for m in _SPLIT.finditer(text):
        if m.start() == m.end() or m.start() < start:
            continue
        if not m.group(0).strip() and text[max(0, m.start() - 8): m.start()].lower().endswith(_ABBREVIATIONS):
            continue  # "1 Main St. Springfield" is one clause
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip(" ,.")]


def _clause(text: str, message: str, prev: _Request | None) -> _Request | None:
    """Read one clause; ``prev`` is the clause before it, for "... and $30 on 1001"."""
    order = _order_id(text)
    if _HUMAN.search(text):
        return _Request("request_human", {"reason": message})
    if _DRAFT.search(text):
        topic = _topic(text) or "Your request"
        body = (f"Hello,\n\nThank you for contacting us about {topic[:1].lower() + topic[1:]}. We are looking "
                "into it and will get back to you shortly.\n\nBest regards,\nCustomer Service")
        return _Request("draft_reply", {"subject": topic, "body": body})
    if _TICKET.search(text):
        priority = "high" if (classify_sentiment(message) == "frustrated"
                              or re.search(r"urgent|asap|immediately|emergency", message, _I)) else "normal"
        return _Request("create_ticket", {"subject": _topic(text) or text.strip(" .!?"), "body": message,
                                          "priority": priority})
    if _DISPUTE.search(text):
        if order is None:
            return _Request("dispute_payment", question="Which order's payment would you like to dispute?")
        return _Request("dispute_payment", {"order_id": order, "reason": message})
    if _REFUND.search(text):
        amount = _amount(text, order)
        if amount is None:
            where = f" on order {order}" if order is not None else ", and on which order"
            return _Request("issue_refund", {"order_id": order}, question=f"How much would you like refunded{where}?")
        return _Request("issue_refund", {"order_id": order, "amount": amount, "reason": message})
    percent = _PERCENT.search(text)
    if percent or re.search(r"\bdiscount\b", text, _I):
        if percent is None:
            return _Request("apply_discount", {"order_id": order}, question="What percentage discount, and on which order?")
        return _Request("apply_discount", {"order_id": order, "percent": float(percent.group(1)), "reason": message})
    prefs: dict[str, Any] = {key: value for pattern, key, value in _PREFS if pattern.search(text)}
    language = _LANGUAGE.search(text)
    if language:
        name = (language.group(1) or language.group(3) or "").lower()
        prefs["language"] = _LANGUAGE_CODES.get(name) or (language.group(2) or "").lower()
    if prefs:
        return _Request("update_preferences", prefs)
    if _CANCEL.search(text):
        if order is None:
            return _Request("cancel_order", question="Which order would you like to cancel?")
        return _Request("cancel_order", {"order_id": order, "reason": message})
    if _ADDRESS.search(text) and re.search(r"\baddress\b|\bto\s+\d", text, _I):
        address = _address(text)
        if order is None or address is None:
            return _Request("change_address", question="Please tell me the order number and the new address as "
                                                       "street, city, zip.")
        return _Request("change_address", {"order_id": order, **address})
    if _RECOMMEND.search(text):
        if order is None:
            return _Request("recommend_resolution", question="Which order should I look at for a recommendation?")
        return _Request("recommend_resolution", {"order_id": order, "resolution": _resolution(message),
                                                 "note": message})
    if prev and prev.tool == "issue_refund" and _NUMBER.search(text):  # "... and $30 on 1001"
        return _Request("issue_refund", {"order_id": order, "amount": _amount(text, order), "reason": message})
    if order is not None:
        if prev and prev.tool in ("cancel_order", "dispute_payment", "recommend_resolution") and not re.search(
                r"[a-z]{3,}", re.sub(r"\border\b", "", text, flags=_I), _I):
            return _Request(prev.tool, {**prev.args, "order_id": order})
        return _Request("get_order", {"order_id": order})
    if _HELP.search(text):
        return _Request("search_help", {"query": text.strip()})
    return None


def parse_customer_message(message: str) -> tuple[list[_Request], list[str]]:
    """Read a customer's message into tool requests (in order) and questions to ask back."""
    text = " ".join(message.split())
    has_text_tool = bool(_DRAFT.search(text) or _TICKET.search(text))
    identity, rest = _identity(text, has_text_tool)
    requests: list[_Request] = [identity] if identity else []
    parsed: list[_Request] = []
    for start, end in _segments(rest):
        clause = rest[start:end]
        prev = parsed[-1] if parsed else None
        req = _clause(clause, text, prev)
        if prev and prev.tool in _TEXT_TOOLS and (req is None or req.tool in ("search_help", prev.tool)):
            # A free-text request runs on over an unrecognised or same-kind clause.
            merged = _clause(rest[prev.start:end], text, None)
            if merged is not None:
                merged.start, merged.end = prev.start, end
                parsed[-1] = merged
                continue
        if req is None:
            continue
        req.start, req.end = start, end
        parsed.append(req)
    # "refund $20 and $30 on 1001": a request without an order takes its neighbour's (the next one
    # of its kind naming an order, else the nearest before it), found in one pass each way.
    for tool in ("issue_refund", "apply_discount"):
        same = [r for r in parsed if r.tool == tool]
        later: list[Any] = []
        following = None
        for r in reversed(same):
            later.append(following)
            if r.args.get("order_id") is not None:
                following = r.args["order_id"]
        earlier = None
        for r, after in zip(same, reversed(later)):
            if r.args.get("order_id") is None:
                found = after if after is not None else earlier
                if found is not None:
                    r.args["order_id"] = found
            earlier = r.args.get("order_id") if r.args.get("order_id") is not None else earlier
    for req in parsed:
        if req.question is None and "order_id" in req.args and req.args["order_id"] is None:
            req.question = "Which order is this about? Please give the order number."
        if req.question is None and req.tool == "issue_refund" and req.args.get("amount") is None:
            req.question = f"How much would you like refunded on order {req.args['order_id']}?"
    prefs = [r for r in parsed if r.tool == "update_preferences"]
    if len(prefs) > 1:  # "stop emails and no sms" is one change of preferences
        for extra in prefs[1:]:
            prefs[0].args.update(extra.args)
            parsed.remove(extra)
    questions = [r.question for r in parsed if r.question]
    return requests + [r for r in parsed if r.question is None], questions


# ---------------------------------------------------------------------------------------------
# Reading tool results
# ---------------------------------------------------------------------------------------------

_VERIFY_ASK = ("Before I can do that, I need to confirm who you are: please send the email address on your "
               "account with your full name or zip code, or your full name and zip code.")
_STATUS_KEYS = ("status", "outcome", "decision", "result", "state")
_DENIED = {"denied", "rejected", "refused", "error", "failed", "failure", "not_allowed", "forbidden", "blocked",
           "deny", "reject", "invalid"}
_ESCALATED = {"escalated", "escalate", "handed_off", "handoff", "hand_off", "transferred", "queued_for_human"}
_PENDING = {"pending", "pending_approval", "awaiting_approval", "needs_approval", "approval_requested", "paused"}
_RECORDED = {"recommended", "drafted", "recorded", "draft", "recommendation", "recommend_only", "draft_only"}
_MUST_VERIFY = re.compile(
    r"(?:must|needs? to|required to|has to|have to|please) (?:first )?(?:be )?verif|verif\w* (?:is |was )?required"
    r"|not (?:yet )?verified|unverified|verify (?:your |their |the customer'?s? )?identity"
    r"|identity (?:verification )?(?:is )?required|no verified customer|verify the customer\b")
_REVIEWED = re.compile(r"a person \(([^)]*)\) (?:reviewed the case and handed it back|closed the case):\s*(.*)$",
                       _I | re.DOTALL)
_NEEDS_VERIFY = {"verification_required", "needs_verification", "unverified", "verification_needed",
                 "verification_requested", "not_verified"}


def _content_text(content: str | list[str | dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return " ".join(c if isinstance(c, str) else str(c.get("text", "")) for c in content)


def _payload(message: ToolMessage) -> dict[str, Any] | str:
    text = _content_text(message.content).strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict) else text


def _reason(payload: dict[str, Any] | str) -> str:
    if isinstance(payload, str):
        return re.sub(r"^\s*(?:error|denied|not run|not done)\s*:\s*", "", payload, flags=_I).strip()
    for key in ("reason", "message", "error", "detail", "details", "note", "rejection_message"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, dict):
            return _reason(value)
    return ""


def _outcome(payload: dict[str, Any] | str, tool: str, status: str) -> str:
    """One of ``ok``, ``verify``, ``denied``, ``escalated``, ``reviewed``, ``pending``, ``recorded``."""
    flat = (json.dumps(payload) if isinstance(payload, dict) else payload).lower()
    label = ""
    if isinstance(payload, dict):
        label = next((str(payload[k]).lower() for k in _STATUS_KEYS if isinstance(payload.get(k), str)), "")
    if label in _NEEDS_VERIFY or (tool != "verify_customer" and _MUST_VERIFY.search(flat)):
        return "verify"
    if isinstance(payload, str) and _REVIEWED.search(payload):
        return "reviewed"
    if label in _ESCALATED or (payload.get("escalated") is True if isinstance(payload, dict) else re.search(
            r"escalat|hand(?:ed)?[ -]?off|a person (?:will|takes over)|will follow up", flat)):
        return "escalated"
    if label in _PENDING or re.search(r"(?:pending|awaiting|waiting for|needs|requires) (?:\w+ )?approval", flat):
        return "pending"
    if label in _RECORDED:
        return "recorded"
    failed = isinstance(payload, dict) and (
        payload.get("ok") is False or payload.get("success") is False or payload.get("verified") is False
        or (payload.get("error") not in (None, "", False)))
    if status == "error" or label in _DENIED or failed or (isinstance(payload, str) and re.search(
            r"^\s*(?:error|denied|rejected|refused|not allowed)\b|\b(?:was|is|been) (?:denied|rejected|refused|not "
            r"allowed)\b|\bpermission denied\b", flat)):
        return "denied"
    return "ok"


def _field(payload: dict[str, Any], *keys: str) -> Any:
    for source in (payload, *(v for v in payload.values() if isinstance(v, dict))):
        for key in keys:
            if source.get(key) not in (None, ""):
                return source[key]
    return None


def _doing(tool: str, args: dict[str, Any]) -> str:
    """What the call does, as the end of "I couldn't ..."."""
    order = args.get("order_id")
    amount = args.get("amount")
    phrases: dict[str, str] = {
        "verify_customer": "verify your identity",
        "get_order": f"look up order {order}",
        "search_help": "search our help pages",
        "issue_refund": f"refund {_money(float(amount)) if isinstance(amount, (int, float)) else 'that'} on order {order}",
        "apply_discount": f"apply a {_percent(args.get('percent'))}discount to order {order}",
        "cancel_order": f"cancel order {order}",
        "change_address": f"change the address of order {order}",
        "recommend_resolution": f"record a recommendation for order {order}",
        "draft_reply": "prepare that reply",
        "create_ticket": "open that ticket",
        "update_preferences": "update your preferences",
        "request_human": "reach a person",
        "dispute_payment": f"open a dispute on order {order}",
    }
    return phrases.get(tool, tool.replace("_", " "))


def _preferences(args: dict[str, Any]) -> str:
    said = [f"{label} {'on' if args[key] else 'off'}" for key, label in
            (("email_opt_in", "marketing email"), ("sms_opt_in", "text messages")) if isinstance(args.get(key), bool)]
    if args.get("language"):
        said.append(f"language {args['language']}")
    return ": " + ", ".join(said) if said else ""


def _success(tool: str, args: dict[str, Any], payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, dict) else {}
    order = _field(data, "order_id") or args.get("order_id")
    id_keys = [f"{tool.split('_')[-1]}_id", "refund_id", "ticket_id", "dispute_id", "discount_id", "draft_id",
               "recommendation_id", "id"]
    ident = _field(data, *[k for k in id_keys if k != "order_id"])
    ref = f" (reference {ident})" if ident not in (None, "", order) else ""
    if tool == "verify_customer":
        name = _field(data, "name", "first_name")
        return f"Thank you{', ' + str(name) if name else ''}: you're verified."
    if tool == "get_order":
        if not data:
            return f"Here is what I found on order {order}: {payload}"
        parts = [f"Order {order}"]
        for label, keys in (("status", ("status",)), ("total", ("total", "amount")),
                            ("carrier", ("carrier",)), ("tracking", ("tracking", "tracking_number")),
                            ("expected", ("eta", "estimated_delivery", "expected_delivery"))):
            value = _field(data, *keys)
            if value not in (None, ""):
                value = _money(float(value)) if label == "total" and isinstance(value, (int, float)) else value
                parts.append(f"{label}: {value}")
        items = _field(data, "items")
        if isinstance(items, list) and items:
            names = [str(i.get("name") or i.get("sku") or "") if isinstance(i, dict) else str(i) for i in items]
            parts.append("items: " + ", ".join(n for n in names if n))
        return ", ".join(parts) + "."
    if tool == "search_help":
        if not data:
            return f"Here's what I found: {payload}"
        items = _field(data, "results", "articles", "matches")
        if isinstance(items, list) and items:
            first = items[0] if isinstance(items[0], dict) else {"text": items[0]}
            title = first.get("title", "")
            body = first.get("snippet") or first.get("body") or first.get("text") or first.get("answer") or ""
            return f"Here's what I found: {title}{': ' if title and body else ''}{body}".strip()
        answer = _field(data, "answer", "text", "body", "snippet")
        return f"Here's what I found: {answer}" if answer else "I couldn't find a help article on that."
    amount = _field(data, "amount") or args.get("amount")
    messages: dict[str, Callable[[], str]] = {
        "issue_refund": lambda: f"I've refunded {_money(float(amount or 0))} on order {order}{ref}.",
        "apply_discount": lambda: f"I've applied a {_percent(args.get('percent'))}discount to order {order}{ref}.",
        "cancel_order": lambda: f"Order {order} is cancelled{ref}.",
        "change_address": lambda: (f"The delivery address of order {order} is now "
                                   f"{', '.join(str(args[k]) for k in ('line1', 'city', 'zip') if k in args)}."),
        "recommend_resolution": lambda: f"I've recorded my recommendation for order {order}{ref}.",
        "draft_reply": lambda: f"I've prepared a draft reply{ref}.",
        "create_ticket": lambda: f"I've opened a ticket{ref}: {args.get('subject', '')}".rstrip(": ") + ".",
        "update_preferences": lambda: "Your preferences are updated" + _preferences(args) + ".",
        "request_human": lambda: "I've asked a member of our team to take over; a person will follow up with you.",
        "dispute_payment": lambda: f"I've opened a dispute on order {order}{ref}.",
    }
    if tool in messages:
        return messages[tool]()
    if not data:
        return f"Done: {tool.replace('_', ' ')}. {payload}".strip()
    shown = [f"{k}: {v}" for k, v in data.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    return f"Done: {tool.replace('_', ' ')}" + (f" ({', '.join(shown[:4])})." if shown else ".")


def _summary(tool: str, args: dict[str, Any], message: ToolMessage) -> tuple[str, str]:
    """The customer-facing sentence for one tool result, and the outcome it reports."""
    payload = _payload(message)
    outcome = _outcome(payload, tool, message.status)
    reason = _reason(payload)
    why = f': "{reason}"' if reason else ""
    if outcome == "verify":
        return "", outcome
    if tool == "request_human" and outcome not in ("denied", "reviewed"):
        return "I've asked a member of our team to take over; a person will follow up with you.", outcome
    if outcome == "reviewed":
        reviewed = _REVIEWED.search(_content_text(message.content))
        note = f': "{reviewed.group(2).strip()}"' if reviewed and reviewed.group(2).strip() else ""
        return f"A member of our team reviewed your request to {_doing(tool, args)}{note}.", outcome
    if outcome == "escalated":
        return f"I've passed your request to {_doing(tool, args)} to our team; a person will follow up with you.", outcome
    if outcome == "pending":
        return (f"Your request to {_doing(tool, args)} needs a team member's approval; a person will follow up "
                "with you."), outcome
    if outcome == "recorded":
        if tool == "draft_reply":
            return "I've prepared a draft reply; a member of our team will review it before it is sent.", outcome
        if tool == "recommend_resolution":
            return (f"I've recorded my recommendation for order {args.get('order_id')}; a member of our team "
                    "will review it."), outcome
        return f"I've noted your request to {_doing(tool, args)}; a member of our team will review it.", outcome
    if outcome == "denied":
        if tool == "verify_customer":
            return (f"I couldn't verify your identity with those details{why}. Please check them and send the "
                    "email address on your account, or your full name and zip code."), outcome
        return f"I couldn't {_doing(tool, args)}{why}.", outcome
    return _success(tool, args, payload), outcome


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

_CAPABILITIES: list[tuple[str, str]] = [
    ("verify_customer", 'confirm who you are ("I\'m jane@example.com, zip 94107" or "Jane Doe, 94107")'),
    ("get_order", 'check an order ("where is order 1001")'),
    ("issue_refund", 'refund an order ("refund $80 on order 1001")'),
    ("apply_discount", 'apply a discount ("10% discount on 1002")'),
    ("cancel_order", 'cancel an order ("cancel order 1002")'),
    ("change_address", 'change a delivery address ("change the address of 1002 to 1 Main St, Springfield, 12345")'),
    ("recommend_resolution", 'recommend a resolution ("what do you recommend for 1001")'),
    ("dispute_payment", 'dispute a charge ("dispute the charge on 1001")'),
    ("update_preferences", 'change your contact preferences ("stop emails", "no sms", "language es")'),
    ("create_ticket", 'open a ticket ("open a ticket about ...")'),
    ("draft_reply", 'draft a reply ("draft a reply about ...")'),
    ("search_help", 'answer questions from our help pages ("how do I return an item?")'),
    ("request_human", 'put you through to a person ("I want a human")'),
]


def _capabilities(tools: set[str]) -> str:
    can = [text for tool, text in _CAPABILITIES if tool in tools]
    if not can:
        return "Hello! I can't take any actions in this conversation, but I'm happy to listen."
    return "I can help you " + "; ".join(can) + ". What would you like to do?"


def _bound_tools(kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tool name -> JSON schema of its parameters, from the ``tools`` that ``bind_tools`` bound."""
    tools: dict[str, dict[str, Any]] = {}
    for tool in kwargs.get("tools") or []:
        function = tool.get("function", tool) if isinstance(tool, dict) else {}
        if function.get("name"):
            tools[function["name"]] = function.get("parameters") or {}
    return tools


def _coerce(value: Any, schema: dict[str, Any]) -> Any:
    """Fit a parsed value to the declared JSON type, as a hosted model follows the tool's schema."""
    types = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", []) if isinstance(s, dict)]
    types = [t for t in types if t and t != "null"]
    if not types or isinstance(value, bool):
        return value
    try:
        if types[0] == "integer" and isinstance(value, (int, float, str)) and float(value).is_integer():
            return int(float(value))
        if types[0] == "number" and isinstance(value, (int, float, str)):
            return float(value)
        if types[0] == "string" and isinstance(value, (int, float)):
            return str(int(value)) if float(value).is_integer() else str(value)
    except ValueError:
        return value
    return value


def _transcript_digest(messages: Sequence[BaseMessage]) -> str:
    lines = [f"{m.type}:{_content_text(m.content)}:{getattr(m, 'tool_call_id', '')}" for m in messages]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:8]


class CustomerServiceModel(BaseChatModel):
    """A deterministic offline chat model for the customer-service agent.

    Bind it to tools with ``bind_tools`` and it answers the conversation's **last message**:

    - a customer's message is read (any case, tolerant wording) into tool calls, one per request,
      so several requests give parallel calls:

      ============================================================  ========================
      the customer writes                                           the model calls
      ============================================================  ========================
      ``I'm jane@example.com`` / ``my email is jane@example.com``   ``verify_customer(email)``
      ``Jane Doe, 94107`` / ``name Jane Doe zip 94107``             ``verify_customer(name, zip)``
      ``where is / check / status of order 1001``                   ``get_order(order_id)``
      ``how do I return an item?`` / ``help with shipping``         ``search_help(query)``
      ``refund $80 on order 1001`` / ``refund 80 for 1001``         ``issue_refund(order_id, amount, reason)``
      ``I want $2,400 back for order 1003``                         ``issue_refund(...)``
      ``10% discount on 1002``                                      ``apply_discount(order_id, percent, reason)``
      ``cancel order 1002`` / ``cancel 1002``                       ``cancel_order(order_id, reason)``
      ``change the address of 1002 to 1 Main St, Springfield, 12345`` ``change_address(order_id, line1, city, zip)``
      ``what do you recommend for 1001``                            ``recommend_resolution(order_id, resolution, note)``
      ``draft a reply about ...`` / ``write me an email about ...`` ``draft_reply(subject, body)``
      ``open a ticket about ...`` / ``report a problem ...``        ``create_ticket(subject, body, priority)``
      ``stop emails`` / ``no sms`` / ``email me offers`` / ``language es``  ``update_preferences(email_opt_in, sms_opt_in, language)``
      ``I want a human`` / ``let me talk to a manager``             ``request_human(reason)``
      ``dispute the charge on 1001`` / ``chargeback on order 1001`` ``dispute_payment(order_id, reason)``
      ``refund $20 on 1001 and $30 on 1001``                        two ``issue_refund`` calls
      ============================================================  ========================

      ``reason`` and ``note`` are the customer's whole message; amounts and percents are floats
      (commas allowed), order ids integers (or whatever type the bound tool's schema declares).
      A request missing a detail ("cancel my order") gets a question back instead of a call;
      nothing recognised gets a short list of what it can do.
    - tool results (the trailing ``ToolMessage``s) are summarised for the customer: what was
      done with its ids and amounts; a refusal with its quoted reason; "a person will follow up"
      for an escalation or a pending approval; a request for identity when a result says the
      customer must verify. It never calls a tool in reply to a tool result, except once: right
      after a successful ``verify_customer`` it repeats the calls that were refused for want of
      verification in the previous turn.
    - anything else gets a plain reply.

    Only tools that were bound are called. Tool call ids are ``call_<messages>_<index>_<digest>``:
    the same conversation always gives the same ids, and no two turns of a thread share one.
    """

    model_name: str = "customer-service-scripted"
    """Reported in ``response_metadata`` like a hosted model's name."""

    @property
    def _llm_type(self) -> str:
        return "customer-service-scripted"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, functions, pydantic models or OpenAI tool dicts).

        Args:
            tools: The tools the model may call; their schemas travel in the ``tools`` kwarg,
                as they do for a hosted model.
            tool_choice: Accepted for compatibility and ignored: the model calls a tool only
                when the customer asked for something.
        """
        del tool_choice  # the scripted model cannot be forced; it answers what the customer asked
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = _bound_tools(kwargs)
        content, requests = self._respond(messages, tools)
        digest = _transcript_digest(messages)
        calls: list[ToolCall] = []
        for i, req in enumerate(requests):
            schema = tools[req.tool].get("properties", {})
            args = {k: _coerce(v, schema.get(k, {})) for k, v in req.args.items() if v is not None}
            calls.append(tool_call(name=req.tool, args=args, id=f"call_{len(messages)}_{i}_{digest}"))
        message = AIMessage(content=content, tool_calls=calls,
                            response_metadata={"model_name": self.model_name, "finish_reason":
                                               "tool_calls" if calls else "stop"})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _respond(self, messages: list[BaseMessage], tools: dict[str, dict[str, Any]]) -> tuple[str, list[_Request]]:
        if not messages:
            return _capabilities(set(tools)), []
        last = messages[-1]
        if isinstance(last, HumanMessage):
            earlier = [_content_text(m.content) for m in messages[:-1] if isinstance(m, HumanMessage)]
            return self._read_customer(_content_text(last.content), tools, earlier)
        if isinstance(last, ToolMessage):
            return self._report_results(messages, tools)
        return _capabilities(set(tools)), []

    def _read_customer(self, text: str, tools: dict[str, dict[str, Any]],
                       earlier: Sequence[str] = ()) -> tuple[str, list[_Request]]:
        requests, questions = parse_customer_message(text)
        for req in requests:
            if req.tool == "verify_customer" and len(req.args) < 2:
                _complete_identity(req.args, earlier)
        allowed = [r for r in requests if r.tool in tools]
        refused = sorted({_doing(r.tool, r.args) for r in requests if r.tool not in tools})
        notes = [f"I can't {what} here." for what in refused] + questions
        if not allowed and not notes:
            return _capabilities(set(tools)), []
        if not allowed and refused and not questions:
            notes.append(_capabilities(set(tools)))
        return " ".join(notes), allowed

    def _report_results(self, messages: list[BaseMessage], tools: dict[str, dict[str, Any]]) -> tuple[str, list[_Request]]:
        first = len(messages)
        while first > 0 and isinstance(messages[first - 1], ToolMessage):
            first -= 1
        results = [m for m in messages[first:] if isinstance(m, ToolMessage)]
        caller = messages[first - 1] if first > 0 and isinstance(messages[first - 1], AIMessage) else None
        called = {c["id"]: c for c in (caller.tool_calls if caller else [])}
        sentences: list[str] = []
        outcomes: list[tuple[str, str]] = []
        for result in results:
            call = called.get(result.tool_call_id)
            tool = (call["name"] if call else None) or result.name or "tool"
            sentence, outcome = _summary(tool, call["args"] if call else {}, result)
            outcomes.append((tool, outcome))
            if sentence and sentence not in sentences:
                sentences.append(sentence)
        if any(outcome == "verify" for _, outcome in outcomes):
            sentences.append(_VERIFY_ASK)
        follow_up: list[_Request] = []
        if outcomes and all(t == "verify_customer" and o == "ok" for t, o in outcomes) and caller is not None \
                and all(c["name"] == "verify_customer" for c in caller.tool_calls):
            follow_up = [r for r in _blocked_for_verification(messages[: first - 1]) if r.tool in tools]
        return " ".join(sentences), follow_up


def _complete_identity(args: dict[str, Any], earlier: Sequence[str]) -> None:
    """Add details the customer stated in earlier messages, newest first, until they identify.

    The back office takes the email alone, or the name and the zip: a customer who gave the name
    before and the zip now means both. An email, or a message that gives both, stands as it is.
    """
    for text in reversed(earlier):
        if "email" in args or {"name", "zip"} <= set(args):
            return
        found, _ = _identity(" ".join(text.split()), False)
        for key, value in (found.args.items() if found else ()):
            if key != "email":
                args.setdefault(key, value)


def _blocked_for_verification(history: list[BaseMessage]) -> list[_Request]:
    """The calls of the previous turn that were refused because the customer was not verified.

    ``history`` ends before the assistant message that asked to verify; the previous turn is
    what lies between the last two customer messages in it.
    """
    humans = [i for i, m in enumerate(history) if isinstance(m, HumanMessage)]
    if len(humans) < 2:
        return []
    window = history[humans[-2] + 1: humans[-1]]
    calls = {c["id"]: c for m in window if isinstance(m, AIMessage) for c in m.tool_calls}
    blocked: list[_Request] = []
    for m in window:
        if isinstance(m, ToolMessage) and m.tool_call_id in calls:
            call = calls[m.tool_call_id]
            if _outcome(_payload(m), call["name"], m.status) == "verify":
                blocked.append(_Request(call["name"], dict(call["args"])))
    return blocked
