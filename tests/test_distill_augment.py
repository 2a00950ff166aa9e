"""distill.augment: masking, POS-guided replacement (Kiwi morphemes, and the same-final-syllable fallback), n-gram
sampling and the command, on hand-made Korean sentences whose expected copies are worked out by hand."""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from distill.augment import (
    FALLBACK_ENGINE,
    AugmentArguments,
    Augmenter,
    AugmentSettings,
    Candidates,
    augment,
    build_index,
    main,
    mask_words,
    replace_eojeols,
    replacement_engine,
    sample_ngram,
)
from distill.cache_logits import CacheLogitsArguments

WORDS = "어제 본 영화가 정말 재미있었다".split()
# Kiwi's content morphemes of this corpus, by tag, read off the sentences by hand (bound endings, particles and the
# auxiliary 주 of 보여줬다 are not content morphemes).
KIWI_CORPUS = [
    "영화가 정말 재미있었다.",
    "주인공이 빨리 달렸다.",
    "감독은 결말을 천천히 보여줬다.",
    "친구와 극장에 갔다.",
    "배우가 멋지다.",
]
KIWI_CONTENT = {
    "NNG": {"영화", "주인공", "감독", "결말", "친구", "극장", "배우"},
    "MAG": {"정말", "빨리", "천천히"},
    "VA": {"재미있", "멋지"},
    "VV": {"달리", "보이", "가"},
}


@pytest.fixture(scope="module")
def kiwi():
    """One Kiwi for the module (loading its model takes a second): the one the Augmenter shares."""
    pytest.importorskip("kiwipiepy")
    from distill.augment import shared_kiwi

    return shared_kiwi()


def pos_augmenter(corpus: list[str], **settings) -> Augmenter:
    return Augmenter(AugmentSettings(**{"pos_rate": 1.0, "pos_per_example": 4, **settings}), corpus)


def content_morphemes(kiwi, text: str) -> list[tuple[str, str]]:
    return [(t.form, t.tag.split("-")[0]) for t in kiwi.tokenize(text) if t.tag.split("-")[0] in KIWI_CONTENT]


# Masking and n-grams


def test_rate_one_masks_every_word_and_rate_zero_none() -> None:
    assert mask_words(WORDS, 1.0, random.Random(0)) == ["[MASK]"] * 5
    assert mask_words(WORDS, 0.0, random.Random(0)) == WORDS
    assert mask_words(WORDS, 1.0, random.Random(0), mask_token="<mask>") == ["<mask>"] * 5


def test_a_masked_copy_keeps_the_words_and_masks_at_the_rate() -> None:
    masked_total = 0
    for seed in range(100):
        masked = mask_words(WORDS * 4, 0.5, random.Random(seed))
        assert len(masked) == 20
        assert all(new in (old, "[MASK]") for new, old in zip(masked, WORDS * 4, strict=True))
        masked_total += masked.count("[MASK]")
    # 2,000 words each masked with probability 0.5: the share has a standard deviation of 0.011.
    assert 0.45 < masked_total / 2000 < 0.55


def test_ngrams_are_contiguous_runs_of_one_to_max_n_words() -> None:
    runs = {tuple(WORDS[i : i + n]) for n in range(1, 4) for i in range(len(WORDS) - n + 1)}
    seen = {tuple(sample_ngram(WORDS, 3, random.Random(seed))) for seed in range(300)}
    assert seen == runs  # every run of 1..3 words comes up, and nothing else
    assert all(1 <= len(sample_ngram(WORDS[:2], 5, random.Random(seed))) <= 2 for seed in range(20))
    assert sample_ngram([], 5, random.Random(0)) == []


# The replacement index


def test_draws_follow_the_counts_and_leave_out_the_original() -> None:
    candidates = Candidates.from_counts({"영화": 1, "배우": 3})
    rng = random.Random(0)
    draws = [candidates.draw(rng, exclude="감독") for _ in range(4000)]
    # 배우 has 3 of the 4 counts; the standard deviation of its share over 4,000 draws is 0.007.
    assert 0.72 < draws.count("배우") / 4000 < 0.78
    assert {candidates.draw(rng, exclude="배우") for _ in range(50)} == {"영화"}
    assert Candidates.from_counts({"영화": 2}).draw(rng, exclude="영화") is None


def test_the_index_keeps_a_bounded_number_of_words_per_class() -> None:
    entries = [("가", "영화가"), ("가", "배우가"), ("가", "누가"), ("가", "영화가"), ("다", "좋다")]
    index = build_index(entries, max_per_class=2)
    assert index["가"].items == ("영화가", "배우가")  # 누가 came third: left out
    assert index["가"].cumulative == (2, 3)  # 영화가 twice, 배우가 once
    assert index["다"].items == ("좋다",)


# POS-guided replacement with Kiwi


def test_kiwi_replaces_a_morpheme_and_fits_the_particle(kiwi) -> None:
    # The only other noun of the corpus is 영화 and 좋 is the only adjective: 음악이 becomes 영화가 (이 -> 가 after
    # a vowel), 좋다 stays; the doubled space and the other characters are kept.
    augmenter = pos_augmenter(["음악이 좋다.", "영화를 봤다."])
    assert augmenter.augment("음악이  좋다!!", 0) == ["영화가  좋다!!"]
    assert augmenter.augment("👍 음악이 좋다 😀", 0) == ["👍 영화가 좋다 😀"]  # Kiwi's offsets count code points
    # Two nouns and two adjectives: at rate 1 each is swapped for the other.
    assert pos_augmenter(["영화가 좋다.", "배우가 멋지다."]).augment("영화가 좋다.", 0) == ["배우가 멋지다."]


def test_kiwi_index_holds_the_corpus_content_morphemes_by_tag(kiwi) -> None:
    augmenter = pos_augmenter(KIWI_CORPUS)
    assert {tag: {form for form, _ in candidates.items} for tag, candidates in augmenter.index.items()} == KIWI_CONTENT
    assert augmenter.pos_engine.startswith(f"kiwipiepy {importlib.metadata.version('kiwipiepy')} ")
    assert augmenter.describe() == {**augmenter.settings.as_dict(), "pos_engine": augmenter.pos_engine}


def test_kiwi_replacements_have_the_same_tag_and_come_from_the_corpus(kiwi) -> None:
    original = "영화가 정말 재미있었다."
    copies = pos_augmenter(KIWI_CORPUS, pos_per_example=8).augment(original, 3)
    assert len(copies) >= 4
    for copy in copies:
        # At rate 1 every content morpheme changes: the noun and the adverb to another of the corpus, the adjective
        # to the only other one, 멋지.
        (noun, noun_tag), (adverb, adverb_tag), (adjective, adjective_tag) = content_morphemes(kiwi, copy)
        assert (noun_tag, adverb_tag, adjective_tag) == ("NNG", "MAG", "VA")
        assert noun in KIWI_CONTENT["NNG"] - {"영화"}
        assert adverb in KIWI_CONTENT["MAG"] - {"정말"}
        assert adjective == "멋지"
        assert copy.endswith("멋졌다.")  # 재미있었다 -> 멋지 + 었 + 다, contracted


def test_kiwi_rate_zero_changes_nothing(kiwi) -> None:
    assert pos_augmenter(KIWI_CORPUS, pos_rate=0.0).augment("영화가 정말 재미있었다.", 0) == []


# The fallback: eojeol of the same final syllable


FALLBACK_CORPUS = ["영화가 좋다", "배우가 멋지다", "음악이 슬프다"]


def test_fallback_replaces_an_eojeol_by_one_of_the_same_final_syllable() -> None:
    augmenter = pos_augmenter(FALLBACK_CORPUS, use_kiwi=False, pos_per_example=20)
    assert augmenter.pos_engine == FALLBACK_ENGINE
    copies = augmenter.augment("영화가 좋다", 0)
    # 가: 배우가 is the only other; 다: 멋지다 or 슬프다. Two possible copies, both come up in twenty tries.
    assert sorted(copies) == ["배우가 멋지다", "배우가 슬프다"]
    # 음악이 is alone in its class and stays; 책을 has no class in the corpus and stays.
    assert sorted(augmenter.augment("음악이 좋다 책을", 1)) == ["음악이 멋지다 책을", "음악이 슬프다 책을"]


def test_fallback_rate_zero_and_unknown_classes_leave_words() -> None:
    index = build_index([("가", "영화가"), ("가", "배우가")], max_per_class=10)
    assert replace_eojeols(["영화가", "책을"], index, 0.0, random.Random(0)) == ["영화가", "책을"]
    assert replace_eojeols(["영화가", "책을"], index, 1.0, random.Random(0)) == ["배우가", "책을"]


def test_without_kiwipiepy_the_fallback_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kiwipiepy", None)  # import kiwipiepy now raises ImportError
    augmenter = pos_augmenter(FALLBACK_CORPUS)
    assert augmenter.pos_engine == FALLBACK_ENGINE
    assert augmenter.augment("영화가 음악이", 0) == ["배우가 음악이"]


# Augmenter: copies, duplicates, determinism


def all_kinds(**settings) -> AugmentSettings:
    return AugmentSettings(
        **{"mask_per_example": 3, "pos_per_example": 3, "ngram_per_example": 3, "use_kiwi": False, **settings}
    )


def test_copies_equal_to_the_original_or_each_other_are_dropped() -> None:
    words = ["영화가", "정말", "좋다"]
    ngram = Augmenter(AugmentSettings(ngram_per_example=50), [])
    # The runs of 1..3 words of three words, but the whole sentence (the original): five.
    assert sorted(ngram.augment(" ".join(words), 0)) == sorted(["영화가", "정말", "좋다", "영화가 정말", "정말 좋다"])
    assert Augmenter(AugmentSettings(mask_rate=0.0, mask_per_example=3), []).augment("영화가 좋다", 0) == []
    assert Augmenter(AugmentSettings(mask_rate=1.0, mask_per_example=3), []).augment("영화가  좋다", 0) == [
        "[MASK] [MASK]"
    ]
    assert Augmenter(all_kinds(), FALLBACK_CORPUS).augment("   ", 0) == []


def test_same_seed_same_copies_another_seed_others() -> None:
    texts = [*FALLBACK_CORPUS, "어제 본 영화가 정말 재미있었다"]
    first = [Augmenter(all_kinds(seed=1), texts).augment(text, i) for i, text in enumerate(texts)]
    again = [Augmenter(all_kinds(seed=1), texts).augment(text, i) for i, text in enumerate(texts)]
    other = [Augmenter(all_kinds(seed=2), texts).augment(text, i) for i, text in enumerate(texts)]
    assert first == again
    assert first != other


def test_example_order_does_not_matter() -> None:
    texts = [*FALLBACK_CORPUS, "어제 본 영화가 정말 재미있었다", "배우가 정말 멋지다", "음악이 정말 슬프다"]
    alone = Augmenter(all_kinds(), texts).augment(texts[5], 5)
    in_order = Augmenter(all_kinds(), texts)
    for i in range(5):
        in_order.augment(texts[i], i)
    assert in_order.augment(texts[5], 5) == alone
    assert alone != Augmenter(all_kinds(), texts).augment(texts[5], 4)  # the index is part of the seed


def test_copies_are_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "import json; from distill.augment import Augmenter, AugmentSettings;"
        "s = AugmentSettings(mask_per_example=3, pos_per_example=3, ngram_per_example=3, use_kiwi=False);"
        "print(json.dumps(Augmenter(s, ['영화가 좋다', '배우가 멋지다']).augment('영화가 정말 멋지다', 7)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    here = Augmenter(all_kinds(), ["영화가 좋다", "배우가 멋지다"]).augment("영화가 정말 멋지다", 7)
    assert json.loads(result.stdout) == here
    assert here


# Settings


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mask_rate", 1.5),
        ("pos_rate", -0.1),
        ("mask_per_example", -1),
        ("pos_per_example", 1.5),
        ("ngram_max", 0),
        ("ngram_per_example", True),
        ("pos_index_lines", 0),
        ("pos_index_words", 0),
        ("seed", "42"),
        ("use_kiwi", "yes"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        AugmentSettings(**{field: value})


def test_settings_enabled_and_as_dict() -> None:
    assert Augmenter(AugmentSettings(mask_per_example=1), []).describe()["pos_engine"] is None  # nothing replaced
    assert not AugmentSettings().enabled
    assert AugmentSettings(ngram_per_example=1).enabled
    settings = AugmentSettings(mask_per_example=2, seed=7)
    recorded = json.loads(json.dumps(settings.as_dict()))
    assert recorded["mask_per_example"] == 2 and recorded["seed"] == 7 and recorded["ngram_max"] == 5
    assert AugmentSettings(**recorded) == settings


def test_the_replacement_engine_is_named_only_when_words_are_replaced() -> None:
    assert replacement_engine(AugmentSettings(mask_per_example=1)) is None
    assert replacement_engine(AugmentSettings(pos_per_example=1, use_kiwi=False)) == FALLBACK_ENGINE
    if importlib.util.find_spec("kiwipiepy"):
        version = importlib.metadata.version("kiwipiepy")
        assert replacement_engine(AugmentSettings(pos_per_example=1)).startswith(f"kiwipiepy {version} ")


def test_another_command_can_take_the_settings_options_with_its_own_seed_option() -> None:
    # distill.cache_logits: "--seed" would read as the teachers', so the settings' seed is --augment_seed.
    files = {"teacher_name_or_path": ["t"], "data_files": ["d.tsv"], "output_dir": "o"}
    args = CacheLogitsArguments(**files, augment_seed=7, pos_per_example=2, use_kiwi=False)
    args.check_augmentation()
    assert args.augment_settings() == AugmentSettings(seed=7, pos_per_example=2, use_kiwi=False)
    with pytest.raises(ValueError, match=r"^--pos_rate must be a share in \[0, 1\], got 2.0"):
        CacheLogitsArguments(**files, pos_rate=2.0).check_augmentation()
    with pytest.raises(ValueError, match=r"^--augment_seed must be an integer, got 'x'"):
        CacheLogitsArguments(**files, augment_seed="x").check_augmentation()


# The command


def write_nsmc(path: Path, documents: list[str]) -> None:
    rows = ["id\tdocument\tlabel", *(f"{i}\t{text}\t{i % 2}" for i, text in enumerate(documents))]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


def test_command_writes_the_copies_of_an_nsmc_file(tmp_path: Path) -> None:
    data, output = tmp_path / "nsmc.txt.gz", tmp_path / "out" / "augmented.txt"
    write_nsmc(data, ["영화가 좋다", "배우가 정말 멋지다"])
    args = AugmentArguments(data_file=str(data), output_file=str(output), mask_rate=1, mask_per_example=2)
    args.pos_per_example, args.pos_rate, args.use_kiwi = 1, 1, False
    assert augment(args).copies == 4
    # Masked: every word; replaced (fallback, the corpus is the file): 영화가 <-> 배우가, 좋다 <-> 멋지다, 정말 alone.
    assert output.read_text(encoding="utf-8").splitlines() == [
        "[MASK] [MASK]",
        "배우가 멋지다",
        "[MASK] [MASK] [MASK]",
        "영화가 정말 좋다",
    ]


def test_command_reads_plain_text(tmp_path: Path) -> None:
    data, output = tmp_path / "corpus.txt", tmp_path / "augmented.txt"
    data.write_text("영화가 좋다\n\n정말\n", encoding="utf-8")
    report = augment(AugmentArguments(data_file=str(data), output_file=str(output), ngram_per_example=20))
    assert (report.copies, report.pos_engine) == (2, None)
    assert sorted(output.read_text(encoding="utf-8").splitlines()) == ["영화가", "좋다"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mask_rate", "1.5", "--mask_per_example", "1"], "--mask_rate must be a share in [0, 1]"),
        (["--ngram_max", "0", "--ngram_per_example", "1"], "--ngram_max must be an integer >= 1"),
        (["--pos_per_example", "two"], "argument --pos_per_example: invalid int value"),
        (["--mask_rat", "0.5"], "did you mean --mask_rate?"),
        ([], "nothing to write: give at least one of --mask_per_example"),
    ],
)
def test_command_refuses_bad_flags_naming_them(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--data_file", "d.txt", "--output_file", str(tmp_path / "o.txt"), *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_command_reports_bad_data_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "augmented.txt"
    missing = tmp_path / "missing.txt"
    with pytest.raises(SystemExit) as refused:  # at once, before anything is read
        main(["--data_file", str(missing), "--output_file", str(output), "--mask_per_example", "1"])
    assert refused.value.code == 2
    assert f"error: --data_file: no such file: {missing}" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tdocument\tlabel\n1\t영화가 좋다\t1\n2\t두 칸만\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"^error: .*bad\.tsv:3"):
        main(["--data_file", str(bad), "--output_file", str(output), "--mask_per_example", "1"])
    assert not output.exists()  # nothing half-written


def test_command_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m distill.augment")
    assert "--pos_per_example POS_PER_EXAMPLE" in out and "--no_use_kiwi" in out
