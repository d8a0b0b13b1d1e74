"""The manifest's length histogram uses half-open power-of-two bins, like the length buckets."""

from pipelines.tokenize_mds import histogram_bin
from shards.layout import bucket_for


def test_bins_are_half_open_and_agree_with_buckets():
    assert [histogram_bin(n) for n in (1, 2, 3, 1023, 1024, 2047, 2048)] == [2, 4, 4, 1024, 2048, 2048, 4096]
    for n in range(1, 5000):
        upper = histogram_bin(n)
        assert upper // 2 <= n < upper
        # every document of a bin falls in the same bucket (edges 1024, 2048 are powers of two)
        assert bucket_for(upper // 2) == bucket_for(upper - 1) == bucket_for(n)
