"""The C parser against the outcomes the Python parser it replaced gave
for 100,000 generated names in both grammars (portspec_outcomes.json.gz,
recorded by portspec_outcomes.py after a differential run that found no
difference): every request field, every errno, position and message.  Since
then, messages that name an option's key quote it as the user typed it
("key 'host-rings'", not 'host_rings'): those 602 recorded messages were
rewritten to that spelling and nothing else."""
from __future__ import annotations

import dataclasses
import itertools

import pytest

import portspec_outcomes as recorded
from nmcompat._portspec import parse


@pytest.fixture(scope="module")
def records():
    return recorded.load()


def test_the_fixture_is_the_generated_corpus(records):
    """The names are those the recorder generates (SEED, COUNT), so the
    fixture can be recorded again from the same corpus."""
    assert len(records) == recorded.COUNT
    head = list(itertools.islice(recorded.corpus(), 3000))
    assert [r[0] for r in records[:3000]] == head


def test_the_corpus_reaches_both_outcomes_of_both_grammars(records):
    """Not a corpus of one kind of error: requests and errors in both
    grammars, options and pipes among the requests, many distinct errors."""
    for column in (1, 2):
        kinds = {r[column][0] for r in records}
        assert kinds == {"spec", "error"}
    specs = [r[1] for r in records if r[1][0] == "spec"]
    assert sum(1 for s in specs if s[7]) > 100 and sum(1 for s in specs if s[9]) > 100
    assert sum(1 for s in specs if s[10]) > 1000
    assert len({r[c][3] for r in records for c in (1, 2) if r[c][0] == "error"}) > 1000


PREFIX_UNKNOWN = "invalid request, prefix unknown or missing"


def _without_hint(outcome: list) -> list:
    """The recorded corpus predates the hint that a later change appends
    to one message, "prefix unknown or missing (a port name starts with
    ...)", also inside @share's message (tests/unit/test_open_messages.py
    checks the hint itself): compared without it, that message must still
    be the one recorded."""
    hint = PREFIX_UNKNOWN + " (a port name starts with "
    if outcome[0] == "error" and hint in outcome[3] and outcome[3].endswith(")"):
        return [*outcome[:3], outcome[3][:outcome[3].index(hint)] + PREFIX_UNKNOWN]
    return outcome


def differences(records, parser):
    wrong = []
    for text, *outcomes in records:
        for grammar, want in zip(recorded.GRAMMARS, outcomes):
            got = _without_hint(recorded.outcome(parser, text, grammar))
            if got != want:
                wrong.append(f"{text!r} {grammar}: recorded {want}, now {got}")
    return wrong


def test_every_recorded_outcome(records):
    wrong = differences(records, parse)
    assert not wrong, f"{len(wrong)} differences, the first:\n" + "\n".join(wrong[:10])


def test_the_replay_sees_a_difference(records):
    """A parser that answers differently for one legacy name is caught."""
    text = next(r[0] for r in records if r[2][0] == "spec")

    def off_by_one(name, grammar):
        spec = parse(name, grammar)
        return dataclasses.replace(spec, ringid=spec.ringid + 1) if name == text else spec

    wrong = differences(records[:20000], off_by_one)
    assert wrong and wrong[0].startswith(f"{text!r}")
