"""Drafts: saved once per key, listed per thread."""

from __future__ import annotations

from agent_kit.store import Store


def test_save_is_idempotent_by_key(store: Store) -> None:
    first = store.drafts.save("t1", "send_email", {"to": "a@example.com", "body": "hi"}, "h1", "key-1")
    again = store.drafts.save("t1", "send_email", {"to": "a@example.com", "body": "hi"}, "h1", "key-1")
    other = store.drafts.save("t1", "send_email", {"to": "b@example.com"}, "h2", "key-2")
    assert first == again != other
    assert [d.key for d in store.drafts.list()] == ["key-1", "key-2"]


def test_list_filters_by_thread_and_keeps_args(store: Store) -> None:
    store.drafts.save("t1", "send_email", {"to": "a@example.com", "n": [1, 2]}, "h1", "k1")
    store.drafts.save("t2", "send_sms", {"to": "+1"}, "h2", "k2")
    (draft,) = store.drafts.list("t1")
    assert (draft.tool, draft.args, draft.action_hash) == ("send_email", {"to": "a@example.com", "n": [1, 2]}, "h1")
    assert store.drafts.get(draft.id) == draft and store.drafts.get(999) is None
    assert [d.thread_id for d in store.drafts.list("t2")] == ["t2"]
    assert draft.to_json()["key"] == "k1"
