"""Shared fixtures: a KoBERT-style tokenizer built once per session from the bundled review sample."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_REVIEWS = ROOT / "data" / "reviews.txt.gz"
SHARED_DATA = Path(os.environ.get("DISTILKOBERT_SHARED_DATA", ROOT.parent / "shared" / "data"))
SHARED_CORPUS = SHARED_DATA / "corpus" / "reviews.txt.gz"
# The real KoBERT tokenizer (SKTBrain/KoBERT, Apache-2.0), shipped so that a fresh clone tests against it.
KOBERT_FILES = {
    "vocab_file": str(ROOT / "data" / "kobert" / "tokenizer_78b3253a26.model"),
    "vocab_txt": str(ROOT / "data" / "kobert" / "vocab.txt"),
}

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "PYTEST_XDIST_WORKER" in os.environ:
    # The workers share the cores: torch's default (a thread per core in each worker, and in each subprocess, which
    # inherits this) has OpenMP threads spinning against each other, and a BiLSTM training step took ten times as
    # long as on one thread. Set before any test module imports torch.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    # transformers copies remote code (our tokenizer, the BiLSTM) into one module cache; each worker gets its own,
    # so two workers never write the same file at once. Subprocesses inherit it.
    os.environ.setdefault(
        "HF_MODULES_CACHE",
        os.path.join(tempfile.gettempdir(), f"distilkobert-modules-{os.getpid()}-{os.environ['PYTEST_XDIST_WORKER']}"),
    )


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models train several times faster on one thread than on two when other jobs share the cores. A module
    uses it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# Two gloo processes on a CPU-only machine: accelerate 1.x runs `launch --cpu --num_processes 2` as one process unless
# MPI is installed; torchrun through --multi_gpu with ACCELERATE_USE_CPU=true (in the environment) starts two.
TWO_CPU_PROCESSES = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
TWO_CPU_PROCESSES += [
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
    "--main_process_port",
    "0",
]


def read_lines(path: Path, limit: int | None = None) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in itertools.islice(f, limit)]


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """``build(folder)`` once for the whole run: under xdist the first worker to ask builds it in the run's shared
    temporary folder while the others wait on a lock, then every worker reads the same files."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name) / name
        build(folder)
        return folder
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # one per run, above each worker's own
    folder, done = shared / f"shared-{name}" / name, shared / f"shared-{name}.done"
    with FileLock(str(shared / f"shared-{name}.lock")):
        if not done.exists():
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full-size (8,002-token) tokenizer folder built by ``pretrain.build_tokenizer`` from the bundled sample."""
    from pretrain.build_tokenizer import TokenizerArguments, build_tokenizer

    def build(folder: Path) -> None:
        build_tokenizer(TokenizerArguments(corpus=[str(BUNDLED_REVIEWS)], vocab_size=8002, output_dir=str(folder)))

    return built_once(tmp_path_factory, "kobert", build)


@pytest.fixture(scope="session")
def tokenizer_files(tokenizer_dir: Path) -> dict[str, str]:
    """The two files both tokenizer classes (and the oracle) are constructed from."""
    return {
        "vocab_file": str(tokenizer_dir / "tokenizer_78b3253a26.model"),
        "vocab_txt": str(tokenizer_dir / "vocab.txt"),
    }


@pytest.fixture(scope="session")
def slow_tokenizer(tokenizer_files: dict[str, str]):
    from tokenization_kobert import KoBertTokenizer

    return KoBertTokenizer(**tokenizer_files)


@pytest.fixture(scope="session")
def fast_tokenizer(tokenizer_files: dict[str, str]):
    from tokenization_kobert import KoBertTokenizerFast

    return KoBertTokenizerFast(**tokenizer_files)


@pytest.fixture(scope="session")
def reference_tokenizer(tokenizer_files: dict[str, str]):
    """kobert-transformers 0.6.0, the tokenizer we must match id for id."""
    from kobert_transformers.tokenization_kobert import KoBertTokenizer as ReferenceKoBertTokenizer

    return ReferenceKoBertTokenizer(**tokenizer_files)


@pytest.fixture(scope="session")
def models(tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random BERT and a tiny random DistilBERT (masked LMs), each saved with the session tokenizer."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, DistilBertConfig, DistilBertForMaskedLM

    from tokenization_kobert import KoBertTokenizerFast

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    tiny = {"vocab_size": 8002, "max_position_embeddings": 64, "pad_token_id": 1}
    built = {
        "bert": BertForMaskedLM(
            BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, **tiny)
        ),
        "distilbert": DistilBertForMaskedLM(DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, **tiny)),
    }
    for name, model in built.items():
        model.save_pretrained(root / name)
        KoBertTokenizerFast.from_pretrained(tokenizer_dir).save_pretrained(root / name)
    return {name: root / name for name in built}


class ImplicitDeviceFactories:
    """Records tensor factories (``torch.rand``, ``torch.zeros``, ...) that our code calls without ``device=``.

    Beside CUDA inputs such a call makes a CPU tensor (or raises, with a CUDA generator): the bug this machine, which
    has no GPU, cannot show by running. Calls made inside installed libraries are not ours and are not recorded.

        with ImplicitDeviceFactories() as factories:
            mask_tokens(...)
        assert factories.calls == []
    """

    FACTORIES = frozenset(
        ("rand", "randn", "randint", "randperm", "zeros", "ones", "empty", "full", "arange", "tensor", "eye")
    )

    def __init__(self) -> None:
        from torch.overrides import TorchFunctionMode

        checker = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if getattr(func, "__name__", "") in checker.FACTORIES and "device" not in kwargs:
                    caller = checker.our_caller()
                    if caller is not None:
                        checker.calls.append(f"{func.__name__} at {caller}")
                return func(*args, **kwargs)

        self.calls: list[str] = []
        self.mode = Mode()

    @staticmethod
    def our_caller() -> str | None:
        """``file:line`` of the innermost caller outside torch, if it is this repository's code (not tests)."""
        import traceback

        for frame in reversed(traceback.extract_stack()):
            path = Path(frame.filename).resolve()
            if "torch" in path.parts or path == Path(__file__).resolve():
                continue
            inside = ROOT in path.parents and ".venv" not in path.parts and "tests" not in path.parts
            return f"{path.relative_to(ROOT)}:{frame.lineno}" if inside else None
        return None

    def __enter__(self) -> ImplicitDeviceFactories:
        self.mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mode.__exit__(*exc)


# Label names of the tiny NER model: Naver NER's style (the B/I tag after the type).
TINY_NER_LABELS = ["UNK", "O", "PER-B", "PER-I", "LOC-B", "LOC-I"]


@pytest.fixture(scope="session")
def served_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random models of every kind the service runs, each saved with the real KoBERT tokenizer: BERT,
    DistilBERT and KoBiLSTM classifiers, a DistilBERT token classifier, a BERT question-answering model, and two
    sentence-transformers encoders (mean pooling; CLS pooling with normalisation)."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Normalize
    from transformers import (
        BertConfig,
        BertForQuestionAnswering,
        BertForSequenceClassification,
        BertModel,
        DistilBertConfig,
        DistilBertForSequenceClassification,
        DistilBertForTokenClassification,
    )

    from modeling.bilstm import KoBiLstmForSequenceClassification, bilstm_config
    from sentence.model import load_encoder
    from tokenization_kobert import KoBertTokenizerFast

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("served")
    tokenizer = KoBertTokenizerFast(**KOBERT_FILES)
    shape = {"vocab_size": 8002, "pad_token_id": 1, "max_position_embeddings": 128}
    bert = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, **shape}
    distilbert = {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64, **shape}
    sentiment = {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1}}
    ner = {"id2label": dict(enumerate(TINY_NER_LABELS)), "label2id": {t: i for i, t in enumerate(TINY_NER_LABELS)}}
    built = {
        "bert-classify": BertForSequenceClassification(BertConfig(**bert, **sentiment)),
        "distilbert-classify": DistilBertForSequenceClassification(DistilBertConfig(**distilbert, **sentiment)),
        "bilstm-classify": KoBiLstmForSequenceClassification(
            bilstm_config("tiny", vocab_size=8002, pad_token_id=1, **sentiment)
        ),
        "distilbert-ner": DistilBertForTokenClassification(DistilBertConfig(**distilbert, **ner)),
        "bert-qa": BertForQuestionAnswering(BertConfig(**bert)),
        "bert-encoder": BertModel(BertConfig(**bert)),
    }
    for name, model in built.items():
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    load_encoder(str(root / "bert-encoder"), pooling="mean").save(str(root / "sentence-mean"))
    normalized = load_encoder(str(root / "bert-encoder"), pooling="cls")
    normalized.append(Normalize())
    normalized.save(str(root / "sentence-cls-normalized"))
    folders = {name: root / name for name in built if name != "bert-encoder"}
    return {
        **folders,
        "sentence-mean": root / "sentence-mean",
        "sentence-cls-normalized": root / "sentence-cls-normalized",
    }


@contextlib.contextmanager
def through_the_pipeline(tokenizer: Any) -> Iterator[Any]:
    """``tokenizer`` (a ``KoBertTokenizerFast``) with offsets given by the tokenizers pipeline, as before issue 34
    (``offsets_in_bulk`` off): the oracle of the bulk path's offsets, word ids and tokens."""
    tokenizer.offsets_in_bulk = False
    try:
        yield tokenizer
    finally:
        del tokenizer.offsets_in_bulk  # the class's again
