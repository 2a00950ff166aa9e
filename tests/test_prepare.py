"""pretrain.prepare (tokenize and pack a corpus) and pretrain.blocks (read the packed blocks back)."""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BUNDLED_REVIEWS, KOBERT_FILES, ROOT, read_lines

import pretrain.prepare
from pretrain.blocks import PackedBlocks, check_compatible, load_token_counts, vocab_sha256
from pretrain.prepare import encode_lines, init_worker, load_meta, main, split_long_line
from tokenization_kobert import KoBertTokenizerFast

LENGTH = 64
EVERY = 10  # --validation_ratio 0.1
CLS, SEP, PAD = 2, 3, 1


def write_corpus(path: Path, lines: list[bytes]) -> Path:
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def prepare_args(corpus: list[Path], tokenizer_dir: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--corpus",
        *map(str, corpus),
        "--tokenizer_name_or_path",
        str(tokenizer_dir),
        "--output_dir",
        str(output),
        "--max_seq_length",
        str(LENGTH),
        *extra,
    ]


def expected_blocks(line_ids: list[list[int]], length: int) -> tuple[list[list[int]], int]:
    """The packing, recomputed in plain Python: blocks ``[CLS] stream[k:k+L-2] [SEP]`` and the dropped tail."""
    stream = [token for ids in line_ids for token in (*ids, SEP)]
    step = length - 2
    count = len(stream) // step
    return [[CLS, *stream[b * step : (b + 1) * step], SEP] for b in range(count)], len(stream) - count * step


def read_split(folder: Path, split: str) -> np.ndarray:
    meta = json.loads((folder / "meta.json").read_text())
    shards = meta["splits"][split]["shards"]
    arrays = [np.fromfile(folder / s["file"], dtype="<u2").reshape(-1, meta["max_seq_length"]) for s in shards]
    return np.concatenate(arrays) if arrays else np.empty((0, meta["max_seq_length"]), dtype="<u2")


def folder_state(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def corpus_lines() -> list[str]:
    return [line for line in read_lines(BUNDLED_REVIEWS, 3000) if line.strip()]


@pytest.fixture(scope="module")
def corpus(corpus_lines: list[str], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The lines in two files, plain and gzip: the stream runs on across files."""
    folder = tmp_path_factory.mktemp("corpus")
    encoded = [line.encode() for line in corpus_lines]
    return [write_corpus(folder / "a.txt", encoded[:1000]), write_corpus(folder / "b.txt.gz", encoded[1000:])]


@pytest.fixture(scope="module")
def prepared(corpus: list[Path], tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("prepared") / "data"
    main(prepare_args(corpus, tokenizer_dir, output, "--validation_ratio", "0.1", "--shard_blocks", "100"))
    return output


def test_packing_matches_an_independent_recomputation(prepared: Path, corpus_lines: list[str], slow_tokenizer) -> None:
    line_ids = [slow_tokenizer.encode(line, add_special_tokens=False) for line in corpus_lines]
    blocks, tail = expected_blocks(line_ids, LENGTH)
    train, validation = read_split(prepared, "train"), read_split(prepared, "validation")

    assert validation.tolist() == blocks[::EVERY]
    assert train.tolist() == [block for i, block in enumerate(blocks) if i % EVERY]
    written = np.concatenate([train, validation])
    assert (written[:, 0] == CLS).all() and (written[:, -1] == SEP).all() and not (written == PAD).any()

    meta = json.loads((prepared / "meta.json").read_text())
    stats = json.loads((prepared / "stats.json").read_text())
    assert meta["format"] == "distilkobert-packed-v1" and meta["dtype"] == "uint16"
    assert (meta["vocab_size"], meta["cls_token_id"], meta["sep_token_id"], meta["pad_token_id"]) == (8002, 2, 3, 1)
    assert meta["tokenizer"]["vocab_sha256"] == vocab_sha256(slow_tokenizer)  # what training checks its tokenizer by
    assert meta["splits"]["train"]["blocks"] == len(train) and len(meta["splits"]["train"]["shards"]) > 1
    assert all(s["blocks"] <= 100 for split in meta["splits"].values() for s in split["shards"])
    assert stats["lines"] == stats["separator_tokens"] == len(corpus_lines)
    assert stats["tokens"] == sum(map(len, line_ids)) and stats["dropped_tail_tokens"] == tail
    assert stats["blocks"] == {"train": len(train), "validation": len(validation)}


def test_token_counts_are_a_bincount_of_the_written_blocks(prepared: Path) -> None:
    blocks = np.concatenate([read_split(prepared, "train"), read_split(prepared, "validation")])
    counts = load_token_counts(str(prepared))
    assert counts.dtype == np.int64
    assert np.array_equal(counts, np.bincount(blocks.ravel(), minlength=8002))


def test_two_processes_write_the_same_bytes(
    prepared: Path, corpus: list[Path], tokenizer_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "parallel"
    args = ["--validation_ratio", "0.1", "--shard_blocks", "100", "--num_proc", "2", "--batch_lines", "50"]
    main(prepare_args(corpus, tokenizer_dir, output, *args))
    names = sorted(p.name for p in prepared.iterdir() if p.name != "stats.json")
    assert names == sorted(p.name for p in output.iterdir() if p.name != "stats.json")
    for name in names:
        assert (output / name).read_bytes() == (prepared / name).read_bytes(), name


def test_split_long_line_cuts_at_whitespace_else_hard() -> None:
    words = " ".join(f"단어{i}" for i in range(100))
    pieces = split_long_line(words, 50)
    assert all(len(p) <= 50 for p in pieces) and " ".join(pieces).split() == words.split()
    assert all(not p.startswith(" ") for p in pieces)  # the space at each cut is dropped
    assert split_long_line("가" * 120, 50) == ["가" * 50, "가" * 50, "가" * 20]
    assert split_long_line("가" * 50 + " " + "나" * 10, 50) == ["가" * 50, "나" * 10]
    assert split_long_line("  " + "가" * 60, 50) == ["가" * 50, "가" * 10]


def test_bad_and_long_lines_are_counted_never_fatal(
    corpus_lines: list[str], tokenizer_dir: Path, slow_tokenizer, tmp_path: Path
) -> None:
    lines = corpus_lines[:200]
    text = " ".join(corpus_lines[200:2000])
    with_spaces, without_spaces = text[:50_000], text.replace(" ", "")[:50_000]
    raw = [
        *(line.encode() for line in lines[:100]),
        b"\xff\xfe broken",
        b"",
        b"   ",
        with_spaces.encode(),
        b"\xc3\x28",
        without_spaces.encode(),
        *(line.encode() for line in lines[100:]),
    ]
    output = tmp_path / "data"
    main(prepare_args([write_corpus(tmp_path / "odd.txt.gz", raw)], tokenizer_dir, output, "--validation_ratio", "0"))

    stats = json.loads((output / "stats.json").read_text())
    assert (stats["invalid_utf8"], stats["empty"], stats["split_long_lines"]) == (2, 2, 2)
    assert stats["lines"] == len(lines) + 2
    kept = [*lines[:100], with_spaces, without_spaces, *lines[100:]]
    line_ids = [
        [
            token
            for piece in split_long_line(line, 20_000)
            for token in slow_tokenizer.encode(piece, add_special_tokens=False)
        ]
        for line in kept
    ]
    blocks, _ = expected_blocks(line_ids, LENGTH)
    assert read_split(output, "train").tolist() == blocks
    assert list(json.loads((output / "meta.json").read_text())["splits"]) == ["train"]
    with pytest.raises(ValueError, match=r"no 'validation' split; it has \['train'\]"):
        PackedBlocks(str(output), "validation")


def test_rerun_does_nothing_and_changed_input_is_refused(
    corpus_lines: list[str], tokenizer_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_corpus(tmp_path / "small.txt", [line.encode() for line in corpus_lines[:300]])
    output = tmp_path / "data"
    main(prepare_args([source], tokenizer_dir, output))
    before = folder_state(output)
    capsys.readouterr()

    main(prepare_args([source], tokenizer_dir, output, "--num_proc", "2"))  # num_proc does not change the output
    assert "already prepared" in capsys.readouterr().out
    assert folder_state(output) == before

    with source.open("ab") as f:
        f.write("한 줄 더\n".encode())
    with pytest.raises(SystemExit) as exit_info:
        main(prepare_args([source], tokenizer_dir, output))
    assert exit_info.value.code == 2 and "pass --overwrite" in capsys.readouterr().err
    assert folder_state(output) == before

    main(prepare_args([source], tokenizer_dir, output, "--overwrite"))
    assert json.loads((output / "stats.json").read_text())["lines"] == 301
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".prepare")]  # no staging folder left behind

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        main(prepare_args([source], tokenizer_dir, foreign))
    assert "holds other files" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--max_seq_length": "4"}, "--max_seq_length must be at least 8"),
        ({"--max_seq_length": "1024"}, "exceeds the tokenizer's model_max_length 512"),
        ({"--num_proc": "0"}, "--num_proc must be at least 1"),
        ({"--validation_ratio": "0.9"}, "--validation_ratio must be in"),
        (
            {"--tokenizer_name_or_path": "no/such/folder"},
            "no such folder; build one with python -m pretrain.build_tokenizer",
        ),
        ({"--corpus": "no/such/*.txt"}, "no such file"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(
    change: dict[str, str], message: str, corpus: list[Path], tokenizer_dir: Path, tmp_path: Path, capsys
) -> None:
    args = {"--corpus": str(corpus[0]), "--tokenizer_name_or_path": str(tokenizer_dir)}
    args |= {"--output_dir": str(tmp_path / "out"), "--max_seq_length": "64", **change}
    with pytest.raises(SystemExit) as exit_info:
        main([token for pair in args.items() for token in pair])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_packed_blocks_reads_lazily_pickles_and_loads_in_workers(prepared: Path) -> None:
    train = PackedBlocks(str(prepared), "train")
    expected = read_split(prepared, "train")
    assert len(train) == len(expected)
    item = train[150]  # second shard
    assert item.dtype == torch.int64 and item.shape == (LENGTH,) and item.tolist() == expected[150].tolist()
    assert train[-1].tolist() == expected[-1].tolist()
    with pytest.raises(IndexError):
        train[len(train)]
    assert isinstance(train._maps[1], np.memmap) and train._maps[0] is None  # only the touched shard is open

    clone = pickle.loads(pickle.dumps(train))
    assert clone._maps == [None] * len(clone._maps) and len(pickle.dumps(train)) < 10_000
    assert clone[7].tolist() == expected[7].tolist()

    loader = torch.utils.data.DataLoader(train, batch_size=32, num_workers=2)
    assert torch.cat(list(loader)).tolist() == expected.tolist()
    validation = PackedBlocks(str(prepared), "validation")
    assert len(validation) == len(read_split(prepared, "validation"))


def test_load_meta_and_check_compatible_say_what_is_wrong(prepared: Path, tmp_path: Path) -> None:
    meta = load_meta(str(prepared))
    check_compatible(meta, 8002, 512, str(prepared))
    with pytest.raises(ValueError, match="vocab_size 9,000"):
        check_compatible(meta, 9000, 512, str(prepared))
    with pytest.raises(ValueError, match="--max_seq_length 32 or less"):
        check_compatible(meta, 8002, 32, str(prepared))

    broken = tmp_path / "broken"
    shutil.copytree(prepared, broken)
    shard = broken / "train-00001.bin"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"train-00001\.bin: .* truncated"):
        load_meta(str(broken))
    with pytest.raises(ValueError, match=r"train-00001\.bin: .* truncated"):
        PackedBlocks(str(broken))
    (broken / "meta.json").unlink()
    with pytest.raises(ValueError, match=r"no meta\.json"):
        load_meta(str(broken))


@pytest.mark.skipif(sys.platform != "linux", reason="reads ru_maxrss, which is in KiB on Linux only")
def test_memory_stays_flat_as_the_corpus_grows(tokenizer_dir: Path, tmp_path: Path) -> None:
    # The data benchmark itself, on small sizes: it builds the corpora and measures prepare's peak RSS.
    report = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.prepare_throughput",
        "--sizes_mb",
        "3",
        "30",
        "--num_proc",
        "1",
        "--tokenizer_name_or_path",
        str(tokenizer_dir),
        "--corpus_file",
        str(BUNDLED_REVIEWS),
        "--work_dir",
        str(tmp_path),
        "--output_file",
        str(report),
    ]
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
    results = {r["size_mb"]: r for r in json.loads(report.read_text())["results"]}
    assert results[30.0]["text_mb"] >= 30 * 0.99
    peaks = {size: r["peak_rss_mb"] for size, r in results.items()}
    # Flat means within a few MB (measured: under 1); keeping every id of 30 MB as int32 would add 23 MB.
    assert peaks[30.0] - peaks[3.0] < 20, peaks


def test_real_kobert_blocks_match_kobert_transformers(tmp_path: Path) -> None:
    # With KoBERT's own vocabulary, the lines whose dots tie (float32 against float64 sums) get the reference's ids.
    from kobert_transformers.tokenization_kobert import KoBertTokenizer as ReferenceKoBertTokenizer

    kobert = ROOT / "data" / "kobert"
    lines = [
        "포스터가... 80년대야....",
        "대한민국 여권이..... ㅎㅎ",
        "밥말리...........",
        *read_lines(BUNDLED_REVIEWS, 500),
    ]
    lines = [line for line in lines if line.strip()]
    corpus = write_corpus(tmp_path / "tie.txt", [line.encode() for line in lines])
    main(prepare_args([corpus], kobert, tmp_path / "data", "--validation_ratio", "0"))
    reference = ReferenceKoBertTokenizer(str(kobert / "tokenizer_78b3253a26.model"), str(kobert / "vocab.txt"))
    blocks, _ = expected_blocks([reference.encode(line, add_special_tokens=False) for line in lines], LENGTH)
    assert read_split(tmp_path / "data", "train").tolist() == blocks


def test_lines_longer_than_the_model_maximum_raise_no_warning(tmp_path: Path) -> None:
    """The smoke recipe's data stage printed transformers' "Token indices sequence length is longer than the
    specified maximum": blocks are cut from the stream, so a long line is expected."""
    KoBertTokenizerFast(**KOBERT_FILES, model_max_length=8).save_pretrained(tmp_path / "tokenizer")
    init_worker(str(tmp_path / "tokenizer"))
    stream, _ = encode_lines(["한국어 모델을 공유합니다. " * 10], sep_token_id=3, max_line_chars=10_000)
    assert len(stream) > 8
    warned = pretrain.prepare._tokenizer.deprecation_warnings
    assert "sequence-length-is-longer-than-the-specified-maximum" not in warned
