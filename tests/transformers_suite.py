"""transformers' own tokenizer tests, from the source release of the installed transformers: ``make`` fetches them
(``python tests/transformers_suite.py``), ``tests/test_transformers_tokenizer_mixins.py`` runs them.

The source release (the sdist on the package registry) holds ``tests/test_tokenization_common.py`` and the two
backend mixins, but not the ``fixtures/sample_text.txt`` their set-up reads: we write our own, Korean reviews from
``data/``. The files are put in a package named ``transformers_tests`` (``get_tests_dir`` looks for a folder whose
name ends with ``tests``) under ``.venv/transformers-VERSION/``, outside the repository: we run their code, we do not
copy it.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import itertools
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ("test_tokenization_common.py", "test_sentencepiece_backend_mixin.py", "test_tokenizers_backend_mixin.py")
PACKAGE = "transformers_tests"
SAMPLE_LINES = 200


def location(version: str | None = None) -> Path:
    """The folder to put on sys.path for ``import transformers_tests`` (it may not exist yet)."""
    return ROOT / ".venv" / f"transformers-{version or importlib.metadata.version('transformers')}"


def is_fetched(folder: Path) -> bool:
    return all((folder / PACKAGE / name).is_file() for name in FILES)


def sample_text() -> str:
    with gzip.open(ROOT / "data" / "nsmc_test.txt.gz", "rt", encoding="utf-8") as lines:
        return "".join(line.split("\t")[1] + "\n" for line in itertools.islice(lines, 1, SAMPLE_LINES + 1))


def fetch(version: str | None = None) -> Path:
    """Download the source release of ``version`` (the installed one by default) and unpack the three files."""
    version = version or importlib.metadata.version("transformers")
    folder = location(version)
    if is_fetched(folder):
        return folder
    package = folder / PACKAGE
    with tempfile.TemporaryDirectory() as temporary:
        sdist_only = ["--quiet", "--no-deps", "--no-binary", ":all:"]
        pip = [sys.executable, "-m", "pip", "download", *sdist_only, f"transformers=={version}", "--dest", temporary]
        subprocess.run(pip, check=True)
        (sdist,) = Path(temporary).glob("transformers-*.tar.gz")
        (package / "fixtures").mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("", encoding="utf-8")
        (package / "fixtures" / "sample_text.txt").write_text(sample_text(), encoding="utf-8")
        with tarfile.open(sdist) as release:  # the tests last: is_fetched looks for them
            for name in FILES:
                member = release.extractfile(f"transformers-{version}/tests/{name}")
                (package / name).write_bytes(member.read())
    return folder


if __name__ == "__main__":
    sys.stdout.write(f"transformers' tokenizer tests in {fetch()}\n")
