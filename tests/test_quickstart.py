"""scripts/quickstart.sh as a new user meets it: its refusals name what the user typed."""

import subprocess

from tests.conftest import REPO


def test_a_missing_folder_is_named_as_given_in_one_line_before_anything_runs(tmp_path):
    done = subprocess.run(["bash", str(REPO / "scripts" / "quickstart.sh"), "nope"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("error: nope: ") and "--input" not in lines[0]
    assert not done.stdout.strip()  # refused before setting up or running anything
