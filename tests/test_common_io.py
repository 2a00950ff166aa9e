"""common.io's output helpers: where an output can go, folders published whole, and failed writes named."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from common.io import (
    lock_file,
    new_folder,
    not_written,
    output_place_problem,
    output_writer,
    output_written,
    require_output_folder,
    write_failure,
)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS])
def test_a_place_that_cannot_take_the_write_is_a_write_failure(code: int) -> None:
    assert write_failure(OSError(code, os.strerror(code))) == (code, os.strerror(code))


def test_other_errors_are_not_write_failures() -> None:
    assert write_failure(OSError(errno.ENOENT, "No such file or directory")) is None
    assert write_failure(ValueError("a bad line")) is None
    assert write_failure(Exception("something (os error 2)")) is None  # ENOENT, from a Rust library


def test_the_rust_writers_messages_are_read_for_their_os_error() -> None:
    # what safetensors and tokenizers raise when a write fails (their own exception types, the OSError in the text)
    safetensors = Exception("Error while serializing: I/O error: File too large (os error 27)")
    tokenizers = Exception("No space left on device (os error 28)")
    assert write_failure(safetensors) == (errno.EFBIG, "File too large")
    assert write_failure(tokenizers) == (errno.ENOSPC, "No space left on device")


def test_a_failed_write_ends_the_command_with_one_line_naming_the_flag_and_path(tmp_path: Path) -> None:
    with pytest.raises(OSError) as stopped, output_written(tmp_path / "out", "--output_dir"):
        raise OSError(errno.ENOSPC, "No space left on device")
    message = str(stopped.value)
    assert message.startswith(f"--output_dir {tmp_path / 'out'}: could not write (No space left on device)")
    assert "\n" not in message
    assert not_written(tmp_path, "--output", ValueError("not a write")) is None


def test_other_errors_pass_through_output_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a bad line"), output_written(tmp_path):
        raise ValueError("a bad line")


def test_a_failed_block_leaves_no_empty_output_folder_it_made(tmp_path: Path) -> None:
    """distill.train with an unlabelled --test_data once left the empty folder it had made."""
    made, used, kept = tmp_path / "made", tmp_path / "used", tmp_path / "kept"
    kept.mkdir()
    for output, fill in [(made, False), (used, True), (kept, False)]:
        with pytest.raises(ValueError, match="bad test data"), output_written(output, "--output_dir"):
            output.mkdir(exist_ok=True)
            if fill:
                (output / "checkpoint").write_text("work done")
            raise ValueError("bad test data")
    assert not made.exists() and (used / "checkpoint").is_file() and kept.is_dir()


def test_new_folder_publishes_whole_and_a_failure_keeps_the_old_folder_and_leaves_no_staging(tmp_path: Path) -> None:
    final = tmp_path / "model"
    with new_folder(final, "model") as staging:
        (staging / "weights").write_text("first", encoding="utf-8")
        assert not final.exists()  # nothing at the destination until the block ends
    assert (final / "weights").read_text(encoding="utf-8") == "first"

    with pytest.raises(OSError), new_folder(final, "model") as staging:
        (staging / "weights").write_text("half", encoding="utf-8")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert (final / "weights").read_text(encoding="utf-8") == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_output_place_problems(tmp_path: Path) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("an earlier file\n", encoding="utf-8")
    assert output_place_problem(a_file) == "is a file, not a folder"
    assert output_place_problem(tmp_path, folder=False) == "is a folder, not a file"
    assert output_place_problem(a_file / "out" / "deeper") == f"cannot be made: {str(a_file)!r} is a file, not a folder"
    assert output_place_problem(a_file / "out.txt", folder=False) is not None
    assert output_place_problem(tmp_path / "new" / "deeper") is None  # missing folders are made
    assert output_place_problem(a_file, folder=False) is None  # a file output replaces a file


def test_a_second_run_on_one_output_is_refused_naming_the_first(tmp_path: Path) -> None:
    output = tmp_path / "runs" / "model"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom common.io import output_written\n"
            "with output_written(sys.argv[1]):\n    print('writing', flush=True)\n    time.sleep(60)\n",
            str(output),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "writing\n"
        with pytest.raises(ValueError) as stopped, output_written(output, "--output_dir"):
            pass
        message = str(stopped.value)
        assert message.startswith(f"--output_dir {output} is being written by process {holder.pid} (-c ")
        assert "\n" not in message
        # The check of an output folder's contents, made while a command parses, names the writer too (it said the
        # folder "exists and is not empty", of what the first run had begun to write).
        (output / "part").mkdir(parents=True)
        with pytest.raises(ValueError, match=rf"^--output_dir {output} is being written by process {holder.pid} "):
            require_output_folder(str(output), overwrite=True)
    finally:
        holder.kill()
        holder.wait()
    with output_written(output), output_written(output):  # the lock went with the killed process; blocks nest
        pass
    assert lock_file(output).name == ".model.lock"
    assert output_writer(output) is None  # the killed run's lock file holds no lock


def test_a_killed_runs_staging_copies_are_removed_by_the_next_write(tmp_path: Path) -> None:
    final = tmp_path / "best"
    killed = [tmp_path / ".best~best-k1ll3d", tmp_path / ".best~old-k1ll3d"]  # killed while saving or publishing
    other = tmp_path / ".best-2~best-running"  # another output's staging: not ours to remove
    for folder in [*killed, other]:
        folder.mkdir()
    with new_folder(final, "best") as staging:
        assert staging.name.startswith(".best~best-")
        (staging / "weights").write_text("new", encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".best-2~best-running", "best"]
