"""Packing sources into filtered-stream rules, planning their sync, and X's reconnect back-off (no network)."""

from __future__ import annotations

import pytest

from feedapp.ingest.stream import Reconnect
from feedapp.xapi.stream import TAG, Rule, plan_rules, rule_values

NAMES = [f"depot_{i:04d}" for i in range(120)]


def test_rules_are_packed_to_the_length_limit_and_hold_every_name_once():
    values = rule_values(NAMES, max_length=512)
    assert all(len(v) <= 512 for v in values)
    found = [name for v in values for name in v.replace("from:", "").split(" OR ")]
    assert sorted(found) == sorted(NAMES)
    # as few rules as the length allows: each rule but the last could not take one more name
    assert all(len(v) + len(" OR from:depot_0000") > 512 for v in values[:-1])
    assert len(values) == -(-sum(len(f"from:{n}") + 4 for n in NAMES) // 516)


def test_no_repost_rules_keep_reposts_out_and_still_fit():
    values = rule_values(NAMES, no_reposts=True, max_length=512)
    assert all(len(v) <= 512 and v.startswith("(") and v.endswith(") -is:retweet") for v in values)
    assert sum(v.count("from:") for v in values) == len(NAMES)


def test_one_name_longer_than_nothing_still_gets_its_rule():
    assert rule_values(["a"], max_length=6) == ["from:a"]
    assert rule_values([]) == []


def ours(rule_id, value):
    return Rule(rule_id, value, TAG)


def test_sync_plan_keeps_right_rules_and_adds_only_the_new_name():
    existing = [ours(str(i), v) for i, v in enumerate(rule_values(NAMES), 1)]
    wanted = {n: False for n in NAMES} | {"new_depot": False}
    add, delete = plan_rules(existing, wanted)
    assert (add, delete) == (["from:new_depot"], [])


def test_sync_plan_repacks_only_the_rule_that_lost_a_name():
    existing = [ours(str(i), v) for i, v in enumerate(rule_values(NAMES), 1)]
    gone = NAMES[0]
    add, delete = plan_rules(existing, {n: False for n in NAMES if n != gone})
    assert delete == ["1"]
    first = set(existing[0].usernames) - {gone}
    assert {n for v in add for n in Rule("x", v).usernames} == first


def test_sync_plan_leaves_others_rules_alone_and_names_are_case_insensitive():
    existing = [Rule("7", "from:Depot_0001 OR from:depot_0002", "someone else"), Rule("8", "coffee", None),
                ours("9", "from:Depot_0001")]
    add, delete = plan_rules(existing, {"depot_0001": False})
    assert (add, delete) == ([], [])


def test_sync_plan_moves_a_name_whose_repost_setting_changed():
    existing = [ours("1", "from:a OR from:b")]
    add, delete = plan_rules(existing, {"a": False, "b": True})
    assert delete == ["1"]
    assert sorted(add) == ["(from:b) -is:retweet", "from:a"]


def test_sync_plan_deletes_our_duplicate_and_foreign_shaped_rules():
    existing = [ours("1", "from:a"), ours("2", "from:a"), ours("3", "from:b lang:fr")]
    add, delete = plan_rules(existing, {"a": False, "b": False})
    assert sorted(delete) == ["2", "3"] and add == ["from:b"]


@pytest.mark.parametrize("status, first", [(503, 5.0), (500, 5.0), (429, 60.0)])
def test_http_errors_back_off_exponentially_up_to_320_seconds(status, first):
    backoff = Reconnect()
    waits = [backoff.after_http_error(status) for _ in range(10)]
    assert waits[0] == first and waits[1] == first * 2
    assert max(waits) == 320.0 and waits[-1] == 320.0
    assert all(b >= a for a, b in zip(waits, waits[1:]))


def test_network_errors_back_off_linearly_by_250_ms_up_to_16_seconds():
    backoff = Reconnect()
    waits = [backoff.after_network_error() for _ in range(70)]
    assert waits[:4] == [0.25, 0.5, 0.75, 1.0]
    assert waits[63] == 16.0 and waits[-1] == 16.0


def test_a_connection_that_delivered_resets_the_back_off():
    backoff = Reconnect()
    for _ in range(5):
        backoff.after_http_error(503)
        backoff.after_network_error()
    backoff.reset()
    assert (backoff.after_http_error(503), backoff.after_network_error()) == (5.0, 0.25)


def test_a_429_after_server_errors_waits_at_least_a_minute():
    backoff = Reconnect()
    backoff.after_http_error(503)
    assert backoff.after_http_error(429) == 60.0
