"""The preference topics: configurable kinds of marketing mail (seeded: newsletter,
offers, product-news)."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.errors import Conflict, InvalidInput, NotFound
from postillon.subscriptions import repository
from postillon.subscriptions.schemas import TopicIn, TopicOut, TopicPatch

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


class TopicService:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def list(self, session: Session) -> list[TopicOut]:
        """Every topic, in preference-page order."""
        return [
            TopicOut.model_validate(t, from_attributes=True) for t in repository.topics(session)
        ]

    def get(self, session: Session, key: str) -> TopicOut:
        topic = repository.topic(session, key)
        if topic is None:
            raise NotFound(f"no topic with the key {key!r}")
        return TopicOut.model_validate(topic, from_attributes=True)

    def create(self, session: Session, data: TopicIn) -> TopicOut:
        """Add a topic; its key is what templates name it by, and never changes."""
        if not _KEY.match(data.key):
            raise InvalidInput.at(
                "key", "use lower-case letters, digits, - and _ (starting with a letter or digit)"
            )
        if repository.topic(session, data.key) is not None:
            raise Conflict(f"key: a topic {data.key!r} exists already")
        now = self.clock.now()
        position = (
            data.position if data.position is not None else repository.next_topic_position(session)
        )
        repository.add_topic(
            session,
            {
                "key": data.key,
                "name": data.name,
                "description": data.description,
                "position": position,
                "created_at": now,
                "updated_at": now,
            },
        )
        return self.get(session, data.key)

    def update(self, session: Session, key: str, data: TopicPatch) -> TopicOut:
        self.get(session, key)
        values = data.model_dump(exclude_unset=True)
        if values.get("name", "") is None or values.get("position", 0) is None:
            raise InvalidInput.at("body", "name and position cannot be null")
        values["updated_at"] = self.clock.now()
        repository.change_topic(session, key, values)
        session.expire_all()
        return self.get(session, key)

    def delete(self, session: Session, key: str) -> None:
        """Remove a topic no template is on; contacts' choices on it go with it."""
        self.get(session, key)
        templates = repository.templates_on_topic(session, key)
        if templates:
            raise Conflict(
                f"the templates {', '.join(sorted(templates))} are on the topic {key!r}; "
                "move them to another topic first"
            )
        repository.delete_topic(session, key)
