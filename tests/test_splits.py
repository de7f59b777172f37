"""The content-hash split rule: deterministic, proportional, independent parts."""

import collections

import pytest

from pipeline import splits

DIGESTS = [splits.content_hash(str(i).encode()) for i in range(6000)]


def test_split_is_a_function_of_the_bytes():
    rule = splits.SplitRule()
    assert splits.content_hash(b"same photo") == splits.content_hash(b"same photo")
    digest = splits.content_hash(b"same photo")
    assert rule.split_of(digest) == splits.SplitRule().split_of(digest)


def test_split_follows_the_percentages():
    counts = collections.Counter(splits.SplitRule.parse("70/15/15").split_of(d) for d in DIGESTS)
    assert counts["train"] / len(DIGESTS) == pytest.approx(0.70, abs=0.02)
    assert counts["val"] / len(DIGESTS) == pytest.approx(0.15, abs=0.02)
    assert counts["test"] / len(DIGESTS) == pytest.approx(0.15, abs=0.02)


def test_folds_cover_every_split_evenly():
    rule = splits.SplitRule(folds=5)
    pairs = collections.Counter((rule.split_of(d), rule.fold_of(d)) for d in DIGESTS)
    train = [pairs["train", fold] for fold in range(5)]
    assert min(train) > 0.8 * max(train)


def test_shards_are_shared_by_percentage():
    rule = splits.SplitRule(num_shards=32)
    assert [rule.shards_of(s) for s in splits.SPLITS] == [22, 5, 5]
    assert {rule.shard_of(d, "val") for d in DIGESTS} == set(range(5))


@pytest.mark.parametrize("text,message", [
    ("70/15", "three"), ("60/20/10", "add up to 100"), ("a/b/c", "70/15/15"), ("110/-5/-5", "non-negative"),
])
def test_bad_split_is_named(text, message):
    with pytest.raises(ValueError, match=message):
        splits.SplitRule.parse(text)
