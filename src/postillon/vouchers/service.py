"""Voucher pools: codes imported or generated, each handed to one contact once, and the
images of codes served at signed links."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound
from postillon.kit.ids import new_id
from postillon.messages.links import LinkKind, LinkSigner
from postillon.models import VoucherPool
from postillon.vouchers import repository
from postillon.vouchers.images import Barcode, code_problem, ean13_check_digit, voucher_png
from postillon.vouchers.schemas import CodesAdded, VoucherPoolIn, VoucherPoolOut

_KEY = re.compile(r"[a-z0-9_-]{1,100}")
# Generated codes are drawn in rounds; a pool whose pattern is nearly exhausted stops.
_GENERATE_ROUNDS = 20


@dataclass(frozen=True)
class Voucher:
    """What `voucher("key")` gives a template."""

    pool: str
    code: str
    image_url: str


class VoucherService:
    def __init__(self, clock: Clock, links: LinkSigner) -> None:
        self.clock = clock
        self.links = links

    def create_pool(self, session: Session, data: VoucherPoolIn) -> VoucherPoolOut:
        """A new pool; 409 if its key is taken."""
        problems: list[FieldProblem] = []
        if not _KEY.fullmatch(data.key):
            problems.append(FieldProblem("key", "must be 1-100 of a-z, 0-9, - and _"))
        if len(set(data.alphabet)) != len(data.alphabet) or not data.alphabet.isprintable():
            problems.append(FieldProblem("alphabet", "must be distinct printable characters"))
        if not data.prefix.isprintable():
            problems.append(FieldProblem("prefix", "must be printable characters"))
        if data.barcode is Barcode.code128 and not (data.alphabet + data.prefix).isascii():
            problems.append(FieldProblem("alphabet", "must be ASCII for Code 128"))
        ean_prefix = data.prefix.isdigit() or not data.prefix
        if data.barcode is Barcode.ean13 and (not ean_prefix or len(data.prefix) > 11):
            problems.append(FieldProblem("prefix", "EAN-13 prefixes are at most 11 digits"))
        if problems:
            raise InvalidInput.of(problems)
        if repository.pool_by_key(session, data.key) is not None:
            raise Conflict(
                f"a voucher pool with key {data.key!r} exists already",
                [FieldProblem("key", "is taken")],
            )
        pool = VoucherPool(
            id=new_id(),
            key=data.key,
            name=data.name or data.key,
            kind=data.kind,
            prefix=data.prefix,
            code_length=data.code_length,
            alphabet=data.alphabet,
            barcode=data.barcode,
            created_at=self.clock.now(),
        )
        repository.add_pool(session, pool)
        return self._out(session, pool)

    def list_pools(self, session: Session) -> list[VoucherPoolOut]:
        pools = repository.all_pools(session)
        counts = repository.counts(session, [pool.id for pool in pools])
        return [_pool_out(pool, *counts[pool.id]) for pool in pools]

    def get_pool(self, session: Session, key: str) -> VoucherPoolOut:
        return self._out(session, self._pool(session, key))

    def import_codes(
        self,
        session: Session,
        key: str,
        codes: Sequence[str],
        *,
        locations: Sequence[str] | None = None,
    ) -> CodesAdded:
        """Add codes to a pool; every bad code is reported at its location (`codes[3]`,
        or the CSV line the caller names) and nothing is added then."""
        pool = self._pool(session, key)
        where = locations or [f"codes[{index}]" for index in range(len(codes))]
        barcode = Barcode(pool.barcode)
        cleaned = [code.strip() for code in codes]
        problems = [
            FieldProblem(where[index], problem)
            for index, code in enumerate(cleaned)
            if (problem := code_problem(barcode, code)) is not None
        ]
        if problems:
            raise InvalidInput.of(problems)
        return self._add(session, pool, cleaned)

    def generate_codes(self, session: Session, key: str, count: int) -> CodesAdded:
        """Add `count` new random codes from the pool's pattern."""
        pool = self._pool(session, key)
        added = 0
        for _ in range(_GENERATE_ROUNDS):
            batch = [self._random_code(pool) for _ in range(count - added)]
            added += self._add(session, pool, batch).added
            if added >= count:
                break
        else:
            raise Conflict(f"the pattern of pool {key!r} has too few unused codes left")
        return CodesAdded(added=added, duplicates=0, pool=self._out(session, pool))

    def assign(
        self,
        session: Session,
        pool: VoucherPool,
        messages_by_contact: Mapping[uuid.UUID, uuid.UUID],
    ) -> dict[uuid.UUID, Voucher]:
        """The code of each contact in `pool`, handing free codes to those without one
        (recording the message it went into). Contacts missing from the answer found the
        pool exhausted. A handful of queries whatever the number of contacts."""
        repository.serialize_pool(session, pool.id)
        held = repository.codes_of_contacts(session, pool.id, messages_by_contact)
        waiting = [contact_id for contact_id in messages_by_contact if contact_id not in held]
        if waiting:
            now = self.clock.now()
            free = repository.free_codes(session, pool.id, len(waiting))
            rows = [
                {"id": code_id, "contact_id": contact_id,
                 "message_id": messages_by_contact[contact_id], "assigned_at": now}
                for contact_id, (code_id, _) in zip(waiting, free, strict=False)
            ]  # fmt: skip
            repository.assign_codes(session, rows)
            held.update(
                (contact_id, code) for contact_id, (_, code) in zip(waiting, free, strict=False)
            )
        return {contact_id: self.voucher(pool, code) for contact_id, code in held.items()}

    def sample(self, session: Session, pool: VoucherPool, contact_id: uuid.UUID) -> Voucher:
        """For previews: the contact's code if it has one, else a code that would be
        handed out (nothing is assigned)."""
        held = repository.codes_of_contacts(session, pool.id, [contact_id]).get(contact_id)
        code = held or repository.first_free_code(session, pool.id) or self._random_code(pool)
        return self.voucher(pool, code)

    def voucher(self, pool: VoucherPool, code: str) -> Voucher:
        url = self.links.url(LinkKind.voucher, [pool.barcode, code], ".png")
        return Voucher(pool=pool.key, code=code, image_url=url)

    def image(self, token: str) -> bytes:
        """The PNG of a signed voucher link's code; NotFound for a token we did not make."""
        payload = self.links.read(LinkKind.voucher, token.removesuffix(".png"))
        if not (isinstance(payload, list) and len(payload) == 2):
            raise NotFound("no such voucher image")
        barcode, code = payload
        if barcode not in Barcode.__members__ or not isinstance(code, str):
            raise NotFound("no such voucher image")
        if code_problem(Barcode(barcode), code) is not None:
            raise NotFound("no such voucher image")
        return voucher_png(Barcode(barcode), code)

    def _add(self, session: Session, pool: VoucherPool, codes: Sequence[str]) -> CodesAdded:
        unique = list(dict.fromkeys(codes))
        known = repository.existing_codes(session, pool.id, unique)
        rows = [
            {"id": new_id(), "pool_id": pool.id, "code": code}
            for code in unique
            if code not in known
        ]
        repository.insert_codes(session, rows)
        return CodesAdded(
            added=len(rows), duplicates=len(codes) - len(rows), pool=self._out(session, pool)
        )

    def _random_code(self, pool: VoucherPool) -> str:
        if pool.barcode == Barcode.ean13:
            body = pool.prefix + "".join(
                secrets.choice("0123456789") for _ in range(12 - len(pool.prefix))
            )
            return body + ean13_check_digit(body)
        return pool.prefix + "".join(secrets.choice(pool.alphabet) for _ in range(pool.code_length))

    def _pool(self, session: Session, key: str) -> VoucherPool:
        pool = repository.pool_by_key(session, key)
        if pool is None:
            raise NotFound(f"no voucher pool has the key {key!r}")
        return pool

    def _out(self, session: Session, pool: VoucherPool) -> VoucherPoolOut:
        return _pool_out(pool, *repository.counts(session, [pool.id])[pool.id])


def _pool_out(pool: VoucherPool, free: int, assigned: int) -> VoucherPoolOut:
    return VoucherPoolOut(
        id=pool.id, key=pool.key, name=pool.name, kind=pool.kind, prefix=pool.prefix,
        code_length=pool.code_length, alphabet=pool.alphabet, barcode=pool.barcode,
        created_at=pool.created_at, free=free, assigned=assigned,
    )  # fmt: skip
