"""Content-hash split rule: which split, fold and shard a photo belongs to.

Every assignment is a pure function of the SHA-256 of the photo's bytes, so
identical files always land together and a re-run gives the same split. The
split, fold and shard read different parts of the hash so they are independent.
"""

import dataclasses
import hashlib

SPLITS = ("train", "val", "test")
_BUCKETS = 10_000


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_int(digest: str, part: int) -> int:
    return int(digest[part * 16 : (part + 1) * 16], 16)


@dataclasses.dataclass(frozen=True)
class SplitRule:
    """Percentages of train/val/test, the number of folds and of shards."""

    percentages: tuple[float, float, float] = (70.0, 15.0, 15.0)
    folds: int = 5
    num_shards: int = 32

    def __post_init__(self):
        if len(self.percentages) != 3 or any(p < 0 for p in self.percentages):
            raise ValueError(f"split needs three non-negative percentages, got {self.percentages}")
        if abs(sum(self.percentages) - 100.0) > 1e-6:
            raise ValueError(f"split percentages must add up to 100, got {self.percentages}")
        if self.folds < 1:
            raise ValueError(f"folds must be at least 1, got {self.folds}")
        if self.num_shards < len(SPLITS):
            raise ValueError(f"num_shards must be at least {len(SPLITS)}, got {self.num_shards}")

    @classmethod
    def parse(cls, text: str, **kwargs) -> "SplitRule":
        """'70/15/15' -> SplitRule((70, 15, 15), ...)."""
        try:
            percentages = tuple(float(p) for p in text.split("/"))
        except ValueError:
            raise ValueError(f"split must look like 70/15/15, got {text!r}") from None
        return cls(percentages, **kwargs)

    def split_of(self, digest: str) -> str:
        bucket = _hash_int(digest, 0) % _BUCKETS
        bound = 0.0
        for split, percentage in zip(SPLITS, self.percentages):
            bound += percentage * _BUCKETS / 100.0
            if bucket < bound:
                return split
        return SPLITS[-1]

    def fold_of(self, digest: str) -> int:
        return _hash_int(digest, 1) % self.folds

    def shards_of(self, split: str) -> int:
        """Shards for a split, in proportion to its share of the data, at least one."""
        share = self.percentages[SPLITS.index(split)] / 100.0
        return max(1, round(self.num_shards * share))

    def shard_of(self, digest: str, split: str) -> int:
        return _hash_int(digest, 2) % self.shards_of(split)
