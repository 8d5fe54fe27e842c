"""Tests for kato_web.engine.matching: LCS, similarity, matching blocks, extraction, alignment."""

import difflib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kato_web.engine.matching import (
    BlockMatcher,
    align,
    char_similarity,
    extract,
    lcs_length,
    matching_blocks,
    prefix_sums,
    similarity,
    token_similarity,
)

from .reference_impl import dp_lcs


def difflib_blocks(a, b, autojunk=False):
    """Return difflib's blocks without the sentinel."""
    sm = difflib.SequenceMatcher(None, a, b, autojunk=autojunk)
    return [tuple(m) for m in sm.get_matching_blocks()[:-1]]


def random_seq(rng, length, alphabet):
    return [rng.choice(alphabet) for _ in range(length)]


def test_section_5_2_lcs_exceeds_difflib_blocks():
    """Reproduce engine.md §5.2: LCS 2 gives 4/6 while the blocks hold only 'a'."""
    p, s = ["a", "b", "a"], ["b", "c", "a"]
    assert lcs_length(p, s) == 2
    assert token_similarity(p, s) == 4 / 6 == 0.6666666666666666
    assert matching_blocks(p, s) == [(0, 2, 1)]


def test_token_similarity_is_two_lcs_over_total_in_python_order():
    """Check the rapidfuzz-based similarity equals (2*lcs)/(|p|+|s|) bit for bit."""
    rng = random.Random(7)
    alphabet = ["a", "b", "c", "d", "e", "ab", "", "é", "x y"]
    for _ in range(2000):
        p = random_seq(rng, rng.randint(1, 30), alphabet)
        s = random_seq(rng, rng.randint(1, 30), alphabet)
        lcs = dp_lcs(p, s)
        assert lcs_length(p, s) == lcs
        assert token_similarity(p, s) == (2 * lcs) / (len(p) + len(s))


@given(
    st.lists(st.sampled_from(["a", "b", "c", "dd", "e"]), max_size=25),
    st.lists(st.sampled_from(["a", "b", "c", "dd", "f"]), max_size=25),
)
@settings(max_examples=300, deadline=None)
def test_lcs_matches_dynamic_programme(p, s):
    """Compare the rapidfuzz LCS with the textbook DP on arbitrary symbol lists."""
    assert lcs_length(p, s) == dp_lcs(p, s)


def test_lcs_is_exact_for_multicharacter_symbols():
    """Compare whole symbols, so 'ab' never matches 'a' followed by 'b'."""
    assert lcs_length(["ab"], ["a", "b"]) == 0
    assert lcs_length(["ab", "c"], ["ab", "c"]) == 2


def test_character_mode_is_ratio_of_joined_strings():
    """Compute character mode as fuzz.ratio of space-joined symbols over 100 (§5.2)."""
    p, s = ["hello", "world"], ["hello", "word"]
    # "hello world" vs "hello word": Indel distance 1 over 21 characters.
    assert char_similarity(p, s) == pytest.approx(1 - 1 / 21, rel=1e-12)
    assert similarity(p, s, use_token_matching=False) == char_similarity(p, s)
    assert similarity(p, s, use_token_matching=True) == 0.5


def test_blocks_equal_difflib_on_random_pairs():
    """Match difflib (autojunk off) on thousands of random pairs with small alphabets."""
    rng = random.Random(1234)
    for trial in range(3000):
        alphabet = ["a", "b", "c", "d", "e", "f"][: rng.randint(1, 6)]
        p = random_seq(rng, rng.randint(0, 25), alphabet)
        s = random_seq(rng, rng.randint(0, 25), alphabet)
        assert matching_blocks(p, s) == difflib_blocks(p, s), (p, s)


def test_blocks_equal_difflib_when_state_is_long():
    """Match difflib autojunk=False for |s| >= 200, where autojunk=True would differ."""
    rng = random.Random(99)
    differs_from_autojunk = 0
    for _ in range(60):
        alphabet = [f"s{k}" for k in range(rng.randint(2, 12))]
        p = random_seq(rng, rng.randint(1, 60), alphabet)
        s = random_seq(rng, rng.randint(200, 320), alphabet)
        ours = matching_blocks(p, s)
        assert ours == difflib_blocks(p, s)
        differs_from_autojunk += ours != difflib_blocks(p, s, autojunk=True)
    # The comparison is meaningful only if the popular-element heuristic actually bites here.
    assert differs_from_autojunk > 0


def test_block_matcher_reuses_state_index():
    """Give the same blocks when one matcher serves many patterns."""
    rng = random.Random(5)
    s = random_seq(rng, 15, ["a", "b", "c", "d"])
    matcher = BlockMatcher(s)
    for _ in range(500):
        p = random_seq(rng, rng.randint(1, 20), ["a", "b", "c", "d", "e"])
        assert matcher.blocks(p) == difflib_blocks(p, s)
        assert matcher.blocks(p, matcher.hits(p)) == difflib_blocks(p, s)


@given(
    st.lists(st.sampled_from("abcde"), max_size=30),
    st.lists(st.sampled_from("abcdz"), max_size=30),
)
@settings(max_examples=300, deadline=None)
def test_blocks_property_against_difflib(p, s):
    """Match difflib's blocks on arbitrary lists."""
    assert matching_blocks(p, s) == difflib_blocks(p, s)


def test_extract_canonical_case():
    """Build matches, M, r, a0 and q for engine.md §7.1."""
    p, s = ["a", "b", "c", "d"], ["a", "c"]
    ex = extract(len(p), s, matching_blocks(p, s))
    assert (ex.matches, ex.m, ex.number_of_blocks, ex.a0, ex.q) == (["a", "c"], 2, 2, 0, 3)


def test_extract_without_blocks_spans_whole_pattern():
    """Give a0 = 0 and q = |p| when nothing matches (θ = 0 shape, §5.4)."""
    ex = extract(3, ["p", "q"], [])
    assert (ex.matches, ex.m, ex.number_of_blocks, ex.a0, ex.q) == ([], 0, 0, 0, 3)


def _align(events, stm):
    p = [x for e in events for x in e]
    s = [x for e in stm for x in e]
    ex = extract(len(p), s, matching_blocks(p, s))
    return align(events, prefix_sums(events), ex, stm)


def test_align_mid_event_boundary_moves_event_to_present():
    """Apply the tail-event correction when the past boundary is mid-event (§7.2)."""
    al = _align([["a", "b"], ["c"], ["d"]], [["b"], ["c"]])
    assert (al.past, al.present, al.future) == ([], [["a", "b"], ["c"]], [["d"]])
    assert al.missing == [["a"], []]
    assert al.extras == [[], []]


def test_align_value_membership_quirk():
    """Move an aligned preceding event when it holds the first match by value (§7.4)."""
    al = _align([["a"], ["a"], ["b"]], [["a"], ["b"]])
    assert (al.past, al.present, al.future) == ([], [["a"], ["a"], ["b"]], [])
    assert al.missing == [[], [], []]


def test_align_keeps_aligned_past_without_shared_value():
    """Keep an aligned past event when it does not contain the first match (§10.3 past_field)."""
    al = _align([["beginning"], ["middle"], ["end"]], [["middle"], ["end"]])
    assert (al.past, al.present, al.future) == ([["beginning"]], [["middle"], ["end"]], [])


def test_align_extras_follow_stm_events():
    """Give one extras list per STM event, excluding any symbol of the present (§5.5)."""
    al = _align([["a"], ["b"]], [["a", "x", "y"], ["z"]])
    assert al.extras == [["x", "y"], ["z"]]
    assert len(al.missing) == len(al.present)


def test_prefix_sums():
    """Return event boundary offsets starting at 0."""
    assert prefix_sums([["a", "b"], ["c"], ["d"]]) == (0, 2, 3, 4)
