"""One error hierarchy for the whole domain; each class carries the HTTP status it maps to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with the input: where (a path such as `contacts[3].email`) and what."""

    location: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"loc": self.location, "msg": self.message}


def summarise(problems: Sequence[FieldProblem]) -> str:
    """`where: what; where: what` for the first five problems, and how many more."""
    summary = "; ".join(f"{p.location}: {p.message}" for p in problems[:5])
    if len(problems) > 5:
        summary += f"; and {len(problems) - 5} more"
    return summary


class PostillonError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, problems: Sequence[FieldProblem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = tuple(problems)

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.problems:
            body["problems"] = [p.as_dict() for p in self.problems]
        return body


class InvalidInput(PostillonError):
    status_code = 422
    code = "invalid_input"

    @classmethod
    def at(cls, location: str, message: str) -> InvalidInput:
        return cls(f"{location}: {message}", [FieldProblem(location, message)])

    @classmethod
    def of(cls, problems: Sequence[FieldProblem]) -> InvalidInput:
        return cls(summarise(problems), problems)


class BadRequest(PostillonError):
    status_code = 400
    code = "bad_request"


class NotAuthenticated(PostillonError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(PostillonError):
    status_code = 403
    code = "forbidden"


class NotFound(PostillonError):
    status_code = 404
    code = "not_found"


class Conflict(PostillonError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(PostillonError):
    status_code = 413
    code = "payload_too_large"


class TooManyRequests(PostillonError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailable(PostillonError):
    """Busy for now: the client should retry (Segment's libraries retry 5xx and 429)."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
