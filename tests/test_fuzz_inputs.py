"""Hostile files (tests/fuzz_corpus.py) through the Beam job and through colorize, as a person runs them.

Every input must be accounted for with its reason, none decoded past the pixel limit (the CRC bomb
would take 1.2 GB to decode: each command's peak memory is measured), and every good photo beside
them must still come out.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import cv2
import pytest

from pipeline.preparation import Preparation
from trainer.network import model_file, models

from benchmarks import measure
from tests import fuzz_corpus
from tests.conftest import REPO, draw_photo, write_image

GOOD = 8
# A command's peak memory may not exceed what it needs for the good photos by this much; decoding the bomb
# as colour would add 1.2 GB.
HEADROOM = 600 * 2**20


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> pathlib.Path:
    """The hostile files in one class folder and GOOD drawn photos in another."""
    folder = tmp_path_factory.mktemp("fuzz")
    for name, data, _ in fuzz_corpus.corpus():
        (folder / "hostile" / name).parent.mkdir(exist_ok=True)
        (folder / "hostile" / name).write_bytes(data)
    for index in range(GOOD):
        write_image(folder / "good" / f"violet_{index}.jpg", draw_photo("violet", index, 120, 150))
    return folder


def measured(*command: str) -> tuple[int, str, int]:
    """Run `python command...` to its end: (exit status, what it printed, its peak resident memory in bytes)."""
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen([sys.executable, *command], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   text=True)
        _, status, usage = os.wait4(process.pid, 0)  # reaped here, not by Popen, to learn its own peak memory
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return process.returncode, out.read(), usage.ru_maxrss * 1024


def allowed_reasons() -> dict[str, tuple]:
    return {name: allowed for name, _, allowed in fuzz_corpus.corpus()}


def test_the_beam_job_accounts_for_every_hostile_file_and_decodes_none_past_the_limit(corpus_dir, tmp_path):
    flags = ["--size=32", "--num_shards=3", "--direct_num_workers=1", "--direct_running_mode=in_memory"]
    status, printed, peak_good = measured("-m", "beam_jobs.preprocess", f"--input={corpus_dir / 'good'}",
                                          f"--output={tmp_path / 'good'}", *flags)
    assert status == 0, printed[-3000:]
    status, printed, peak = measured("-m", "beam_jobs.preprocess", f"--input={corpus_dir}",
                                     f"--output={tmp_path / 'all'}", *flags)
    assert status == 0, printed[-3000:]
    manifest = json.loads((tmp_path / "all" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["inputs"] == len(allowed_reasons()) + GOOD
    assert counts["inputs"] == counts["written"] + counts["rejected"] + counts["duplicates"]
    rejects = {pathlib.Path(entry["path"]).name: entry for name in manifest["rejected_files"]
               for entry in map(json.loads, (tmp_path / "all" / name).read_text().splitlines())}
    for name, allowed in allowed_reasons().items():
        if "ok" not in allowed:
            assert name in rejects, name
        if name in rejects:
            assert rejects[name]["reason"] in (*allowed, "no_colour") and rejects[name]["detail"], rejects[name]
    assert rejects["crc_bomb"]["reason"] == "too_large" and "20000x20000" in rejects["crc_bomb"]["detail"]
    assert not [name for name in rejects if name.startswith("violet_")]
    assert peak < peak_good + HEADROOM, (peak_good, peak)


def test_the_beam_job_refuses_a_tiff_whose_signed_size_lies_within_bounded_memory(tmp_path):
    """The SSHORT 14000x14000 TIFF (196 megapixels to libtiff, 100x100 to the header check) is rejected as
    too_large with the job's whole process tree, its decoder processes included, under 1.2 GB at its peak;
    the photos beside it are written."""
    folder = tmp_path / "in"
    (folder / "lies").mkdir(parents=True)
    (folder / "lies" / "signed.tif").write_bytes(fuzz_corpus.tiff_signed_size())
    for index in range(3):
        write_image(folder / "good" / f"violet_{index}.jpg", draw_photo("violet", index, 120, 150))
    job = measure.run([sys.executable, "-m", "beam_jobs.preprocess", f"--input={folder}", f"--output={tmp_path / 'out'}",
                       "--size=32", "--direct_num_workers=1", "--direct_running_mode=in_memory"])
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    rejects = [json.loads(line) for name in manifest["rejected_files"]
               for line in (tmp_path / "out" / name).read_text().splitlines()]
    assert [(pathlib.Path(entry["path"]).name, entry["reason"]) for entry in rejects] == [("signed.tif", "too_large")]
    assert manifest["counts"]["written"] == 3
    assert job.peak_mb < 1200, job.peak_mb


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> pathlib.Path:
    """An untrained (seeded) network: what is tested is the plumbing around it."""
    import keras

    keras.utils.set_random_seed(1)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model_file.save(models.lowres_unet(32), str(path), Preparation(size=32, min_side=8))
    return path


def colorize(*arguments: str) -> tuple[int, str, int]:
    return measured("-m", "trainer.colorize", *arguments)


def failures_printed(printed: str) -> dict[str, str]:
    """{file name: reason} from the lines colorize prints for what failed: '  PATH: REASON: DETAIL'."""
    lines = [line.strip().split(": ", 2) for line in printed.splitlines() if line.startswith("  /")]
    return {pathlib.Path(path).name: reason for path, reason, _ in lines}


def test_colorize_accounts_for_every_hostile_file_and_writes_every_good_photo(corpus_dir, model, tmp_path):
    status, printed, peak_good = colorize(str(corpus_dir / "good"), f"--output={tmp_path / 'good'}",
                                          f"--model={model}", "--batch_size=4")
    assert status == 0, printed[-3000:]
    status, printed, peak = colorize(str(corpus_dir), f"--output={tmp_path / 'all'}", f"--model={model}",
                                     "--batch_size=4")
    assert status == 1 and "Traceback" not in printed, printed[-3000:]
    failed = failures_printed(printed)
    written = {path.name for path in (tmp_path / "all").rglob("*") if path.is_file()}
    for name, allowed in allowed_reasons().items():
        # Each one either failed with a reason or was written (as PNG: the corpus's names have no extension).
        assert (name in failed) != (f"{name}.png" in written), name
        assert failed.get(name, "ok") in allowed, (name, failed.get(name))
    assert failed["crc_bomb"] == "too_large"
    # At the model's own pixel limit, the files that lie to the decoders are refused by what they lie about.
    assert {name: failed[name] for name in ("tiff_size_twice_8000", "tiff_size_twice_2000000x1", "tiff_huge_tile",
                                            "jpeg_20000_scans")} == {
        "tiff_size_twice_8000": "too_large", "tiff_size_twice_2000000x1": "too_large",
        "tiff_huge_tile": "too_large", "jpeg_20000_scans": "too_many_scans"}
    assert {f"violet_{index}.jpg" for index in range(GOOD)} <= written
    assert peak < peak_good + HEADROOM, (peak_good, peak)


def test_a_photo_that_fails_after_decoding_fails_alone(corpus_dir, model, tmp_path):
    """A panorama 30000 pixels wide colourizes, but its comparison sheet (90000 wide) is too wide for JPEG.

    It is reported with its reason; the photos in its batch and in every later batch are all written.
    """
    folder = tmp_path / "in"
    for index in range(GOOD):
        write_image(folder / f"b_{index}.jpg", draw_photo("violet", index, 90, 120))
    gray = draw_photo("poppy", 0, 12, 300)
    write_image(folder / "a_panorama.png", cv2.resize(gray, (30000, 12), interpolation=cv2.INTER_NEAREST))
    status, printed, _ = colorize(str(folder), f"--output={tmp_path / 'out'}", f"--model={model}", "--compare",
                                  "--batch_size=3")
    assert status == 1 and "Traceback" not in printed, printed[-3000:]
    assert failures_printed(printed) == {"a_panorama.png": "unwritable"}
    assert "65500" in printed  # the encoder's own reason, in the failure's line
    for index in range(GOOD):
        assert (tmp_path / "out" / f"b_{index}.jpg").is_file() and (tmp_path / "out" / "compare" / f"b_{index}.jpg").is_file()
    assert f"{GOOD} photos colourized" in printed
