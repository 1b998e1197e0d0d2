"""Text sources, vocabularies and the I.C. / Reuters 35-11 / News 15-5 datamodules, on small files in each format."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_unlearn.datamodules import (
    CustomerReviewSource,
    IMDBCustomerReviewDataModule,
    IMDBSource,
    NewsgroupsDataModule,
    NewsgroupsSource,
    ReutersDataModule,
    ReutersSource,
    Vocabulary,
    tokenize,
)
from lightning_unlearn.text_models import NewsCNN, ReutersMLP, TextCNN

WORDS = [
    "good",
    "bad",
    "film",
    "plot",
    "actor",
    "great",
    "awful",
    "story",
    "scene",
    "music",
    "fine",
    "boring",
    "funny",
    "sad",
    "long",
]


def _sentence(rng: np.random.Generator, length: int = 8) -> str:
    return " ".join(rng.choice(WORDS, size=length))


# ------------------------------------------------------------------ writers of each format
def write_imdb(root: Path, per_folder: int = 10, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for subset in ("train", "test"):
        for polarity in ("neg", "pos"):
            folder = root / "aclImdb" / subset / polarity
            folder.mkdir(parents=True)
            for i in range(per_folder):
                (folder / f"{i}_{i % 10 + 1}.txt").write_text(_sentence(rng) + "<br /><br />The End.")
    return root


def write_customer_reviews(root: Path, per_file: int = 20, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for suffix in ("pos", "neg"):
        lines = [_sentence(rng, 5) for _ in range(per_file)]
        (root / f"custrev.{suffix}").write_text("\n".join(lines) + "\n\n")
    return root


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def write_reuters(root: Path, per_topic: int = 4, seed: int = 2) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    vocabulary = [f"w{i}" for i in range(60)]
    word_index = {word: rank for rank, word in enumerate(vocabulary, start=1)}
    stories = np.empty(46 * per_topic, dtype=object)
    topics = np.repeat(np.arange(46), per_topic)
    for i, topic in enumerate(topics):
        stories[i] = [int(topic) + 1, *map(int, rng.integers(1, 61, size=6))]
    with zipfile.ZipFile(root / "reuters.npz", "w") as archive:
        archive.writestr("x.npy", _npy_bytes(stories))
        archive.writestr("y.npy", _npy_bytes(topics.astype(np.int64)))
    (root / "reuters_word_index.json").write_text(json.dumps(word_index))
    return root


GROUPS = [f"group{i:02d}.topic" for i in range(20)]


def _post(group: str, rng: np.random.Generator) -> str:
    return f"From: someone@example.com\nNewsgroups: {group}\nSubject: hi\n\n{group.split('.')[0]} {_sentence(rng, 6)}\n"


def write_newsgroups(root: Path, train: int = 4, test: int = 2, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    for subset, count in (("train", train), ("test", test)):
        for group in GROUPS:
            folder = root / f"20news-bydate-{subset}" / group
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / str(1000 + i)).write_text(_post(group, rng), encoding="latin-1")
    return root


# ------------------------------------------------------------------ tokeniser and vocabulary
def test_tokenize_lowercases_and_drops_markup() -> None:
    assert tokenize("Don't stop!<br />It's GREAT, 10/10.") == ["don't", "stop", "it's", "great", "10", "10"]
    assert tokenize("   ...  ") == []
    with pytest.raises(TypeError, match="Expected `text` to be a str"):
        tokenize(3)  # type: ignore[arg-type]


def test_vocabulary_keeps_most_frequent_with_alphabetical_ties() -> None:
    vocabulary = Vocabulary.build([["b", "a", "c"], ["a", "b", "d"], ["a"]], vocab_size=5)
    assert vocabulary.tokens == ("<pad>", "<unk>", "a", "b", "c")  # a:3, b:2, then c before d (tie)
    assert len(vocabulary) == 5
    assert vocabulary.encode(["b", "zzz", "a"], seq_len=5) == [3, 1, 2, 0, 0]  # padded at the end
    assert vocabulary.encode(["a", "b", "c", "a"], seq_len=2) == [2, 3]  # truncated to the first tokens
    assert vocabulary.decode([3, 1, 2, 0, 0]) == ["b", "<unk>", "a"]
    batch = vocabulary.encode_batch([["a"], ["c", "b"]], seq_len=3)
    assert batch.dtype == torch.int64 and batch.tolist() == [[2, 0, 0], [4, 3, 0]]
    bags = vocabulary.bag_of_words([["a", "a", "zzz"], ["c"]])
    assert bags.dtype == torch.float32
    assert bags.tolist() == [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1]]
    assert vocabulary.bag_of_words([["a", "a"]], binary=False).tolist() == [[0, 0, 2, 0, 0]]
    assert Vocabulary.from_json(vocabulary.to_json()) == vocabulary
    reserved = Vocabulary.build([["x"]], vocab_size=4, reserved=["7"])
    assert reserved.tokens == ("<pad>", "<unk>", "7", "x")


@pytest.mark.parametrize("size", [0, 2])
def test_vocabulary_size_too_small_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match=f"Expected `vocab_size` to be at least 3 .* but got {size}"):
        Vocabulary.build([["a"]], vocab_size=size)


def test_vocabulary_bad_documents_are_refused() -> None:
    vocabulary = Vocabulary.build([["a", "b"]], vocab_size=4)
    with pytest.raises(ValueError, match="Expected document 1 to hold at least one token, but it is empty"):
        vocabulary.encode_batch([["a"], []], seq_len=3)
    with pytest.raises(ValueError, match="all its 2 tokens are unknown"):
        vocabulary.encode(["x", "y"], seq_len=3)
    with pytest.raises(ValueError, match="Expected `seq_len` to be a positive integer"):
        vocabulary.encode(["a"], seq_len=0)
    with pytest.raises(ValueError, match="every document is empty"):
        Vocabulary.build([[], []], vocab_size=10)
    with pytest.raises(ValueError, match="repeats"):
        Vocabulary(["a", "a"])


# ------------------------------------------------------------------ IMDB and Customer Review
def test_imdb_reads_the_aclimdb_layout(tmp_path: Path) -> None:
    write_imdb(tmp_path)
    source = IMDBSource(tmp_path, seq_len=12, vocab_size=50)
    data = source.load()
    assert data.inputs.shape == (40, 12) and data.inputs.dtype == torch.int64
    assert data.targets.tolist() == [0] * 10 + [1] * 10 + [0] * 10 + [1] * 10  # train neg, pos, test neg, pos
    first = (tmp_path / "aclImdb" / "train" / "neg" / "0_1.txt").read_text()
    assert data.inputs[0].tolist() == source.vocabulary.encode(tokenize(first), 12)
    assert source.load() is data  # cached
    assert IMDBSource(tmp_path / "aclImdb", seq_len=12, subsets=("test",)).load().inputs.shape == (20, 12)


def test_imdb_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Expected `root` to be a folder holding aclImdb"):
        IMDBSource(tmp_path / "nowhere").load()
    write_imdb(tmp_path)
    (tmp_path / "aclImdb" / "test" / "pos" / "99_1.txt").write_text("  <br />  ...")
    with pytest.raises(ValueError, match=r"Expected every IMDB document to hold at least one word, but .*99_1.txt"):
        IMDBSource(tmp_path).load()
    with pytest.raises(ValueError, match="Expected `subsets`"):
        IMDBSource(tmp_path, subsets=("valid",))
    with pytest.raises(ValueError, match="Expected `vocab_size` to be at least 3"):
        IMDBSource(tmp_path, vocab_size=0)
    with pytest.raises(ValueError, match="Expected `encoding`"):
        IMDBSource(tmp_path, encoding="onehot")  # type: ignore[arg-type]


def test_customer_review_shares_the_imdb_vocabulary(tmp_path: Path) -> None:
    imdb = IMDBSource(write_imdb(tmp_path / "imdb"), seq_len=12, vocab_size=50)
    reviews = CustomerReviewSource(write_customer_reviews(tmp_path / "cr"), seq_len=12, vocabulary=imdb)
    data = reviews.load()
    assert reviews.vocabulary is imdb.vocabulary
    assert data.inputs.shape == (40, 12) and data.inputs.dtype == torch.int64
    assert data.targets.tolist() == [0] * 20 + [1] * 20  # custrev.neg first: neg = 0
    line = (tmp_path / "cr" / "custrev.neg").read_text().splitlines()[0]
    assert data.inputs[0].tolist() == imdb.vocabulary.encode(tokenize(line), 12)


def test_customer_review_errors(tmp_path: Path) -> None:
    imdb = IMDBSource(write_imdb(tmp_path / "imdb"), seq_len=12, vocab_size=50)
    with pytest.raises(FileNotFoundError, match=r"custrev.neg' is missing"):
        CustomerReviewSource(tmp_path).load()
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "custrev.pos").write_text("[t]\npicture[+2]##the pictures are great\n")
    (raw / "custrev.neg").write_text("bad\n")
    with pytest.raises(ValueError, match="raw annotated Hu & Liu format"):
        CustomerReviewSource(raw).load()
    odd = write_customer_reviews(tmp_path / "odd")
    with (odd / "custrev.neg").open("a") as handle:
        handle.write("qwerty zxcvb\n")
    with pytest.raises(ValueError, match=r"all tokens of line 22 of .* are unknown"):
        CustomerReviewSource(odd, seq_len=12, vocabulary=imdb).load()
    dropping = CustomerReviewSource(odd, seq_len=12, vocabulary=imdb, unknown_only="drop")
    assert len(dropping.load()) == 40 and dropping.dropped == 1


@pytest.mark.parametrize("kind", ["ood_foreign", "ood_mislabeled"])
def test_imdb_customer_review_datamodule(tmp_path: Path, kind: str) -> None:
    dm = IMDBCustomerReviewDataModule(
        write_imdb(tmp_path / "imdb"),
        write_customer_reviews(tmp_path / "cr"),
        kind=kind,  # type: ignore[arg-type]
        seq_len=12,
        vocab_size=50,
    )
    dm.setup()
    assert dm.input_shape == (12,) and dm.num_classes == 2 and dm.dataset_name == "imdb+custrev"
    forget = dm.splits["forget"]
    assert len(forget) == 8 and forget.indices.min() >= 40  # CR samples come after IMDB's 40
    batch = next(iter(dm.dataloader("forget")))
    assert batch.inputs.dtype == torch.int64 and batch.inputs.shape[1] == 12
    if kind == "ood_mislabeled":  # the opposite sentiment of each CR sentence
        true = dm._ood_data.targets[torch.as_tensor(forget.indices - 40)].numpy()  # type: ignore[union-attr]
        assert np.all(forget.labels == 1 - true)
    with pytest.raises(ValueError, match="Expected `kind` to be 'ood_foreign' or 'ood_mislabeled'"):
        IMDBCustomerReviewDataModule(tmp_path, tmp_path, kind="id")  # type: ignore[arg-type]


# ------------------------------------------------------------------ Reuters
def test_reuters_reads_the_keras_files(tmp_path: Path) -> None:
    source = ReutersSource(write_reuters(tmp_path), vocab_size=40)
    data = source.load()
    assert data.inputs.shape == (184, 40) and data.inputs.dtype == torch.float32
    assert data.num_classes == 46 and data.targets[:4].tolist() == [0, 0, 0, 0]
    _corpus, tokens = source._tokenised()
    assert tokens[0][0] == "w0"  # rank 1 decodes to the first word of the index
    assert torch.equal(data.inputs[0], source.vocabulary.bag_of_words([tokens[0]])[0])
    sequences = ReutersSource(tmp_path, vocab_size=40, seq_len=5, encoding="sequence").load()
    assert sequences.inputs.shape == (184, 5) and sequences.inputs.dtype == torch.int64


def test_reuters_wrong_format(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"reuters.npz' is missing"):
        ReutersSource(tmp_path).load()
    (tmp_path / "reuters.npz").write_text("not a zip")
    (tmp_path / "reuters_word_index.json").write_text("{}")
    with pytest.raises(ValueError, match=r"to be a numpy .npz archive, but it is not a zip file"):
        ReutersSource(tmp_path).load()
    with zipfile.ZipFile(tmp_path / "reuters.npz", "w") as archive:
        archive.writestr("x.npy", _npy_bytes(np.zeros(3)))
    with pytest.raises(ValueError, match="to hold the arrays 'x' and 'y'"):
        ReutersSource(tmp_path).load()
    (tmp_path / "reuters_word_index.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="to map words to integer ranks"):
        ReutersSource(tmp_path).load()


def test_reuters_35_11_datamodule_trains_the_mlp(tmp_path: Path) -> None:
    from lightning_unlearn import TrainingRecipe, train_classifier

    dm = ReutersDataModule(write_reuters(tmp_path), vocab_size=40)
    dm.setup()
    assert dm.num_classes == 35 and dm.input_shape == (40,)
    forget_topics = dm._data.targets[torch.as_tensor(dm.splits["forget"].indices)]  # type: ignore[union-attr]
    assert bool((forget_topics >= 35).all())
    recipe = TrainingRecipe(backbone=ReutersMLP(in_features=40, num_classes=35), max_epochs=1)
    trained = train_classifier(recipe, dm, enable_progress_bar=False)
    assert trained.module.backbone(torch.zeros(2, 40)).shape == (2, 35)


# ------------------------------------------------------------------ 20 Newsgroups
def test_newsgroups_reads_folders_and_tarball_alike(tmp_path: Path) -> None:
    folders = write_newsgroups(tmp_path / "folders")
    from_folders = NewsgroupsSource(folders, seq_len=10, vocab_size=60)
    data = from_folders.load()
    assert data.inputs.shape == (120, 10) and data.num_classes == 20
    assert data.classes == tuple(GROUPS)
    _corpus, tokens = from_folders._tokenised()
    assert "newsgroups" not in tokens[0] and tokens[0][0] == "group00"  # headers removed
    packed = tmp_path / "packed"
    packed.mkdir()
    with tarfile.open(packed / "20news-bydate.tar.gz", "w:gz") as archive:
        for subset in ("train", "test"):
            archive.add(folders / f"20news-bydate-{subset}", arcname=f"20news-bydate-{subset}")
    from_tar = NewsgroupsSource(packed, seq_len=10, vocab_size=60).load()
    assert torch.equal(from_tar.inputs, data.inputs) and torch.equal(from_tar.targets, data.targets)
    with_headers = NewsgroupsSource(folders, seq_len=10, vocab_size=60, remove_headers=False)
    assert with_headers._tokenised()[1][0][0] == "from"


def test_newsgroups_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Expected `root` to be a folder holding 20news-bydate"):
        NewsgroupsSource(tmp_path / "nowhere").load()
    with pytest.raises(FileNotFoundError, match=r"20news-bydate.tar.gz' exists"):
        NewsgroupsSource(tmp_path).load()
    root = write_newsgroups(tmp_path / "mismatch")
    extra = root / "20news-bydate-test" / "zz.extra"
    extra.mkdir()
    (extra / "1").write_text("hello there")
    with pytest.raises(
        ValueError, match=r"to hold the groups of 20news-bydate-train, but they differ by \['zz.extra'\]"
    ):
        NewsgroupsSource(root).load()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "20news-bydate.tar.gz").write_text("not a tarball")
    with pytest.raises(ValueError, match="to be a tar archive"):
        NewsgroupsSource(tmp_path / "bad").load()


def test_newsgroups_15_5_datamodule(tmp_path: Path) -> None:
    dm = NewsgroupsDataModule(write_newsgroups(tmp_path), seq_len=160, vocab_size=60)
    dm.setup()
    assert dm.num_classes == 15 and dm.input_shape == (160,)
    model = NewsCNN(vocab_size=len(dm.vocabulary), num_classes=15)
    batch = next(iter(dm.dataloader("forget")))
    assert model(batch.inputs).shape == (batch.inputs.shape[0], 15)


# ------------------------------------------------------------------ models
def test_text_models_shapes_and_errors() -> None:
    assert TextCNN(vocab_size=30)(torch.randint(0, 30, (3, 20))).shape == (3, 2)
    assert TextCNN().num_classes == 2 and TextCNN.default_loss == "cross_entropy"
    with pytest.raises(ValueError, match="at least 5 tokens"):
        TextCNN(vocab_size=30)(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids of shape"):
        TextCNN(vocab_size=30)(torch.zeros(1, 10))
    mlp = ReutersMLP()
    assert [m.out_features for m in mlp.modules() if isinstance(m, torch.nn.Linear)] == [512, 256, 35]
    with pytest.raises(ValueError, match=r"Expected ReutersMLP inputs of shape \(batch, 10000\)"):
        mlp(torch.zeros(2, 99))
    news = NewsCNN(vocab_size=30)
    assert news.min_length == 149
    with pytest.raises(ValueError, match="at least 149 tokens"):
        news(torch.zeros(1, 148, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected `dropout` to be in \[0, 1\)"):
        ReutersMLP(dropout=1.5)
