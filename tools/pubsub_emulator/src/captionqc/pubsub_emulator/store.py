"""SQLite persistence for `--data-dir`: topics, subscriptions and every unacknowledged message.

Config changes are written at once (they are rare). Message changes go through a write-behind journal that is
coalesced per (subscription, seq) and flushed every ~100 ms and on shutdown, so a message published and acked
within one flush window never touches the disk; a hard kill (SIGKILL) may lose at most that window.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.pubsub_v1 import types as pubsub_types

_LOG = logging.getLogger(__name__)

_TopicPb: Any = pubsub_types.Topic.pb()
_SubscriptionPb: Any = pubsub_types.Subscription.pb()
_MessagePb: Any = pubsub_types.PubsubMessage.pb()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, config BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (name TEXT PRIMARY KEY, config BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    subscription TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (subscription, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass
class StoredMessage:
    subscription: str
    seq: int
    message: Any  # google.pubsub.v1.PubsubMessage
    attempts: int


@dataclass
class Snapshot:
    topics: list[Any]
    subscriptions: list[Any]
    messages: list[StoredMessage]
    next_message_id: int


class Store:
    """The on-disk copy of the broker; every method runs on the event loop thread."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "pubsub.sqlite3"
        self._db = sqlite3.connect(self.path, isolation_level=None)
        # WAL + NORMAL: a crash of the process never corrupts the file, and commits do not fsync every time.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        # (subscription, seq) -> (serialized message, attempts), or None for "delete".
        self._journal: dict[tuple[str, int], tuple[Any, int] | None] = {}
        self._next_message_id: int | None = None

    def load(self) -> Snapshot:
        topics = [_TopicPb.FromString(row[0]) for row in self._db.execute("SELECT config FROM topics ORDER BY name")]
        subscriptions = [
            _SubscriptionPb.FromString(row[0])
            for row in self._db.execute("SELECT config FROM subscriptions ORDER BY name")
        ]
        messages = [
            StoredMessage(sub, seq, _MessagePb.FromString(blob), attempts)
            for sub, seq, blob, attempts in self._db.execute(
                "SELECT subscription, seq, message, attempts FROM messages ORDER BY subscription, seq"
            )
        ]
        row = self._db.execute("SELECT value FROM meta WHERE key = 'next_message_id'").fetchone()
        return Snapshot(topics, subscriptions, messages, int(row[0]) if row else 1)

    def put_topic(self, topic: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO topics (name, config) VALUES (?, ?)",
            (topic.name, topic.SerializeToString()),
        )

    def delete_topic(self, name: str) -> None:
        self._db.execute("DELETE FROM topics WHERE name = ?", (name,))

    def put_subscription(self, subscription: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO subscriptions (name, config) VALUES (?, ?)",
            (subscription.name, subscription.SerializeToString()),
        )

    def delete_subscription(self, name: str) -> None:
        self.flush()
        self._db.execute("BEGIN")
        self._db.execute("DELETE FROM subscriptions WHERE name = ?", (name,))
        self._db.execute("DELETE FROM messages WHERE subscription = ?", (name,))
        self._db.execute("COMMIT")

    def put_message(self, subscription: str, seq: int, message: Any, attempts: int) -> None:
        self._journal[(subscription, seq)] = (message, attempts)

    def delete_message(self, subscription: str, seq: int) -> None:
        self._journal[(subscription, seq)] = None

    def set_next_message_id(self, value: int) -> None:
        self._next_message_id = value

    def flush(self) -> None:
        """Write the journal in one transaction."""
        if not self._journal and self._next_message_id is None:
            return
        journal, self._journal = self._journal, {}
        upserts = [
            (sub, seq, state[0].SerializeToString(), state[1])
            for (sub, seq), state in journal.items()
            if state is not None
        ]
        deletes = [(sub, seq) for (sub, seq), state in journal.items() if state is None]
        self._db.execute("BEGIN")
        try:
            if upserts:
                self._db.executemany(
                    "INSERT OR REPLACE INTO messages (subscription, seq, message, attempts) VALUES (?, ?, ?, ?)",
                    upserts,
                )
            if deletes:
                self._db.executemany("DELETE FROM messages WHERE subscription = ? AND seq = ?", deletes)
            if self._next_message_id is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_message_id', ?)",
                    (self._next_message_id,),
                )
                self._next_message_id = None
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.flush()
        self._db.close()
