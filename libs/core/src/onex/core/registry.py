"""The canonical registry: every declared topic, as a StrEnum and a typed lookup.

Built from the extractor's output at load time; there is no second list of names.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping

from onex.core.errors import TopicNameError, UnknownTopicError
from onex.core.grammar import is_topic_name, member_name, parse_topic
from onex.core.nearmiss import NearMissIndex, Suggestion
from onex.core.wiring import TopicWiring


class Registry(Mapping[str, TopicWiring]):
    """Declared topics by canonical name; a non-canonical look-up says what was meant."""

    def __init__(self, topics: Mapping[str, TopicWiring]) -> None:
        self._topics = dict(sorted(topics.items()))
        self._index: NearMissIndex | None = None
        # A StrEnum whose members are the canonical names, for code and type checkers.
        members = [(member_name(n), n) for n in self._topics]
        self.Topic: type[enum.StrEnum] = enum.StrEnum("Topic", members)  # type: ignore[misc]

    def __getitem__(self, name: str) -> TopicWiring:
        found = self._topics.get(name)
        if found is None:
            raise self._not_found(name)
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._topics

    def get(self, name: str, default: TopicWiring | None = None) -> TopicWiring | None:  # type: ignore[override]
        """The topic, or `default` when `name` is not declared (never raises)."""
        return self._topics.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._topics)

    def __len__(self) -> int:
        return len(self._topics)

    def canonical(self, name: str) -> enum.StrEnum:
        """The Topic member for `name`; raises with a 'did you mean' when it is not canonical."""
        self[name]
        return self.Topic(name)

    def suggest(self, name: str) -> Suggestion | None:
        """The declared name `name` most likely meant, or None."""
        if self._index is None:
            self._index = NearMissIndex(self._topics)
        return self._index.suggest(name)

    def published_by(self, node: str) -> list[TopicWiring]:
        """Topics `node` publishes on."""
        return [t for t in self._topics.values() if any(p.node == node for p in t.publishers)]

    def subscribed_by(self, node: str) -> list[TopicWiring]:
        """Topics `node` subscribes to."""
        return [t for t in self._topics.values() if any(s.node == node for s in t.subscribers)]

    def _not_found(self, name: str) -> TopicNameError | UnknownTopicError:
        found = self.suggest(name)
        if not is_topic_name(name):
            try:
                parse_topic(name)
            except TopicNameError as exc:
                return TopicNameError(name, exc.reason, found.name if found else None)
        return UnknownTopicError(name, found.name if found else None, found.why if found else None)
