"""Creating users; passwords are hashed with Argon2id."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts.fields import FieldError, normalise_email, normalise_text
from postillon.errors import Conflict, InvalidInput
from postillon.kit.ids import new_id
from postillon.models import User
from postillon.users import repository

_hasher = PasswordHasher()


class UserService:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def create(
        self, session: Session, *, email: str, name: str | None, password: str | None
    ) -> User:
        try:
            address = normalise_email(email)
        except FieldError as exc:
            raise InvalidInput.at("email", str(exc)) from None
        try:
            display_name = normalise_text(name) if name is not None else None
        except FieldError as exc:
            raise InvalidInput.at("name", str(exc)) from None
        if password is not None and len(password) < 12:
            raise InvalidInput.at("password", "must be at least 12 characters")
        if repository.by_email(session, address) is not None:
            raise Conflict(f"email: a user with the email {address} exists already")
        user = User(
            id=new_id(),
            email=address,
            name=display_name,
            password_hash=_hasher.hash(password) if password else None,
            created_at=self.clock.now(),
        )
        session.add(user)
        session.flush()
        return user

    def list(self, session: Session) -> list[User]:
        return repository.all_users(session)
