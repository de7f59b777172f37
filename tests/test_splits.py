"""The content-hash split rule: deterministic, proportional, independent parts."""

import collections

import pytest

from pipeline import splits

DIGESTS = [splits.content_hash(str(i).encode()) for i in range(6000)]


def _digest(split_part: int, fold_part: int = 0, shard_part: int = 0) -> str:
    """A SHA-256 hex digest whose 16-hex-digit parts hold the given numbers."""
    return f"{split_part:016x}{fold_part:016x}{shard_part:016x}{0:016x}"


def test_content_hash_is_the_sha256_of_the_bytes():
    # FIPS 180-2 test vector: re-runs, other machines and Dataflow workers must all agree on it.
    assert splits.content_hash(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("bucket,split", [
    (0, "train"), (6999, "train"), (7000, "val"), (8499, "val"), (8500, "test"), (9999, "test"),
    (10_000 + 7000, "val"),  # the bucket is the first 16 hex digits modulo 10 000
])
def test_split_is_a_fixed_function_of_the_hash(bucket, split):
    """Pinned boundaries: a change here would move photos between splits in existing records."""
    assert splits.SplitRule().split_of(_digest(bucket)) == split


def test_split_fold_and_shard_read_separate_parts_of_the_hash():
    rule = splits.SplitRule(folds=5, num_shards=32)
    digest = _digest(7000, 3, 4)
    assert (rule.split_of(digest), rule.fold_of(digest), rule.shard_of(digest, "val")) == ("val", 3, 4)
    assert rule.fold_of(_digest(0, 3, 4)) == 3 and rule.shard_of(_digest(0, 3, 4), "val") == 4
    assert rule.split_of(_digest(7000, 1, 2)) == "val"


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
