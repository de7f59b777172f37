"""The real Beam job on drawn photos with every kind of bad file, and on real photos: counts, reasons, pixels."""

import hashlib
import io
import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from beam_jobs import preprocess
from pipeline import splits

from tests.conftest import (colourful_photos, draw_photo, png_declaring, psnr, read_examples, run_module,
                            run_preprocess, write_image)

EXPECTED_REJECTS = {"empty_file": 1, "not_an_image": 1, "no_colour": 1, "too_small": 1, "truncated": 1,
                    "too_large": 1, "unreadable": 1}


@pytest.fixture(scope="module")
def photo_dirs(tmp_path_factory):
    """Two sources: 20 drawn flower photos with bad files among them, and 4 drawn violets in 4 formats.

    The flower photos are JPEGs of at least 200x200 pixels: the records' 200x200 squares shrink them.
    """
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    drawn = {}
    for label, count in (("cornflower", 8), ("marigold", 8), ("poppy", 4)):
        for index in range(count):
            photo = draw_photo(label, 1000 + index, *(int(side) for side in rng.integers(200, 321, 2)))
            target = write_image(root / "flowers" / label / f"{label}_{index}.jpg", photo, cv2.IMWRITE_JPEG_QUALITY, 92)
            drawn[str(target)] = target
    cornflower = sorted((root / "flowers" / "cornflower").iterdir())[0]
    shutil.copyfile(cornflower, root / "flowers" / "marigold" / "same_as_a_cornflower.jpg")
    bad = root / "flowers" / "odd"
    bad.mkdir()
    data = cornflower.read_bytes()
    (bad / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (bad / "zero_bytes.jpg").write_bytes(b"")
    (bad / "notes.jpg").write_text("not a photo at all\n")
    photo = cv2.imread(str(cornflower))
    write_image(bad / "alpha.png", np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)]))
    write_image(bad / "deep.png", photo.astype(np.uint16) * 257)
    write_image(bad / "gray.jpg", cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    write_image(bad / "one_pixel.png", photo[:1, :1])
    (bad / "huge.png").write_bytes(png_declaring(12000, 12000))  # over the default limit, under OpenCV's
    (bad / "moved_away.png").symlink_to(root / "no_such_photo.png")
    own = [draw_photo("violet", index, *(int(side) for side in rng.integers(120, 261, 2))) for index in range(4)]
    for index, (photo, ext) in enumerate(zip(own, (".webp", ".bmp", ".tiff"))):
        write_image(root / "own" / "violet" / f"violet_{index}{ext}", photo)
    buffer = io.BytesIO()
    Image.fromarray(own[3][..., ::-1]).convert("CMYK").save(buffer, "JPEG", quality=95)
    (root / "own" / "violet" / "cmyk.jpg").write_bytes(buffer.getvalue())
    return root, drawn


@pytest.fixture(scope="module")
def job(photo_dirs, tmp_path_factory):
    root, _ = photo_dirs
    output = tmp_path_factory.mktemp("records")
    manifest, counters = run_preprocess(
        output, f"--input=flowers={root / 'flowers'}", f"--input={root / 'own'}")
    return output, manifest, counters


def _all_examples(output):
    return [e for split in ("train", "val", "test") for e in read_examples(output, split)]


def test_every_input_is_accounted_for(job):
    _, manifest, _ = job
    counts = manifest["counts"]
    assert counts == {"inputs": 34, "written": 26, "rejected": 7, "duplicates": 1}
    assert counts["inputs"] == counts["written"] + counts["rejected"] + counts["duplicates"]
    assert sum(manifest["splits"][s]["examples"] for s in ("train", "val", "test")) == 26


def test_every_reject_is_listed_with_its_reason(job):
    output, manifest, _ = job
    assert manifest["rejected"] == EXPECTED_REJECTS
    lines = [json.loads(line) for name in manifest["rejected_files"]
             for line in (output / name).read_text().splitlines()]
    by_name = {line["path"].rsplit("/", 1)[-1]: line["reason"] for line in lines}
    assert by_name == {"truncated.jpg": "truncated", "zero_bytes.jpg": "empty_file",
                       "notes.jpg": "not_an_image", "gray.jpg": "no_colour",
                       "one_pixel.png": "too_small", "same_as_a_cornflower.jpg": "duplicate",
                       "huge.png": "too_large", "moved_away.png": "unreadable"}


def test_counters_match_the_manifest(job):
    _, manifest, counters = job
    assert counters["inputs"] == manifest["counts"]["inputs"]
    assert counters["duplicate"] == manifest["counts"]["duplicates"]
    for reason, count in manifest["rejected"].items():
        assert counters[f"rejected_{reason}"] == count
    for split, entry in manifest["splits"].items():
        assert counters.get(f"written_{split}", 0) == entry["examples"]


def test_sources_labels_and_formats_are_recorded(job):
    output, manifest, _ = job
    examples = _all_examples(output)
    sources = {e["source"].decode() for e in examples}
    assert sources == {"flowers", "own"}
    own = sorted(e["path"].decode().rsplit(".", 1)[-1] for e in examples if e["source"] == b"own")
    assert own == ["bmp", "jpg", "tiff", "webp"]
    labels = {label for entry in manifest["splits"].values() for label in entry["by_label"]}
    assert labels == {"cornflower", "marigold", "poppy", "odd", "violet"}


def _decoded_quality(output, sources: dict) -> list[float]:
    """PSNR of each written photo of `sources` (record path -> photo file), decoded from its record, against
    the photo shrunk to 200x200 by OpenCV."""
    quality = []
    for example in _all_examples(output):
        source = sources.get(example["path"].decode())
        if source is None:
            continue
        lab8 = np.concatenate([np.frombuffer(example["l"], np.uint8).reshape(200, 200, 1),
                               np.frombuffer(example["ab"], np.uint8).reshape(200, 200, 2)], axis=-1)
        decoded = cv2.cvtColor(lab8, cv2.COLOR_LAB2RGB)
        reference = cv2.resize(cv2.imread(str(source)), (200, 200), interpolation=cv2.INTER_AREA)
        quality.append(psnr(decoded, reference[..., ::-1]))
    return quality


def test_written_pairs_decode_back_to_the_source_photo(job, photo_dirs):
    output, _, _ = job
    _, drawn = photo_dirs
    quality = _decoded_quality(output, drawn)
    assert len(quality) == 20
    assert np.mean(quality) > 45.0 and min(quality) > 35.0, quality


def test_real_photos_are_written_and_decode_back_to_themselves(shared_data, tmp_path):
    """End to end on real photos: 20 flower photos of three classes, each written once and decoding back."""
    chosen = {label: colourful_photos(shared_data / "flowers" / label, count)
              for label, count in (("daisy", 8), ("rose", 8), ("sunflower", 4))}
    root = tmp_path / "flowers"
    sources = {}
    for label, paths in chosen.items():
        for path in paths:
            (root / label).mkdir(parents=True, exist_ok=True)
            sources[str(root / label / path.name)] = path
            (root / label / path.name).symlink_to(path)  # read in place, under a folder per class
    manifest, _ = run_preprocess(tmp_path / "records", f"--input=flowers={root}")
    assert manifest["counts"] == {"inputs": 20, "written": 20, "rejected": 0, "duplicates": 0}
    assert {label for entry in manifest["splits"].values() for label in entry["by_label"]} == set(chosen)
    quality = _decoded_quality(tmp_path / "records", sources)
    assert len(quality) == 20
    # 8-bit Lab rounds the most saturated reds hardest: one red rose here decodes at 36.6 dB.
    assert np.mean(quality) > 45.0 and min(quality) > 35.0, quality


def test_rerun_gives_the_same_split_whatever_the_file_names(job, photo_dirs, tmp_path):
    output, _, _ = job
    root, _ = photo_dirs
    renamed = tmp_path / "renamed"
    for i, path in enumerate(sorted((root / "flowers").glob("*/*.jpg"))):
        target = renamed / f"folder{i % 3}" / f"photo{i}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    run_preprocess(tmp_path / "again", f"--input={renamed}")

    def placement(directory):
        return {e["sha256"]: (split, e["fold"]) for split in ("train", "val", "test")
                for e in read_examples(directory, split)}

    first, second = placement(output), placement(tmp_path / "again")
    assert len(second) == 20 and second.keys() <= first.keys()  # the 20 drawn photos, each written by both runs
    assert {digest: first[digest] for digest in second} == second


def test_duplicates_keep_the_first_copy_by_path(job, photo_dirs):
    output, _, _ = job
    root, _ = photo_dirs
    copy = root / "flowers" / "marigold" / "same_as_a_cornflower.jpg"
    digest = hashlib.sha256(copy.read_bytes()).hexdigest().encode()
    kept = [e for e in _all_examples(output) if e["sha256"] == digest]
    assert [e["label"] for e in kept] == [b"cornflower"]


def test_keep_gray_writes_colourless_photos(photo_dirs, tmp_path):
    root, _ = photo_dirs
    manifest, _ = run_preprocess(tmp_path / "out", f"--input={root / 'flowers' / 'odd'}", "--keep_gray")
    assert manifest["counts"]["written"] == 3  # alpha.png, deep.png and now gray.jpg
    assert "no_colour" not in manifest["rejected"]


def test_max_pixels_moves_the_limit(photo_dirs, tmp_path):
    root, _ = photo_dirs
    lowered, _ = run_preprocess(tmp_path / "lowered", f"--input={root / 'own'}", "--max_pixels=10000")
    assert lowered["rejected"] == {"too_large": 4} and lowered["counts"]["written"] == 0
    raised, _ = run_preprocess(tmp_path / "raised", f"--input={root / 'flowers' / 'odd'}",
                               f"--max_pixels={12000 * 12000}")
    assert "too_large" not in raised["rejected"] and raised["rejected"]["corrupt"] == 1  # huge.png was decoded


def test_the_command_prints_its_progress_and_summary_and_beams_log_only_when_verbose(photo_dirs, tmp_path):
    root, _ = photo_dirs
    flags = [f"--input={root / 'own'}", "--size=32", "--direct_num_workers=2"]
    quiet = run_module("beam_jobs.preprocess", *flags, f"--output={tmp_path / 'quiet'}")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stderr == ""
    lines = quiet.stdout.splitlines()
    assert lines[0].startswith("reading own=") and "2 worker processes" in lines[1]
    assert lines[2].startswith("done in ") and lines[3] == "4 photos: 4 written, 0 rejected, 0 duplicates"
    assert len(lines) == 7
    verbose = run_module("beam_jobs.preprocess", *flags, f"--output={tmp_path / 'verbose'}", "--verbose")
    assert verbose.returncode == 0 and verbose.stdout.splitlines()[3:] == lines[3:]
    assert "INFO:" in verbose.stderr and "sdk_worker" in verbose.stderr


def test_a_non_empty_output_is_refused_unless_overwrite(photo_dirs, tmp_path, capsys):
    root, _ = photo_dirs
    output = tmp_path / "out"
    output.mkdir()
    (output / "old-train-000.tfrecord.gz").write_bytes(b"stale")
    flags = [f"--input={root / 'own'}", f"--output={output}", "--direct_num_workers=1",
             "--direct_running_mode=in_memory"]
    assert preprocess.main(flags) == 2
    assert "not empty" in capsys.readouterr().err
    assert preprocess.main([*flags, "--overwrite"]) == 0
    assert not (output / "old-train-000.tfrecord.gz").exists()
    assert (output / "manifest.json").exists()


@pytest.mark.parametrize("flags,message", [
    (["--input=/no/such/folder"], "no files found"),
    ([], "--input is required"),
    (["--input=PHOTOS", "--split=80/10"], "--split"),
    (["--input=PHOTOS", "--sise=300"], "unknown flag(s): --sise"),
    (["--input=PHOTOS", "--size=4"], "--size"),
])
def test_bad_flags_are_named(photo_dirs, tmp_path, capsys, flags, message):
    root, _ = photo_dirs
    flags = [f.replace("PHOTOS", str(root / "own")) for f in flags]
    assert preprocess.main([*flags, f"--output={tmp_path / 'out'}"]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_two_local_worker_processes_write_what_one_writes_byte_for_byte(photo_dirs, tmp_path):
    """One in-memory worker and two worker processes bundle the photos differently: the record files are
    the same bytes all the same, each file's records in the order of their SHA-256."""
    flags = [f"--input=flowers={photo_dirs[0] / 'flowers'}", f"--input={photo_dirs[0] / 'own'}"]
    one, _ = run_preprocess(tmp_path / "one", *flags)
    two, _ = run_preprocess(tmp_path / "two", *flags, workers=2)
    assert two["args"]["argv"].count("--direct_running_mode=multi_processing") == 1
    assert one["counts"] == two["counts"] and one["rejected"] == two["rejected"]
    assert {s: e["shards"] for s, e in one["splits"].items()} == {s: e["shards"] for s, e in two["splits"].items()}
    names = [name for entry in one["splits"].values() for name in entry["shards"]]
    assert [(tmp_path / "one" / n).read_bytes() for n in names] == [(tmp_path / "two" / n).read_bytes() for n in names]
    for name in names:
        digests = _digests_in(tmp_path / "one" / name)
        assert digests == sorted(digests) and digests


def _digests_in(path) -> list[bytes]:
    """The sha256 feature of each record of one record file, in the file's order."""
    import tensorflow as tf

    return [tf.train.Example.FromString(r.numpy()).features.feature["sha256"].bytes_list.value[0]
            for r in tf.data.TFRecordDataset([str(path)])]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_records_staged_in_many_parts_are_merged_in_digest_order(tmp_path, compression):
    """With a stage limit of about a record, each bundle writes hundreds of staged parts per record file,
    more than are merged at once, so merging takes rounds: each record file still holds each of its records
    once, in the order of their digests."""
    import apache_beam as beam
    import tensorflow as tf

    from beam_jobs import transforms

    rng = np.random.default_rng(3)
    records = [rng.integers(0, 256, int(rng.integers(10, 400)), np.uint8).tobytes() for _ in range(600)]
    assert len(records) // 3 > transforms.MERGE_FAN_IN
    items = [(f"train-{i % 3:05d}-of-00003", (hashlib.sha256(r).hexdigest(), r)) for i, r in enumerate(records)]
    with beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(
            ["--runner=FnApiRunner", "--direct_num_workers=1", "--direct_running_mode=in_memory"])) as pipeline:
        _ = (pipeline | beam.Create(items) | beam.Reshuffle()
             | transforms.WriteRecords(str(tmp_path), compression, stage_bytes=1))
    suffix = ".tfrecord" + (".gz" if compression == "gzip" else "")
    for shard in range(3):
        path = tmp_path / f"train-{shard:05d}-of-00003{suffix}"
        written = [r.numpy() for r in tf.data.TFRecordDataset([str(path)], "GZIP" if compression == "gzip" else "")]
        expected = sorted((d, r) for name, (d, r) in items if name.startswith(f"train-{shard:05d}"))
        assert written == [r for _, r in expected]


def test_a_photo_whose_preparation_fails_unexpectedly_is_a_decode_error_and_the_rest_is_written(tmp_path, capsys,
                                                                                                  monkeypatch):
    """Whatever a step raises that is no ImageError (here the colour conversion runs out of memory on one photo,
    as a large photo can on a small worker; the hardened decoders turn every file fault they know into an
    ImageError) rejects that photo with its reason, and the job goes on."""
    from beam_jobs import transforms

    photos = tmp_path / "photos" / "poppy"
    for index in range(3):
        write_image(photos / f"poppy_{index}.jpg", draw_photo("poppy", index, 120, 140))
    write_image(photos / "a_red_square.png", np.full((90, 90, 3), (30, 30, 200), np.uint8))
    convert = transforms.color.rgb_to_lab8

    def conversion_out_of_memory(rgb):
        if (rgb == (200, 30, 30)).all():
            raise MemoryError("Unable to allocate 1.2 GiB for an array")
        return convert(rgb)

    monkeypatch.setattr(transforms.color, "rgb_to_lab8", conversion_out_of_memory)
    output = tmp_path / "records"
    assert preprocess.main([f"--input={photos.parent}", f"--output={output}", "--direct_num_workers=1",
                            "--direct_running_mode=in_memory"]) == 0
    assert "  rejected as decode_error: 1" in capsys.readouterr().out.splitlines()
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["counts"] == {"inputs": 4, "written": 3, "rejected": 1, "duplicates": 0}
    assert manifest["rejected"] == {"decode_error": 1}
    [reject] = [json.loads(line) for line in (output / manifest["rejected_files"][0]).read_text().splitlines()]
    assert reject["path"].endswith("a_red_square.png") and reject["reason"] == "decode_error"
    assert reject["detail"] == "MemoryError: Unable to allocate 1.2 GiB for an array", reject["detail"]


def test_each_photo_is_in_the_file_its_hash_names_and_the_folder_holds_only_what_the_manifest_lists(job):
    """A split's records are in at most its share of --num_shards files (22, 5, 5 of 32), one per shard
    that holds any, named by the shard: as many files however many bundles wrote them."""
    output, manifest, _ = job
    rule = splits.SplitRule()
    for split, entry in manifest["splits"].items():
        count = rule.shards_of(split)
        expected = {f"{split}-{rule.shard_of(e['sha256'].decode(), split):05d}-of-{count:05d}.tfrecord"
                    for e in read_examples(output, split)}
        assert set(entry["shards"]) == expected and len(expected) <= count
    listed = {"manifest.json", *manifest["rejected_files"],
              *(name for entry in manifest["splits"].values() for name in entry["shards"])}
    assert {path.name for path in output.iterdir()} == listed  # no staged file left
    assert manifest["rejected_files"] == ["rejected-00000-of-00001.jsonl"]


DATAFLOW = ["--runner=DataflowRunner", "--project=my-project-123", "--region=europe-west4"]


@pytest.mark.parametrize("flags,message", [
    (["--input=PHOTOS", "--output=gs://my-bucket/records"],
     "--output gs://my-bucket/records needs --temp_location gs://BUCKET/tmp, where Beam stages files"),
    (["--input=PHOTOS", "--output=gs://my-bucket/records", "--temp_location=gs://my-bucket/tmp", *DATAFLOW],
     "Dataflow workers cannot use local --input PHOTOS: give a gs:// path"),
    (["--input=gs://my-bucket/photos", "--output=OUT", "--temp_location=gs://my-bucket/tmp", *DATAFLOW],
     "Dataflow workers cannot use local --output OUT: give a gs:// path"),
    (["--input=gs://my-bucket/photos", "--output=gs://my-bucket/records", "--temp_location=OUT", "--runner=dataflow"],
     "Dataflow workers cannot use local --temp_location OUT: give a gs:// path"),
    (["--input=gs://my-bucket/photos", "--output=gs://my-bucket/records", *DATAFLOW],
     "--runner DataflowRunner needs --temp_location gs://BUCKET/tmp, where Beam stages files"),
])
def test_cloud_settings_that_cannot_work_are_named_before_starting(photo_dirs, tmp_path, capsys, flags, message):
    root, _ = photo_dirs
    swap = {"PHOTOS": str(root / "own"), "OUT": str(tmp_path / "out")}
    for word, path in swap.items():
        flags, message = [flag.replace(word, path) for flag in flags], message.replace(word, path)
    assert preprocess.main(flags) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_a_gs_path_without_beams_cloud_libraries_says_what_to_install(tmp_path, capsys):
    """This environment (the trainer's) has no Beam gcp extra: Dataflow's has, see test_preprocess_gcs.py."""
    assert preprocess.main(["--input=gs://my-bucket/photos", f"--output={tmp_path / 'out'}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "gs://my-bucket/photos" in error
    assert "run `bash scripts/setup.sh dataflow` and use .venv-dataflow/bin/python" in error


def test_dataflow_options_are_accepted_and_the_graph_builds_without_submitting():
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_jobs import options as job_options, transforms

    flags = ["--runner=DataflowRunner", "--project=my-project-123", "--region=europe-west4",
             "--temp_location=gs://my-bucket/tmp", "--setup_file=./setup.py", "--machine_type=n1-standard-4",
             "--max_num_workers=20", "--input=flowers=gs://my-bucket/photos/flowers",
             "--output=gs://my-bucket/records"]
    options = PipelineOptions(flags)
    assert job_options.unknown_flags(options) == []
    pipeline = beam.Pipeline(options=options)
    preprocess.build_pipeline(pipeline, [("flowers", "gs://my-bucket/photos/flowers/**")], "gs://my-bucket/records",
                              transforms.ExampleSpec(), "gzip", {})
    graph = pipeline.to_runner_api()
    names = {t.unique_name for t in graph.components.transforms.values()}
    assert {"Match photos", "To examples", "Write records", "Write rejects", "Manifest"} <= names
