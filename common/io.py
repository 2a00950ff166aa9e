"""What every package shares: atomic files and folders (PNG figures too), JSON, a run's metrics.jsonl, text opening,
output-folder checks, logging set-up and run metadata. Imports nothing of ours, so any package may use it.

Atomic means a reader (a resumed run, a recipe stage, a user) never sees half a file or half a folder: everything is
written under a temporary name beside its destination and renamed into place, which is atomic on one filesystem.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import gzip
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DATA = "data"  # the folder of bundled data, as presets and configs name it (data/reviews.txt.gz)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


HANGUL = re.compile("[\uac00-\ud7a3]")
SNIFF_BYTES = 1 << 16  # what is read to tell CP949 Korean or a binary file from a few bad bytes
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
BYTE_ORDER_MARK = "\ufeff"
UNKNOWN_ENCODING = "save it as UTF-8"  # the advice when the bytes look like nothing in particular


def open_bytes(path: str | Path) -> IO[bytes]:
    """A file's bytes, gunzipped when its name ends in .gz."""
    path = str(path)
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def encoding_advice(sample: bytes) -> str:
    """What bytes that are not UTF-8 most likely are, as advice: CP949 (EUC-KR) Korean, which many Korean datasets
    still use, or a binary file."""
    if b"\x00" in sample:
        return "it looks like a binary file, not text"
    whole_lines = sample[: sample.rfind(b"\n") + 1] or sample  # a cut in the middle of a character is no evidence
    try:
        text = whole_lines.decode("cp949")
    except UnicodeDecodeError:
        return UNKNOWN_ENCODING
    if HANGUL.search(text):
        return "it looks like CP949 (EUC-KR) Korean: convert it to UTF-8, e.g. iconv -f cp949 -t utf-8"
    return UNKNOWN_ENCODING


def not_utf8(path: str) -> ValueError:
    """The error for a file that is not UTF-8: its first such line and what it looks like."""
    try:
        with open_bytes(path) as f:
            sample = f.read(SNIFF_BYTES)
            f.seek(0)
            line_no = next((number for number, raw in enumerate(f, start=1) if not is_utf8(raw)), None)
    except GZIP_ERRORS as err:
        return damaged_gzip(path, err)
    where = f"{path}:{line_no}" if line_no else path
    return ValueError(f"{where}: not UTF-8 text; {encoding_advice(sample)}")


def is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def damaged_gzip(path: str, error: Exception) -> ValueError:
    return ValueError(
        f"{path}: the gzip file is truncated or damaged ({error}); `gzip -t` checks it: fetch or compress it again"
    )


class TextFile:
    """A UTF-8 text file open for reading (gunzipped when its name ends in .gz), its byte-order mark dropped and its
    line ends read as "\\n" whatever they were; a file that is not UTF-8 or a damaged gzip file is a ValueError that
    names the file (and line) and says what to do."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # utf-8-sig: the byte-order mark Windows Notepad and Excel write is not part of the first line.
        if self.path.endswith(".gz"):
            self.file: IO[str] = gzip.open(self.path, "rt", encoding="utf-8-sig")
        else:
            self.file = open(self.path, encoding="utf-8-sig")

    def __enter__(self) -> TextFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def close(self) -> None:
        self.file.close()

    def __iter__(self) -> Iterator[str]:
        with self.errors_named():
            yield from self.file

    def readline(self) -> str:
        with self.errors_named():
            return self.file.readline()

    def read(self, size: int = -1) -> str:
        with self.errors_named():
            return self.file.read(size)

    @contextlib.contextmanager
    def errors_named(self) -> Iterator[None]:
        """Undecodable bytes and a damaged gzip stream as the ValueErrors that name this file."""
        try:
            yield
        except UnicodeDecodeError:
            raise not_utf8(self.path) from None
        except GZIP_ERRORS as err:
            raise damaged_gzip(self.path, err) from None


def header_again(where: str) -> ValueError:
    """The error for a file's header line met again below its first line: two files joined, each with its own."""
    return ValueError(
        f"{where}: the header line again (two files joined with their headers?): keep only the first file's header"
    )


def open_text(path: str | Path) -> TextFile:
    """A UTF-8 text file to read, gzip-compressed when its name ends in .gz (``TextFile``)."""
    return TextFile(path)


def read_json(path: str | Path) -> Any:
    """A JSON file's contents (read as ``open_text`` reads); invalid JSON is a ValueError naming the file."""
    with open_text(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary name beside ``path``, then rename it into place: readers never see half a file."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(staging)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """UTF-8 text, written atomically (its folder made if need be)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda staging: staging.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    """Indented UTF-8 JSON, written atomically (a record read back later, such as a stage's, is never torn)."""
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def save_figure(figure: Any, path: str | Path, dpi: int = 120) -> None:
    """A matplotlib ``Figure`` as a PNG file, written atomically."""
    write_atomic(path, lambda staging: figure.savefig(staging, format="png", dpi=dpi))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a run's ``metrics.jsonl`` (blank lines skipped); ``[]`` if the file does not exist."""
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not valid JSON ({error})") from error
            if not isinstance(record, dict) or "step" not in record:
                raise ValueError(f"{path}, line {number}: expected a JSON object with a 'step'")
            records.append(record)
    return records


def metric_series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """Steps and values of ``key``, sorted by step; a step logged twice (a resumed run) keeps its last value."""
    by_step = {record["step"]: record[key] for record in records if key in record}
    steps = sorted(by_step)
    return steps, [by_step[step] for step in steps]


def leftover_prefix(final: str | Path) -> str:
    """The start of the names of the staging and moved-aside copies of ``final``, beside it: ``.NAME~``."""
    return f".{Path(final).name}~"


def staging_folder(final: str | Path, prefix: str) -> Path:
    """A new empty folder beside ``final`` (so the rename that publishes it stays on one filesystem), named after it
    (``.best~best-XXXXXXXX``)."""
    parent = Path(final).absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{leftover_prefix(final)}{prefix}-", dir=parent))
    staging.chmod(0o755)  # mkdtemp's 0o700 would carry over to the published folder
    return staging


def publish_folder(staging: str | Path, final: str | Path) -> None:
    """Put the finished ``staging`` folder at ``final``. An existing ``final`` is first moved aside and deleted only
    once the new one is in place, so at every moment ``final`` is either the old folder or the new one, whole."""
    staging, final = Path(staging), Path(final)
    if not final.exists():
        os.replace(staging, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{leftover_prefix(final)}old-", dir=final.absolute().parent))
    os.replace(final, old / final.name)
    os.replace(staging, final)
    shutil.rmtree(old)


def remove_leftovers(final: str | Path) -> None:
    """The staging and moved-aside copies of ``final`` that a killed run left beside it. Only for a caller that
    alone writes ``final`` (it holds its output's lock), so no other run is filling them."""
    final = Path(final).absolute()
    if final.parent.is_dir():
        for leftover in final.parent.glob(f"{glob.escape(leftover_prefix(final))}*"):
            shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def new_folder(final: str | Path, prefix: str) -> Iterator[Path]:
    """A staging folder to write an output folder into, published at ``final`` when the block ends and deleted if it
    raises: ``final`` is never half-written and a failed run leaves no staging folder behind (a killed one's are
    removed by the next run that writes ``final``)."""
    remove_leftovers(final)
    staging = staging_folder(final, prefix)
    try:
        yield staging
        publish_folder(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# The errors of a place that cannot take what is written to it, whichever library wrote: no space left, a file over
# the size allowed, a quota, a read-only filesystem.
PLACE_FULL_OR_READ_ONLY = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})
# The Rust writers (safetensors, tokenizers) report the OSError inside their own exception's message, as in
# "Error while serializing: I/O error: File too large (os error 27)".
RUST_IO_ERROR = re.compile(r"(?P<reason>[^:]+?) \(os error (?P<errno>\d+)\)")


def write_failure(error: BaseException) -> tuple[int, str] | None:
    """The errno and reason of a failed write, when ``error`` says its place cannot take it
    (``PLACE_FULL_OR_READ_ONLY``); else None."""
    if isinstance(error, OSError):
        return (error.errno, error.strerror) if error.errno in PLACE_FULL_OR_READ_ONLY else None
    match = RUST_IO_ERROR.search(str(error))
    if match and int(match["errno"]) in PLACE_FULL_OR_READ_ONLY:
        return int(match["errno"]), match["reason"].strip()
    return None


def not_written(path: str | Path, flag: str, error: BaseException) -> ValueError | None:
    """The one-line error naming ``flag`` and ``path`` for a write whose place could not take it
    (``write_failure``); None for any other error. Outputs are published whole (``new_folder``, ``write_atomic``),
    so what was there before is still there."""
    failure = write_failure(error)
    if failure is None:
        return None
    code, reason = failure
    advice = "choose another place" if code == errno.EROFS else "free some space or choose another place"
    return ValueError(f"{flag} {path}: could not write ({reason}); {advice} (what was there before is kept)")


# The outputs this process writes: the lock file's descriptor and how many open blocks hold it.
_HELD_OUTPUTS: dict[str, list[int]] = {}


def lock_file(path: str | Path) -> Path:
    """The hidden file beside an output whose lock says a run is writing it (``runs/.teacher.lock``)."""
    path = Path(path).absolute()
    return path.parent / f".{path.name}.lock"


def first_process() -> bool:
    """Whether this is the first process of a launch (``RANK`` 0, or no launcher): the one that checks and locks
    outputs, read before the process group starts."""
    return os.environ.get("RANK", "0") == "0"


@contextlib.contextmanager
def output_locked(path: str | Path, flag: str = "--output_dir") -> Iterator[None]:
    """Hold the lock on ``path`` while the block runs; a second run writing the same output is refused at once
    with one line naming the first run's process. The lock is the operating system's (flock): it goes with the
    process however that ends (a killed run leaves its lock file, which holds no lock; a run that ends removes it).
    The first process of a launch alone takes it (the others write nothing); a process may nest blocks on one
    output."""
    key = str(Path(path).absolute())
    if not first_process():
        yield
        return
    if key in _HELD_OUTPUTS:
        _HELD_OUTPUTS[key][1] += 1
        try:
            yield
        finally:
            _release_output(key)
        return
    descriptor = _take_lock(lock_file(path), flag, path)
    _HELD_OUTPUTS[key] = [descriptor, 1]
    try:
        yield
    finally:
        _release_output(key)


def _take_lock(place: Path, flag: str, path: str | Path) -> int:
    """The descriptor of ``place``, locked; ValueError naming the holder when another process has it."""
    place.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(place, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 512).decode("utf-8", "replace").strip() or "another process"
            os.close(descriptor)
            raise ValueError(f"{flag} {path} is being written by {holder}; wait for it or choose another") from None
        # The holder before us removes the file as it lets go: a lock on a removed file locks nothing, so again.
        if place.exists() and os.fstat(descriptor).st_ino == place.stat().st_ino:
            break
        os.close(descriptor)
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"process {os.getpid()} ({' '.join(sys.argv)[:200]})".encode())
    return descriptor


def output_writer(path: str | Path) -> str | None:
    """The run writing ``path`` now (its lock file's line), or None: checked before an output folder's contents, so
    that a second run is refused naming the first rather than for what the first has begun to write."""
    place = lock_file(path)
    try:
        descriptor = os.open(place, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(descriptor, 512).decode("utf-8", "replace").strip() or "another process"
    finally:
        os.close(descriptor)  # releases the shared lock, if it was taken
    return None


def _release_output(key: str) -> None:
    held = _HELD_OUTPUTS[key]
    held[1] -= 1
    if held[1] == 0:
        del _HELD_OUTPUTS[key]
        lock_file(key).unlink(missing_ok=True)  # while still locked: no one else holds this file
        os.close(held[0])  # releases the lock


@contextlib.contextmanager
def output_written(path: str | Path, flag: str = "--output_dir") -> Iterator[None]:
    """A block of a command that writes to ``path``: it holds the output's lock (``output_locked``), and a disk that
    fills up (or refuses the write) raises one line (``not_written``, an OSError) rather than the writer's own. A
    block that fails leaves no empty output folder it made (a bad --test_data once left one behind)."""
    existed = Path(path).exists()
    with output_locked(path, flag):
        try:
            yield
        except BaseException as error:
            if not existed and first_process():  # one process of a launch: no race to remove it
                with contextlib.suppress(OSError):  # not empty, or gone: the error that ended the block is the news
                    Path(path).rmdir()
            named = not_written(path, flag, error) if isinstance(error, Exception) else None
            if named is None:
                raise
            raise OSError(str(named)) from None


def output_place_problem(path: str | Path, folder: bool = True) -> str | None:
    """What stops an output being written at ``path`` before anything is done: its name taken by a file where a
    folder goes (or the reverse), a file where one of its parent folders should be, or a folder it is written in
    (the output folder itself, and the one its staging copy goes in) that is read-only. None: nothing."""
    path = Path(path).absolute()
    if folder and path.exists() and not path.is_dir():
        return "is a file, not a folder"
    if not folder and path.is_dir():
        return "is a folder, not a file"
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot be made: {str(parent)!r} is a file, not a folder"
    for place in [parent, *([path] if path.is_dir() else [])]:
        if not os.access(place, os.W_OK | os.X_OK):  # a read-only filesystem, or no write permission
            return f"cannot be written: {str(place)!r} is read-only"
    return None


def require_output_place(path: str, flag: str = "--output_dir", folder: bool = True) -> None:
    """ValueError naming ``flag`` and ``path`` for an output that cannot be written where it is asked for
    (``output_place_problem``)."""
    problem = output_place_problem(path, folder)
    if problem:
        raise ValueError(f"{flag} {path!r} {problem}")


def require_output_folder(path: str, overwrite: bool, flag: str = "--output_dir") -> None:
    """ValueError for an output folder that cannot be made (``require_output_place``), or a non-empty folder without
    ``overwrite``."""
    require_output_place(path, flag)
    if writer := output_writer(path):
        raise ValueError(f"{flag} {path} is being written by {writer}; wait for it or choose another")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise ValueError(f"{flag} {path!r} exists and is not empty; pass --overwrite to replace it, or choose another")


# transformers' progress bars over a model's own files, one per from_pretrained and per save_pretrained: a blink of
# work, but a line each in a log (with cursor codes when under the training bar). Downloads keep theirs.
QUIET_PROGRESS_BARS = ("Loading weights", "Writing model shards")


def without_file_progress_bars(factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A transformers tqdm hook (``set_tqdm_hook``): the bars named in ``QUIET_PROGRESS_BARS`` off, others kept."""
    if kwargs.get("desc") in QUIET_PROGRESS_BARS:
        kwargs = {**kwargs, "disable": True}
    return factory(*args, **kwargs)


def quiet_file_progress_bars() -> None:
    """transformers' progress bars of loading and saving a model's files left out (``QUIET_PROGRESS_BARS``): a bar
    for a second's work is noise."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_tqdm_hook(without_file_progress_bars)


def setup_logging(main_process: bool = True) -> None:
    """INFO-level logs with time and logger name; WARNING and above only on processes other than the main one; no
    file progress bars (``quiet_file_progress_bars``)."""
    logging.basicConfig(format=LOG_FORMAT, level=logging.INFO if main_process else logging.WARNING)
    quiet_file_progress_bars()


def library_versions() -> dict[str, str]:
    import accelerate
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "accelerate": accelerate.__version__,
    }


def machine_description() -> str:
    """CPU model and core count, e.g. 'AMD EPYC 7B13, 2 cores, Linux-6.1-x86_64'."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = models[0] if models else cpu
    return f"{cpu}, {os.cpu_count()} cores, {platform.platform(terse=True)}"


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def run_metadata() -> dict[str, Any]:
    """What a results file records about the run that wrote it: library versions, machine and commit."""
    return {"versions": library_versions(), "machine": machine_description(), "git_commit": git_commit()}


# Prefixes of local paths, never of a Hub id: the recipe and the examples write their models under runs/.
LOCAL_PREFIXES = (".", "/", "~", "runs/")
# Endings of files, never of a Hub id: a mistyped data file is named as missing, not looked up on the Hub.
FILE_SUFFIXES = (".txt", ".gz", ".tsv", ".csv", ".json", ".jsonl", ".parquet", ".model", ".safetensors", ".bin")


def looks_local(name_or_path: str) -> bool:
    """Whether ``name_or_path`` is meant as a local path rather than a Hub id (``namespace/name``): it exists, starts
    like a path (``.``, ``/``, ``~``, ``runs/``), has more than one ``/``, ends like a file (``.txt``, ``.gz``, ...),
    or names an entry of an existing folder."""
    parent = os.path.dirname(name_or_path)
    return (
        os.path.exists(name_or_path)
        or name_or_path.startswith(LOCAL_PREFIXES)
        or name_or_path.count("/") > 1
        or name_or_path.lower().endswith(FILE_SUFFIXES)
        or (bool(parent) and os.path.isdir(parent))
    )


def is_missing_file(data: str) -> bool:
    """A data argument meant as a file that is not there (a Hub dataset or a dataset folder, ``NAME:CONFIG:SPLIT``,
    is not checked here: datasets says what is wrong with it when it is read)."""
    name = data.split(":", 1)[0]
    return looks_local(name) and not os.path.isfile(data) and not os.path.isdir(name)


def require_data_files(options: Any, names: Iterable[str]) -> None:
    """ValueError ``--train_file: no such file: data/nsmc_train.txt`` for the first of the options ``names`` that
    is meant as a file and is not there, before anything heavy loads (a Hub dataset name is left to the datasets
    library)."""
    for name in names:
        values = getattr(options, name)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and is_missing_file(value):
                raise ValueError(f"--{name}: no such file: {value}")


def bundled_data_dir() -> Path:
    """The bundled data/ folder: the checkout's, or the copy a wheel installs under ``PREFIX/share/distilkobert``."""
    checkout = ROOT / BUNDLED_DATA
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "distilkobert" / BUNDLED_DATA


def bundled_path(value: str) -> str:
    """A path a preset or config names: as given when it is there from the current folder or is not in data/, else
    the bundled copy (``data/nsmc_test.txt.gz`` run from another folder, or from an installed wheel)."""
    head, _, rest = value.partition("/")
    if head != BUNDLED_DATA or not rest or os.path.exists(value):
        return value
    candidate = bundled_data_dir() / rest
    return str(candidate) if candidate.exists() else value
