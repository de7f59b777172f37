"""Decodes in bounded decoder processes (pipeline/decoders.py): what the header check misses, the OS stops."""

import os
import resource

import pytest

from pipeline import decoders, images

from tests import fuzz_corpus


def test_a_tiff_whose_signed_size_the_header_check_misses_is_refused_as_too_large():
    data = fuzz_corpus.tiff_signed_size()
    assert images.inspect(data).pixels == 100 * 100  # the header check reads the LONG copies only
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with pytest.raises(images.ImageError) as refused:
        images.decode_rgb(data)
    assert refused.value.reason == "too_large"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak < 300 * 2**20  # 588 MB decoded here
    assert images.decode_rgb(fuzz_corpus.good_photo()).shape == (96, 128, 3)


def test_a_decode_past_its_cpu_time_is_refused_as_too_slow_and_its_decoder_replaced():
    """20,000 empty scans take libjpeg tens of seconds; given one second of CPU, the decoder is killed."""
    with pytest.raises(decoders.LimitExceeded) as refused:
        decoders.run(images._decode_here, fuzz_corpus.jpeg_scans(), "jpeg", images.MAX_PIXELS,
                     memory_bytes=1 << 30, cpu_seconds=1)
    assert refused.value.reason == "too_slow"
    assert images.decode_rgb(fuzz_corpus.good_photo(".jpg")).shape == (96, 128, 3)


def test_a_decoder_that_dies_is_counted_too_large_and_replaced():
    with pytest.raises(decoders.LimitExceeded, match="SIGABRT") as refused:
        decoders.run(os.abort, memory_bytes=1 << 20, cpu_seconds=1)
    assert refused.value.reason == "too_large"
    assert images.decode_rgb(fuzz_corpus.good_photo()).shape == (96, 128, 3)


def test_what_a_decode_raises_is_raised_in_the_caller_with_its_reason():
    with pytest.raises(images.ImageError) as refused:
        decoders.run(images._decode_here, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "png", images.MAX_PIXELS,
                     memory_bytes=1 << 28, cpu_seconds=1)
    assert refused.value.reason == "corrupt"


def test_pixels_come_back_whole_and_writable():
    rgb = images.decode_rgb(fuzz_corpus.good_photo())
    assert rgb.flags.writeable and rgb.flags.c_contiguous
    rgb[0, 0] = 0  # callers draw on what they decoded
