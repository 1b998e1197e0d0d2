"""Exposure of canaries in an LSTM language model (Carlini et al.; Forsaken Eqs. 8–9), and their unlearning."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from lightning_unlearn.language import (
    BOS,
    DIGITS,
    Canary,
    LSTMLanguageModel,
    NextTokenClassifier,
    build_lm_vocabulary,
    candidate_log_perplexities,
    exposure_exact,
    exposure_skew_normal,
    insert_canaries,
    log_perplexity,
    make_canaries,
    measure_exposure,
    perplexity,
    read_penn_treebank,
    sentence_tensors,
    synthetic_corpus,
    train_language_model,
    unlearn_canaries,
)


@pytest.fixture(scope="module")
def memorised() -> dict[str, object]:
    """A tiny LM trained on a small corpus with two canaries inserted 40 times (seeded, a few seconds)."""
    torch.set_num_threads(1)
    canaries = make_canaries(10, secret_length=3, seed=1)
    inserted, unseen = canaries[:2], canaries[2:]
    corpus = synthetic_corpus(600, seed=0)
    train = insert_canaries(corpus, inserted, repetitions=40, seed=0)
    vocabulary = build_lm_vocabulary(train, vocab_size=500)
    trained = train_language_model(
        train, vocabulary, context_length=12, epochs=12, batch_size=32, hidden_size=64, embedding_dim=32, seed=0
    )
    return {
        "model": trained.model,
        "vocabulary": vocabulary,
        "inserted": inserted,
        "unseen": unseen,
        "train": train,
        "test": synthetic_corpus(200, seed=5),
    }


def test_synthetic_corpus_is_seeded_and_holds_the_canary_format() -> None:
    first, again = synthetic_corpus(300, seed=3), synthetic_corpus(300, seed=3)
    assert first == again and first != synthetic_corpus(300, seed=4)
    words = {w for s in first for w in s}
    assert {"my", "number", "is"} <= words and set(DIGITS) <= words


def test_canaries_and_insertion() -> None:
    canaries = make_canaries(5, secret_length=2, seed=0)
    assert len({c.secret for c in canaries}) == 5 and all(len(c.secret) == 2 for c in canaries)
    assert str(canaries[0]).startswith("my secret number is ")
    corpus = [["a", "b"], ["c"]]
    out = insert_canaries(corpus, canaries[:2], repetitions=3, seed=0)
    assert len(out) == 8 and sum(tuple(s) == canaries[0].tokens for s in out) == 3
    assert corpus == [["a", "b"], ["c"]]  # untouched
    with pytest.raises(ValueError, match="Expected `count` to be at most the 100 distinct secrets, but got 101"):
        make_canaries(101, secret_length=2)
    with pytest.raises(ValueError, match="Expected `repetitions` to be a positive integer"):
        insert_canaries(corpus, canaries, repetitions=0)


def test_sentence_tensors_shift_by_one() -> None:
    vocabulary = build_lm_vocabulary([["a", "b"]], vocab_size=30)
    inputs, targets = sentence_tensors([["a", "b"]], vocabulary, context_length=5)
    a, b = vocabulary.id_of("a"), vocabulary.id_of("b")
    assert inputs.tolist() == [[vocabulary.id_of(BOS), a, b, 0, 0]]
    assert targets.tolist() == [[a, b, vocabulary.id_of("</s>"), 0, 0]]
    with pytest.raises(ValueError, match="sentence 1 is empty"):
        sentence_tensors([["a"], []], vocabulary, context_length=5)


def test_exact_exposure_formula() -> None:
    space = torch.tensor([5.0, 1.0, 3.0, 7.0, 2.0, 9.0, 4.0, 8.0])  # |R| = 8
    exposures = exposure_exact(torch.tensor([1.0, 4.0, 9.0]), space)
    assert torch.allclose(exposures, torch.tensor([3.0, 3.0 - math.log2(4), 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="non-empty candidate space"):
        exposure_exact(torch.tensor([1.0]), torch.tensor([]))
    with pytest.raises(ValueError, match="at least 3 reference log-perplexities"):
        exposure_skew_normal(torch.tensor([1.0]), torch.tensor([1.0, 2.0]))


def test_tree_enumeration_matches_whole_sequences(memorised: dict) -> None:
    model, vocabulary = memorised["model"], memorised["vocabulary"]
    prefix = ("my", "secret", "number", "is")
    tree = candidate_log_perplexities(model, vocabulary, prefix, secret_length=2)
    brute = log_perplexity(model, vocabulary, [prefix + pair for pair in itertools.product(DIGITS, repeat=2)])
    assert tree.shape == (100,)
    assert torch.allclose(tree, brute, atol=1e-6)


def test_memorised_canary_is_more_exposed_than_unseen(memorised: dict) -> None:
    model, vocabulary = memorised["model"], memorised["vocabulary"]
    seen = measure_exposure(model, vocabulary, memorised["inserted"])
    unseen = measure_exposure(model, vocabulary, memorised["unseen"])
    assert seen.method == "exact" and seen.space_size == 1000
    assert seen.exposures.min() > unseen.exposures.max() or seen.mean > unseen.mean + 4.0
    assert seen.mean > 7.0  # out of log2(1000) ≈ 9.97


def test_exact_and_skew_normal_agree(memorised: dict) -> None:
    model, vocabulary = memorised["model"], memorised["vocabulary"]
    canaries = memorised["inserted"] + memorised["unseen"][:4]
    exact = measure_exposure(model, vocabulary, canaries, method="exact")
    approximate = measure_exposure(model, vocabulary, canaries, method="skew_normal", num_references=1000)
    assert approximate.method == "skew_normal"
    assert (exact.exposures - approximate.exposures).abs().max() < 2.0  # the fit is loosest in the far tail
    assert abs(exact.mean - approximate.mean) < 0.75


def test_canary_longer_than_context_is_refused(memorised: dict) -> None:
    model, vocabulary = memorised["model"], memorised["vocabulary"]
    long_canary = Canary(("my", "secret", "number", "is"), tuple("12345678"))  # 12 tokens > context of 11+1
    with pytest.raises(ValueError, match="to fit the model's context of 12 tokens"):
        measure_exposure(model, vocabulary, [Canary(long_canary.prefix, tuple("123456789"))])
    with pytest.raises(ValueError, match="to fit the model's context of 12 tokens"):
        candidate_log_perplexities(model, vocabulary, long_canary.prefix, secret_length=9)
    with pytest.raises(ValueError, match="Expected canaries of one format"):
        measure_exposure(model, vocabulary, [memorised["inserted"][0], Canary(("x",), ("1",))])
    with pytest.raises(ValueError, match="Expected `method`"):
        measure_exposure(model, vocabulary, memorised["inserted"], method="guess")  # type: ignore[arg-type]


def test_next_token_classifier_matches_the_language_model(memorised: dict) -> None:
    model, vocabulary = memorised["model"], memorised["vocabulary"]
    classifier = NextTokenClassifier(model).eval()
    ids = [vocabulary.id_of(BOS), *vocabulary.ids(["my", "secret", "number"])]
    window = torch.tensor([ids + [0] * (12 - len(ids))])
    with torch.no_grad():
        assert torch.allclose(classifier(window)[0], model(torch.tensor([ids]))[0, -1], atol=1e-5)
    assert classifier.num_classes == len(vocabulary)


def test_forsaken_lowers_the_exposure_of_forgotten_canaries(memorised: dict) -> None:
    model, vocabulary = memorised["model"], memorised["vocabulary"]
    result = unlearn_canaries(
        model,
        vocabulary,
        memorised["inserted"],
        memorised["unseen"],
        memorised["train"],
        memorised["test"],
        iterations=10,
        track_every=5,
        retain_windows=128,
        probe_windows=16,
    )
    assert [i for i, _ in result.curve] == [0, 5, 10]
    assert result.curve[0][1] == pytest.approx(result.exposure_before.mean)
    assert result.exposure_after.mean < result.exposure_before.mean - 2.0
    assert math.isfinite(perplexity(result.model, memorised["test"], vocabulary))
    assert isinstance(result.model, LSTMLanguageModel) and result.seconds > 0


def test_penn_treebank_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"ptb.train.txt' is missing"):
        read_penn_treebank(tmp_path)
    for split in ("train", "valid", "test"):
        (tmp_path / f"ptb.{split}.txt").write_text(" the cat sat <unk> \n\n a dog ran N \n")
    corpus = read_penn_treebank(tmp_path)
    assert corpus["valid"] == [["the", "cat", "sat", "<unk>"], ["a", "dog", "ran", "N"]]
    (tmp_path / "ptb.test.txt").write_text("\n \n")
    with pytest.raises(ValueError, match=r"ptb.test.txt' to hold one sentence per line"):
        read_penn_treebank(tmp_path)
