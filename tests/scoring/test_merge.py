"""Merging contacts sums their scores in every model and keeps one history."""

from __future__ import annotations

from postillon.contacts.merge import merge_contacts
from postillon.runtime import Runtime
from tests.scoring.support import add_model, add_rule, history, new_contact, scores, track
from tests.tracking.support import run_worker_round


def test_a_merge_sums_every_model_and_once_rules_stay_fired(runtime: Runtime) -> None:
    add_model(runtime, "shoes", thresholds=[10])
    add_model(runtime, "hats")
    add_rule(runtime, event="Signed Up", points=7, frequency="once", model="shoes")
    ann, bob = new_contact(runtime), new_contact(runtime, "bob@example.com")
    track(runtime, bob, ("Signed Up", {}))
    run_worker_round(runtime)
    with runtime.database.transaction() as session:
        runtime.scoring.adjust(session, [ann], "main", 4)
        runtime.scoring.adjust(session, [ann], "shoes", 5)
        runtime.scoring.adjust(session, [bob], "main", 6)
    with runtime.database.transaction() as session:
        merge_contacts(
            session, survivor_id=ann, absorbed_id=bob, reason="same", now=runtime.clock.now()
        )
    assert scores(runtime, ann) == {"main": 10, "shoes": 12, "hats": 0}
    changes = [(c.delta, c.score, c.reason) for c in history(runtime, ann)]
    # Bob's history came along, then the merge added his scores.
    assert changes[-2:] == [(6, 10, "merge"), (7, 12, "merge")]
    assert (7, 7, "rule") in changes and len(changes) == 6

    track(runtime, ann, ("Signed Up", {}))  # Bob signed up already: the same person
    run_worker_round(runtime)
    assert scores(runtime, ann)["shoes"] == 12
