"""Every command keeps the error convention for its flags: one line naming the problem, exit status 2."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_module


@pytest.mark.parametrize("module, flags, message", [
    ("trainer.task", ["--data_dir=d", "--model_dir=m", "--batch_size=0"], "--batch_size=0: 0 is not a positive"),
    ("trainer.colorize", ["--output=o", "--temperature=hot"], "--temperature"),
    ("trainer.evaluate", ["--output=o", "--split=holdout"], "--split"),
    ("trainer.study", ["--study=cv", "--data_dir=d"], "--study_dir must have a value"),
    ("trainer.app", ["--nosuchflag"], "Unknown command line flag 'nosuchflag'"),
    ("trainer.export", ["--format=onnx", "--output=o"], "--format=onnx: value should be one of"),
    ("trainer.export", ["--format=tflite"], "--output must have a value"),
    ("trainer.export", ["--format=tflite", "--output=o.bin"], "a TensorFlow Lite file is named *.tflite"),
    ("trainer.export", ["--format=saved_model", "--output=o", "--quantize=dynamic"], "--quantize applies to"),
])
def test_a_bad_flag_is_one_line_and_exit_status_2(module, flags, message):
    done = run_module(module, *flags)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr[-2000:]


@pytest.mark.parametrize("module, flag", [("trainer.task", "--time_budget_minutes"), ("trainer.colorize", "--hint"),
                                          ("trainer.evaluate", "--split"), ("trainer.study", "--study"),
                                          ("trainer.app", "--max_pixels"), ("trainer.export", "--quantize")])
def test_help_exits_0_with_the_commands_text_and_flags_and_no_file_path(module, flag):
    done = run_module(module, "--help")
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr[-2000:]
    assert f"  {flag}:" in done.stdout and "  --[no]verbose:" in done.stdout
    assert f"python -m {module}" in done.stdout  # the command's own docstring comes first
    assert ".py:" not in done.stdout


XLA_COMMAND = '''"""A command that compiles a function with XLA, as the trainer's input pipeline does."""
from trainer import command
import tensorflow as tf


def main(argv):
    print(tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0)).numpy())


if __name__ == "__main__":
    command.run(main)
'''


@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflow_and_xla_log_lines_show_only_with_verbose(tmp_path, verbose):
    script = tmp_path / "xla_command.py"
    script.write_text(XLA_COMMAND)
    done = subprocess.run([sys.executable, str(script), *(["--verbose"] if verbose else [])], capture_output=True,
                          text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "2.0", done.stderr[-2000:]
    assert ("Compiled cluster using XLA" in done.stderr) == verbose, done.stderr[-2000:]
    assert verbose or not done.stderr.strip()
