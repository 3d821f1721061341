"""The pure parts of the Gmail sync (worker/google/sync.py): reading metadata, history pages, ids."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.google.sync import added_ids, message_facts, newer

MESSAGE = {
    "id": "19abc",
    "threadId": "19ab0",
    "labelIds": ["INBOX", "UNREAD"],
    "snippet": "Can we move the call?",
    "historyId": "1234",
    "internalDate": "1795000000000",
    "payload": {
        "headers": [
            {"name": "From", "value": "Jane Buyer <Jane.Buyer@Client.example>"},
            {"name": "To", "value": "Rep <rep@acme.example>, other@acme.example"},
            {"name": "Cc", "value": "boss@client.example"},
            {"name": "Subject", "value": "Re: pricing"},
            {"name": "Message-ID", "value": "<abc@client.example>"},
            {"name": "References", "value": "<x@acme.example>"},
            {"name": "In-Reply-To", "value": "<y@acme.example>"},
        ]
    },
}


def test_message_facts_reads_the_metadata_headers() -> None:
    f = message_facts(MESSAGE)
    assert (f.gmail_id, f.thread_id, f.history_id) == ("19abc", "19ab0", 1234)
    assert (f.from_addr, f.from_name) == ("jane.buyer@client.example", "Jane Buyer")
    assert f.to_addrs == ["rep@acme.example", "other@acme.example", "boss@client.example"]
    assert (f.subject, f.rfc822_id) == ("Re: pricing", "<abc@client.example>")
    assert f.references == "<x@acme.example> <y@acme.example>"
    assert f.received_at == datetime.fromtimestamp(1_795_000_000, UTC)


def test_message_facts_survives_missing_headers_and_dates() -> None:
    f = message_facts({"id": "1", "internalDate": "soon", "payload": {}})
    assert (f.from_addr, f.subject, f.history_id, f.references, f.to_addrs) == ("", None, None, None, [])


def test_added_ids_keep_first_seen_order_once_and_inbox_only() -> None:
    def added(i: str, labels: list[str] | None = None) -> dict:
        message = {"id": i} if labels is None else {"id": i, "labelIds": labels}
        return {"messagesAdded": [{"message": message}]}

    pages = [
        {"history": [added("a", ["INBOX"]), added("b", ["SENT"])]},
        {"history": [added("a", ["INBOX"]), added("c"), {"messages": [{"id": "d"}]}]},
        {},
    ]
    assert added_ids(pages) == ["a", "c"]


def test_newer_keeps_the_larger_history_id() -> None:
    assert newer("100", 99) == "100"
    assert newer("100", "101") == "101"
    assert newer(None, 7) == "7"
    assert newer("100", None) == "100"
    assert newer(None, None) is None
