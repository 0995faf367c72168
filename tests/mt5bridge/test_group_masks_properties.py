"""MT5 group masks (mt5bridge/groups.py): the rules of docs/bonuses.md "Group masks", as properties, and the
simulated server selecting users by the same reading."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mt5bridge import gateway as gw
from mt5bridge.groups import GroupMaskError, filter_groups, group_matches, mask_problems, validate_group_mask

# Group paths like real\pro or demo\eu\vip, mixed case; patterns the same with '*' anywhere in a part.
part = st.text(alphabet="abAB", min_size=1, max_size=3)
groups = st.lists(part, min_size=1, max_size=3).map("\\".join)
patterns = st.lists(st.text(alphabet="abAB*", min_size=1, max_size=4), min_size=1, max_size=3).map("\\".join)
pattern_lists = st.lists(patterns, min_size=1, max_size=4)


def oracle(group: str, pattern: str) -> bool:
    """One pattern, read by the standard library: '*' is any run, case ignored ('[' and '?' never occur here)."""
    return fnmatch.fnmatchcase(group.lower(), pattern.lower())


@given(groups, patterns)
def test_one_pattern_matches_as_a_wildcard_ignoring_case(group, pattern):
    assert group_matches(group, pattern) == oracle(group, pattern)
    assert group_matches(group.upper(), pattern.lower()) == group_matches(group.lower(), pattern.upper())


@given(groups, pattern_lists)
def test_a_comma_list_of_inclusions_selects_what_any_of_them_selects(group, inclusions):
    assert group_matches(group, ",".join(inclusions)) == any(oracle(group, p) for p in inclusions)


@given(groups, pattern_lists, st.data())
def test_the_order_of_inclusions_and_of_exclusions_does_not_matter(group, inclusions, data):
    exclusions = data.draw(pattern_lists)
    mask = ",".join([*inclusions, *(f"!{x}" for x in exclusions)])
    shuffled = ",".join(
        [*data.draw(st.permutations(inclusions)), *(f"!{x}" for x in data.draw(st.permutations(exclusions)))]
    )
    expected = any(oracle(group, p) for p in inclusions) and not any(oracle(group, x) for x in exclusions)
    assert group_matches(group, mask) == group_matches(group, shuffled) == expected


@given(groups, pattern_lists, patterns)
def test_an_exclusion_removes_every_group_it_matches(group, inclusions, excluded):
    mask = ",".join(inclusions)
    assert group_matches(group, f"{mask},!{excluded}") == (group_matches(group, mask) and not oracle(group, excluded))


@given(groups, pattern_lists, patterns)
def test_the_last_matching_pattern_decides_an_inclusion_after_an_exclusion_takes_groups_back(group, masks, taken):
    mask = ",".join([masks[0], *(f"!{x}" for x in masks[1:])])
    assert group_matches(group, f"{mask},{taken}") == (group_matches(group, mask) or oracle(group, taken))


@given(groups, pattern_lists)
def test_a_mask_of_exclusions_only_starts_from_every_group(group, exclusions):
    mask = ",".join(f"!{x}" for x in exclusions)
    assert group_matches(group, mask) == (not any(oracle(group, x) for x in exclusions))
    assert group_matches(group, f"*,{mask}") == group_matches(group, mask)


@given(pattern_lists, st.booleans())
def test_masks_written_as_mt5_writes_them_are_well_formed(items, negate_first):
    if negate_first:
        items = [f"!{items[0]}", *items[1:]]
    assert mask_problems(",".join(items)) == []
    assert mask_problems(items) == []  # a list is the same comma list


def test_a_list_reads_as_the_comma_list_in_its_order():
    assert filter_groups(["real\\pro", "real\\vip"], ["real\\*", "!real\\vip"]) == ["real\\pro"]
    assert filter_groups(["real\\pro", "real\\vip"], ["real\\*,!real\\vip"]) == ["real\\pro"]


def test_the_star_crosses_path_separators_and_the_backslash_is_literal():
    assert group_matches("real\\eu\\vip", "real\\*")
    assert not group_matches("realpro", "real\\*")
    assert not group_matches("real\\pro", "real*pro\\x")
    assert group_matches("demo\\Netting", "DEMO\\netting")
    assert not group_matches("anything", "")


@pytest.mark.parametrize(
    ("mask", "words"),
    [
        ("real\\*,,demo*", "empty"),
        ("real\\*,", "empty"),
        ("!", "'!' must be followed"),
        ("!!demo*", "'!' must be followed"),
        ("real/*", "backslash"),
        ("real\\", "empty path part"),
        ("real\\\\pro", "empty path part"),
        ("\\real", "empty path part"),
        ("real?", "cannot have"),
        ("real\\pro;demo", "cannot have"),
    ],
)
def test_a_malformed_mask_is_refused_with_the_pattern_and_the_reason(mask, words):
    problems = mask_problems(mask)
    assert len(problems) == 1 and words in problems[0], problems
    with pytest.raises(GroupMaskError, match="Pattern"):
        validate_group_mask(mask)


@pytest.mark.django_db
def test_the_simulated_server_selects_users_by_the_same_reading():
    from mt5bridge.simulated import create_account  # noqa: PLC0415 (the simulated server, test set-up only)

    accounts = {9101: "demo\\standard", 9102: "demo\\netting", 9103: "real\\pro", 9104: "real\\eu\\vip"}
    for login, group in accounts.items():
        create_account(login=login, password="pw", group=group)
    gateway = gw.get_gateway("simulated")
    for mask in ("real\\*", "!demo*", "*,!demo*", "real\\*,!*vip", "!real*,real\\eu\\vip", "DEMO\\*", "x*"):
        selected = sorted(u.login for u in gateway.users(mask) if u.login in accounts)
        assert selected == sorted(login for login, group in accounts.items() if group_matches(group, mask)), mask
    assert sorted(u.login for u in gateway.users("!demo*") if u.login in accounts) == [9103, 9104]
