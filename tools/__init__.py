"""The reference application: a retail back office (:class:`Shop`) and the tools an agent uses on it.

A template user replaces this package with their own tools and system of record.
"""

from tools.customer_service import build_compensations, build_tools, order_facts
from tools.shop import Shop, ShopError

__all__ = ["Shop", "ShopError", "build_compensations", "build_tools", "order_facts"]
