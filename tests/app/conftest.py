"""The ``app`` and ``sqlite_app`` fixtures build the reference agent here."""

from tests.reference_app import build_app  # noqa: F401
