"""pretrain.build_tokenizer and the streaming corpus reader it uses."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest
import sentencepiece as spm
from conftest import BUNDLED_REVIEWS, read_lines

from pretrain.build_tokenizer import main, sampled_lines
from pretrain.corpus import CorpusStats, expand_corpus_paths, iter_lines
from pretrain.inspect_tokenizer import main as inspect
from tokenization_kobert import SCORE_GRID, KoBertTokenizer, KoBertTokenizerFast


def write_corpus(path: Path, lines: list[bytes]) -> Path:
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two files, plain and gzip, with invalid UTF-8 and empty lines mixed in."""
    folder = tmp_path_factory.mktemp("corpus")
    lines = [line.encode() for line in read_lines(BUNDLED_REVIEWS, 6000)]
    first = write_corpus(folder / "a.txt", [*lines[:3000], b"\xff\xfe broken", b"", b"   "])
    second = write_corpus(folder / "b.txt.gz", [b"\xc3\x28", *lines[3000:]])
    return [first, second]


@pytest.fixture(scope="module")
def built(small_corpus: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("built") / "tok"
    main(
        [
            "--corpus",
            *map(str, small_corpus),
            "--vocab_size",
            "1000",
            "--character_coverage",
            "0.995",
            "--output_dir",
            str(output),
        ]
    )
    return output


def test_folder_layout_and_special_ids(built: Path) -> None:
    names = {p.name for p in built.iterdir()}
    assert {
        "tokenizer_78b3253a26.model",
        "vocab.txt",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenization_kobert.py",
        "tokenizer_build.json",
    } <= names
    vocab = (built / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab[:5] == ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) == 1000
    sp_model = spm.SentencePieceProcessor(model_file=str(built / "tokenizer_78b3253a26.model"))
    # SentencePiece ids equal vocab.txt ids, so either file tells the same story.
    assert [sp_model.id_to_piece(i) for i in range(sp_model.get_piece_size())] == vocab
    assert not any(p.name.startswith(".") for p in built.parent.iterdir()), "staging folder left behind"


def test_scores_are_on_the_grid(built: Path) -> None:
    sp_model = spm.SentencePieceProcessor(model_file=str(built / "tokenizer_78b3253a26.model"))
    scores = [sp_model.get_score(i) for i in range(sp_model.get_piece_size())]
    assert all((s * SCORE_GRID).is_integer() for s in scores)
    assert len(set(scores)) > 100, "quantisation must keep the scores apart"


def test_invalid_and_empty_lines_are_counted_not_fatal(built: Path) -> None:
    stats = json.loads((built / "tokenizer_build.json").read_text())
    assert stats["corpus"]["invalid_utf8"] == 2
    assert stats["corpus"]["empty"] == 2
    assert stats["corpus"]["lines"] == 6000


def test_both_classes_and_auto_tokenizer_load_it(built: Path) -> None:
    from transformers import AutoTokenizer

    text = "[CLS] 이 영화 정말 재밌어요 [SEP]"
    ids = KoBertTokenizer.from_pretrained(built)(text)["input_ids"]
    assert KoBertTokenizerFast.from_pretrained(built)(text)["input_ids"] == ids
    assert AutoTokenizer.from_pretrained(built, trust_remote_code=True)(text)["input_ids"] == ids
    assert ids[:2] == [2, 2] and ids[-2:] == [3, 3]


def test_refuses_a_non_empty_output(built: Path, small_corpus: list[Path], capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--corpus", str(small_corpus[0]), "--vocab_size", "500", "--output_dir", str(built)])
    assert "--overwrite" in capsys.readouterr().err


def test_too_small_a_vocabulary_is_a_clear_error(small_corpus: list[Path], tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="Increase vocab_size or decrease character_coverage"):
        main(["--corpus", str(small_corpus[0]), "--vocab_size", "100", "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_a_corpus_too_small_for_the_vocabulary_is_refused_unless_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = write_corpus(tmp_path / "tiny.txt", ["가나다 라마바".encode(), "사아자 차카타".encode()] * 20)
    argv = ["--corpus", str(corpus), "--vocab_size", "8002", "--output_dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match=r"the corpus gave (\d+) pieces, not the 8,002 of --vocab_size.*nothing was"):
        main(argv)
    assert not (tmp_path / "out").exists()

    main([*argv, "--allow_smaller_vocab"])
    pieces = len((tmp_path / "out" / "vocab.txt").read_text(encoding="utf-8").splitlines())
    assert 5 < pieces < 8002 and f"gave {pieces} pieces" in caplog.text and "--allow_smaller_vocab" in caplog.text


def test_missing_corpus_is_a_clear_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--corpus", str(tmp_path / "nope.txt"), "--output_dir", str(tmp_path / "out")])
    assert "nope.txt" in capsys.readouterr().err


def test_inspect_tokenizer_shows_a_folder(built: Path, capsys) -> None:
    inspect(["--tokenizer_name_or_path", str(built), "--texts", "[CLS] 한국어 모델 [SEP]", "--pair", "둘째 문장"])
    out = capsys.readouterr().out
    assert out.startswith(f"KoBertTokenizerFast from {built}: 1000 tokens")
    assert "slow == fast:   True" in out


def test_inspect_tokenizer_names_a_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A mistyped path is one line naming it: not a traceback about connecting to the Hub.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^error: no such folder: runs/nope$"):
        inspect(["--tokenizer_name_or_path", "runs/nope", "--texts", "안녕"])


def test_a_sampled_corpus_gives_the_same_tokenizer_every_run(small_corpus: list[Path], tmp_path: Path) -> None:
    # 2,000 of the 6,000 lines: SentencePiece's own sampling of an iterator was unseeded (another vocabulary each run)
    def build(name: str, seed: str) -> bytes:
        options = ["--vocab_size", "1000", "--character_coverage", "0.995", "--input_sentence_size", "2000"]
        options += ["--num_threads", "2", "--seed", seed]
        main(["--corpus", *map(str, small_corpus), *options, "--output_dir", str(tmp_path / name)])
        return (tmp_path / name / "vocab.txt").read_bytes()

    assert build("first", "42") == build("again", "42")
    assert build("other-seed", "7") != build("first-again", "42")


def test_sampled_lines_draws_the_size_asked_in_corpus_order() -> None:
    lines = [f"line {n}" for n in range(1000)]
    drawn = list(sampled_lines(iter(lines), 100, seed=1))
    assert len(drawn) == 100 == len(set(drawn))
    assert drawn == sorted(drawn, key=lines.index)  # the corpus's order
    assert drawn == list(sampled_lines(iter(lines), 100, seed=1)) != list(sampled_lines(iter(lines), 100, seed=2))
    assert list(sampled_lines(iter(lines), 0, seed=1)) == lines == list(sampled_lines(iter(lines), 5000, seed=1))
    # uniform: each tenth of the corpus gives about a tenth of the sample (over 200 seeds, 20,000 draws)
    counts = [0] * 10
    for seed in range(200):
        for line in sampled_lines(iter(lines), 100, seed):
            counts[int(line.split()[1]) // 100] += 1
    assert all(1800 < count < 2200 for count in counts)


def test_expand_corpus_paths_sorts_globs(small_corpus: list[Path]) -> None:
    folder = small_corpus[0].parent
    assert expand_corpus_paths([str(folder / "*")]) == sorted(str(p) for p in small_corpus)


def test_reader_streams_without_holding_the_corpus(tmp_path: Path) -> None:
    line = ("스트리밍 테스트 문장입니다 " * 8).encode()
    path = write_corpus(tmp_path / "big.txt.gz", [line] * 100_000)  # ~20 MB of text
    stats = CorpusStats()
    tracemalloc.start()
    count = sum(1 for _ in iter_lines([str(path)], stats))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == stats.lines == 100_000
    assert stats.bytes > 20_000_000
    assert peak < 2_000_000, f"reader held {peak:,} bytes for a {stats.bytes:,}-byte corpus"
