"""Stand-in tools with the reference application's names and argument shapes.

The model only needs each tool's name and JSON schema; these bodies never run.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool

from graphs.scripted_model import CustomerServiceModel


@tool
def verify_customer(email: str | None = None, name: str | None = None, zip: str | None = None) -> dict[str, Any]:
    """Verify the customer by email, or by name and zip code."""
    return {}


@tool
def get_order(order_id: int) -> dict[str, Any]:
    """Look up an order."""
    return {}


@tool
def search_help(query: str) -> dict[str, Any]:
    """Search the help pages."""
    return {}


@tool
def issue_refund(order_id: int, amount: float, reason: str) -> dict[str, Any]:
    """Refund an amount on an order."""
    return {}


@tool
def apply_discount(order_id: int, percent: float, reason: str) -> dict[str, Any]:
    """Apply a percentage discount to an order."""
    return {}


@tool
def cancel_order(order_id: int, reason: str) -> dict[str, Any]:
    """Cancel an order."""
    return {}


@tool
def change_address(order_id: int, line1: str, city: str, zip: str) -> dict[str, Any]:
    """Change an order's delivery address."""
    return {}


@tool
def recommend_resolution(order_id: int, resolution: str, note: str) -> dict[str, Any]:
    """Recommend a resolution for an order."""
    return {}


@tool
def draft_reply(subject: str, body: str) -> dict[str, Any]:
    """Draft a reply to the customer."""
    return {}


@tool
def create_ticket(subject: str, body: str, priority: str) -> dict[str, Any]:
    """Open a support ticket."""
    return {}


@tool
def update_preferences(email_opt_in: bool | None = None, sms_opt_in: bool | None = None,
                       language: str | None = None) -> dict[str, Any]:
    """Change the customer's contact preferences."""
    return {}


@tool
def request_human(reason: str) -> dict[str, Any]:
    """Hand the conversation to a person."""
    return {}


@tool
def dispute_payment(order_id: int, reason: str) -> dict[str, Any]:
    """Dispute a payment."""
    return {}


ALL_TOOLS: list[BaseTool] = [
    verify_customer, get_order, search_help, issue_refund, apply_discount, cancel_order, change_address,
    recommend_resolution, draft_reply, create_ticket, update_preferences, request_human, dispute_payment,
]


@pytest.fixture
def all_tools() -> list[BaseTool]:
    return list(ALL_TOOLS)


@pytest.fixture
def model(all_tools: list[BaseTool]) -> Runnable[Any, Any]:
    """The scripted model bound to every reference tool."""
    return CustomerServiceModel().bind_tools(all_tools)


@pytest.fixture
def bare_model() -> BaseChatModel:
    return CustomerServiceModel()
