"""Ids made without `UUID.__init__`'s checks are ordinary UUIDs; the tuned collector
still collects."""

from __future__ import annotations

import gc
import pickle
import uuid
import weakref

from postillon.kit.ids import new_id, new_ordered_id, new_ordered_ids
from postillon.kit.memory import YOUNG_THRESHOLD, tune_for_batches


def test_new_ids_are_version_7_uuids_like_any_other() -> None:
    made = new_id()
    same = uuid.UUID(made.hex)
    assert made == same and hash(made) == hash(same) and str(made) == str(same)
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert {same: 1}[made] == 1
    assert pickle.loads(pickle.dumps(made)) == made


def test_ordered_ids_grow_in_the_order_made_within_and_across_blocks() -> None:
    made = [new_ordered_id(), *new_ordered_ids(1000), new_ordered_id(), *new_ordered_ids(3)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(one.version == 7 and one.variant == uuid.RFC_4122 for one in made)
    assert new_ordered_ids(0) == []


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_the_tuned_collector_still_collects_cycles() -> None:
    before = gc.get_threshold()
    try:
        tune_for_batches()
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        first, second = _Node(), _Node()
        first.other, second.other = second, first
        watch = weakref.ref(first)
        del first, second
        gc.collect()
        assert watch() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
