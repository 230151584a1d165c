"""Tests of word embeddings: the word2vec and GloVe models against their formulas, the corpus pipeline (vocabulary,
subsampling, windows, noise distribution, co-occurrences) against gensim and hand counts, the benchmark evaluation
against gensim's, the vector files, and short trainings that must pull related words together."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors, Word2Vec

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.sequence import create_model, list_models
from paperzoo.sequence.data import TextCorpusDataModule, read_text_corpus
from paperzoo.sequence.data.text_corpus import (
    build_vocabulary,
    cbow_windows,
    cooccurrence_matrix,
    encode_corpus,
    keep_probabilities,
    noise_distribution,
    skipgram_pairs,
    subsample,
)
from paperzoo.sequence.embedding_eval import (
    AnalogyQuestions,
    analogy_accuracy,
    read_analogies,
    read_word_pairs,
    word_similarity,
    write_word2vec_text,
)
from paperzoo.sequence.models import CBOW, GloVe, SkipGramNS
from paperzoo.sequence.modules import WordEmbeddingModule
from paperzoo.sequence.testing import (
    TOY_TOPICS,
    toy_word_pairs,
    write_analogies,
    write_embedding_benchmarks,
    write_text_corpus,
    write_word_pairs,
)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A topical corpus of 200 lines and toy benchmarks on its words, in the real formats."""
    folder = tmp_path_factory.mktemp("embeddings")
    return {"corpus": write_text_corpus(folder / "corpus.cor"), **write_embedding_benchmarks(folder / "benchmarks")}


def _data(toy, **kwargs) -> TextCorpusDataModule:
    options = {
        "path": str(toy["corpus"]),
        "wordsim353_path": str(toy["wordsim353"]),
        "simlex999_path": str(toy["simlex999"]),
        "analogy_path": str(toy["analogy"]),
        "min_count": 1,
        "batch_size": 256,
        **kwargs,
    }
    data = TextCorpusDataModule(**options)
    data.setup()
    return data


def _dense_grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.to_dense() for name, p in module.named_parameters()}


# ---------------------------------------------------------------- models against their formulas


@pytest.mark.parametrize("name", [*list_models("word2vec_*"), "glove"])
def test_registered_models_build_with_the_reference_initialisation(name):
    model = create_model(name, vocab_size=50, embedding_dim=8)
    assert model.vocab_size == 50 and model.word_vectors().shape == (50, 8)
    assert all(p.abs().max() <= 0.5 / 8 for p in model.parameters())
    if name.startswith("word2vec"):  # word2vec starts its output vectors at zero
        assert model.output_embeddings.weight.abs().sum() == 0
    assert type(model).__name__ in repr(model)


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + torch.exp(-x))


def test_skipgram_loss_and_gradients_match_the_formula():
    torch.manual_seed(0)
    model = SkipGramNS(9, 4).double()
    torch.nn.init.normal_(model.output_embeddings.weight)
    centres, contexts = torch.tensor([1, 2, 1]), torch.tensor([3, 4, 5])
    negatives = torch.tensor([[6, 7], [4, 8], [0, 0]])  # row 1 draws its own context word: word2vec skips it
    losses = model(centres, contexts, negatives)
    losses.sum().backward()
    v, u = model.input_embeddings.weight.detach(), model.output_embeddings.weight.detach()
    grad_v, grad_u = torch.zeros_like(v), torch.zeros_like(u)
    for b in range(3):
        c, o = centres[b], contexts[b]
        expected = -torch.log(_sigmoid(u[o] @ v[c]))
        grad_v[c] += (_sigmoid(u[o] @ v[c]) - 1) * u[o]
        grad_u[o] += (_sigmoid(u[o] @ v[c]) - 1) * v[c]
        for k in negatives[b]:
            if k == o:
                continue
            expected = expected - torch.log(_sigmoid(-u[k] @ v[c]))
            grad_v[c] += _sigmoid(u[k] @ v[c]) * u[k]
            grad_u[k] += _sigmoid(u[k] @ v[c]) * v[c]
        torch.testing.assert_close(losses[b], expected)
    grads = _dense_grads(model)
    torch.testing.assert_close(grads["input_embeddings.weight"], grad_v)
    torch.testing.assert_close(grads["output_embeddings.weight"], grad_u)


@pytest.mark.parametrize("full_context_gradient", [True, False])
def test_cbow_loss_and_gradients_match_the_formula(full_context_gradient):
    torch.manual_seed(1)
    model = CBOW(9, 4, full_context_gradient=full_context_gradient).double()
    torch.nn.init.normal_(model.output_embeddings.weight)
    contexts = torch.tensor([[1, 2, 2, 0], [3, 0, 0, 0]])
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    targets, negatives = torch.tensor([5, 6]), torch.tensor([[7, 8], [6, 1]])
    losses = model(contexts, mask, targets, negatives)
    losses.sum().backward()
    v, u = model.input_embeddings.weight.detach(), model.output_embeddings.weight.detach()
    grad_v, grad_u = torch.zeros_like(v), torch.zeros_like(u)
    for b in range(2):
        words = contexts[b][mask[b]]
        h = v[words].mean(0)
        o = targets[b]
        expected = -torch.log(_sigmoid(u[o] @ h))
        grad_h = (_sigmoid(u[o] @ h) - 1) * u[o]
        grad_u[o] += (_sigmoid(u[o] @ h) - 1) * h
        for k in negatives[b]:
            if k != o:
                expected = expected - torch.log(_sigmoid(-u[k] @ h))
                grad_h = grad_h + _sigmoid(u[k] @ h) * u[k]
                grad_u[k] += _sigmoid(u[k] @ h) * h
        torch.testing.assert_close(losses[b], expected)
        for w in words:  # word2vec gives each context word all of grad_h; the exact gradient of the mean 1/|C|
            grad_v[w] += grad_h if full_context_gradient else grad_h / len(words)
    grads = _dense_grads(model)
    torch.testing.assert_close(grads["input_embeddings.weight"], grad_v)
    torch.testing.assert_close(grads["output_embeddings.weight"], grad_u)


def test_glove_loss_and_gradients_match_the_formula():
    torch.manual_seed(2)
    model = GloVe(6, 3).double()
    for p in model.parameters():
        torch.nn.init.normal_(p)
    rows, cols = torch.tensor([0, 1, 0]), torch.tensor([2, 3, 4])
    counts = torch.tensor([3.0, 250.0, 0.5], dtype=torch.float64)  # below and above x_max = 100
    losses = model(rows, cols, counts)
    losses.sum().backward()
    w, wc = model.word_embeddings.weight.detach(), model.context_embeddings.weight.detach()
    b, bc = model.word_biases.weight.detach()[:, 0], model.context_biases.weight.detach()[:, 0]
    grads = {k: torch.zeros_like(v) for k, v in _dense_grads(model).items()}
    for n in range(3):
        i, j, x = rows[n], cols[n], counts[n]
        f = min(1.0, (x.item() / 100) ** 0.75)
        diff = w[i] @ wc[j] + b[i] + bc[j] - torch.log(x)
        torch.testing.assert_close(losses[n], 0.5 * f * diff**2)
        grads["word_embeddings.weight"][i] += f * diff * wc[j]
        grads["context_embeddings.weight"][j] += f * diff * w[i]
        grads["word_biases.weight"][i] += f * diff
        grads["context_biases.weight"][j] += f * diff
    for name, grad in _dense_grads(model).items():
        torch.testing.assert_close(grad, grads[name], msg=name)
    torch.testing.assert_close(model.word_vectors(), w + wc)


# ---------------------------------------------------------------- the corpus pipeline


def test_corpus_reader_splits_long_lines_and_reports_bad_files(tmp_path):
    path = tmp_path / "c.cor"
    path.write_text("The cat sat\n\n" + " ".join(f"w{i}" for i in range(7)) + "\n", encoding="utf-8")
    assert read_text_corpus(path, max_sentence_length=3) == [
        ["the", "cat", "sat"],
        ["w0", "w1", "w2"],
        ["w3", "w4", "w5"],
        ["w6"],
    ]
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        read_text_corpus(tmp_path / "missing.cor")
    (tmp_path / "empty.cor").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match="holds no words"):
        read_text_corpus(tmp_path / "empty.cor")
    with pytest.raises(ConfigError, match="min_count"):
        TextCorpusDataModule(path=str(path), min_count=50).setup()


def test_vocabulary_and_subsampling_match_gensims(toy):
    sentences = read_text_corpus(toy["corpus"])
    words, counts = build_vocabulary(sentences, min_count=5)
    reference = Word2Vec(min_count=5, sample=1e-3, workers=1)
    reference.build_vocab(sentences)
    assert words == sorted(reference.wv.index_to_key, key=lambda w: (-reference.wv.get_vecattr(w, "count"), w))
    assert counts.tolist() == [reference.wv.get_vecattr(w, "count") for w in words]
    keep = keep_probabilities(counts, 1e-3)
    gensim_keep = np.array([reference.wv.get_vecattr(w, "sample_int") / (2**32 - 1) for w in words])
    np.testing.assert_allclose(keep, gensim_keep, atol=1e-6)
    assert keep.min() < 0.5 and np.all(keep_probabilities(counts, 0.0) == 1.0)
    # and subsampling keeps each word's tokens at that rate
    ids, _ = encode_corpus(sentences, words)
    kept = np.stack([subsample(ids, keep, np.random.default_rng(s)) for s in range(20)])
    rate = np.array([kept[:, ids == w].mean() for w in range(len(words))])
    np.testing.assert_allclose(rate, keep, atol=0.03)


def test_negatives_follow_the_unigram_distribution_to_the_three_quarters(toy):
    data = _data(toy, negative=5)
    expected = data.counts**0.75 / (data.counts**0.75).sum()
    np.testing.assert_allclose(noise_distribution(data.counts, 0.75), expected)
    draws = data.train_set.draw_negatives((200_000,), np.random.default_rng(0))
    frequency = np.bincount(draws, minlength=len(data.words)) / len(draws)
    np.testing.assert_allclose(frequency, expected, atol=0.004)
    centres, contexts, negatives = data.train_set[(0, 0)]
    assert negatives.shape == (256, 5) and negatives.dtype == torch.int64
    assert int(negatives.max()) < len(data.words) and centres.shape == contexts.shape == (256,)


def test_skipgram_pairs_stay_in_the_sentence_and_windows_shrink_uniformly():
    ids = np.arange(12)
    sentence_ids = np.array([0] * 7 + [1] * 5)
    centres, contexts = skipgram_pairs(ids, sentence_ids, window=2, rng=None)
    assert np.all(np.abs(centres - contexts) <= 2) and np.all(sentence_ids[centres] == sentence_ids[contexts])
    # a full window of 2 gives each of n words min(2, i) + min(2, n - 1 - i) neighbours
    assert len(centres) == sum(min(2, i) + min(2, n - 1 - i) for n in (7, 5) for i in range(n))
    # word2vec's dynamic window uses a neighbour at distance d with probability (window - d + 1) / window
    n = 20_000
    centres, contexts = skipgram_pairs(np.arange(n), np.zeros(n, dtype=np.int64), 5, np.random.default_rng(0))
    share = np.bincount(np.abs(centres - contexts), minlength=6)[1:] / len(centres)
    np.testing.assert_allclose(share, np.array([5, 4, 3, 2, 1]) / 15, atol=0.01)


def test_cbow_windows_hold_the_real_neighbours_only():
    ids, sentence_ids = np.array([10, 11, 12, 13]), np.array([0, 0, 0, 1])
    contexts, mask, targets = cbow_windows(ids, sentence_ids, window=2, rng=None)
    assert targets.tolist() == [10, 11, 12]  # word 13 is alone on its line
    assert [row[m].tolist() for row, m in zip(contexts, mask, strict=True)] == [[11, 12], [10, 12], [10, 11]]


def test_cooccurrences_are_counted_by_hand(tmp_path):
    path = tmp_path / "c.cor"
    path.write_text("a b c\na b\n", encoding="utf-8")
    data = TextCorpusDataModule(path=str(path), objective="glove", min_count=1, window=2, batch_size=6)
    data.setup("fit")
    assert data.words == ["a", "b", "c"] and data.counts.tolist() == [2, 2, 1]
    # a-b at distance 1 on both lines, b-c at 1, a-c at 2 (weight 1/2); nothing across the line break
    expected = np.array([[0, 2, 0.5], [2, 0, 1], [0.5, 1, 0]])
    ids, sentence_ids = encode_corpus(data.sentences, data.words)
    np.testing.assert_allclose(cooccurrence_matrix(ids, sentence_ids, 2, 3).toarray(), expected)
    rows, cols, counts = data.train_set[(0, 0)]  # one batch holds the six entries, shuffled
    assert len(data.train_set) == 1
    assert sorted(zip(rows.tolist(), cols.tolist(), counts.tolist(), strict=True)) == [
        (i, j, expected[i, j]) for i in range(3) for j in range(3) if expected[i, j]
    ]


def test_batches_are_a_function_of_seed_and_epoch(toy):
    first, second = _data(toy), _data(toy)
    for a, b in zip(first.train_set[(3, 1)], second.train_set[(3, 1)], strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.train_set[(3, 1)][0], first.train_set[(4, 1)][0])
    assert not torch.equal(first.train_set[(3, 1)][0], _data(toy, seed=1).train_set[(3, 1)][0])
    loader = first.train_dataloader()
    assert len(loader) == first.train_set.num_batches
    loader.sampler.set_epoch(2)
    assert torch.equal(next(iter(loader))[2], first.train_set[(2, 0)][2])


# ---------------------------------------------------------------- benchmarks and their evaluation


def test_benchmark_readers_read_gensims_formats(tmp_path, toy):
    pairs = read_word_pairs(toy["wordsim353"])
    assert pairs == [(a, b, pytest.approx(s, abs=0.005)) for a, b, s in toy_word_pairs()]
    assert toy["wordsim353"].read_text().startswith("# The WordSimilarity-353")
    questions = read_analogies(toy["analogy"])
    assert questions.questions[1] == ("Athens", "Greece", "Baghdad", "Iraq")
    assert questions.sections == ["capital-common-countries"] * 2 + ["gram1-adjective-to-adverb"] * 2
    (tmp_path / "bad.tsv").write_text("# header\ncat\tdog\n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match="line 2"):
        read_word_pairs(tmp_path / "bad.tsv")
    (tmp_path / "bad.txt").write_text("cat dog red green\n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match="section"):
        read_analogies(tmp_path / "bad.txt")
    with pytest.raises(DatasetNotFoundError):
        read_word_pairs(tmp_path / "missing.tsv")


def _toy_vectors() -> tuple[list[str], np.ndarray]:
    """king - man + woman = queen exactly; paris - france + italy lands on rome only if rome beats the distractor."""
    words = ["man", "woman", "king", "queen", "france", "paris", "italy", "rome", "berlin", "tiny"]
    vectors = np.array(
        [
            [1, 0, 0, 0, 0.1],
            [0, 1, 0, 0, 0.1],
            [1, 0, 1, 0, 0.1],
            [0, 1, 1, 0, 0.1],
            [0, 0, 0, 1, 1],
            [0, 0, 1, 1, 1],
            [0.2, 0.2, 0, 1, 0.4],
            [-1, -1, 0.4, 0, 0.4],  # far from paris - france + italy
            [0.2, 0.2, 1, 1, 0.4],  # the distractor the question lands on
            [0.3, -0.2, 0.1, 0, 0],
        ],
        dtype=np.float32,
    )
    return words, vectors


def test_analogy_accuracy_on_known_answers_matches_gensim(tmp_path):
    words, vectors = _toy_vectors()
    sections = {
        "family": [("man", "woman", "king", "queen"), ("woman", "man", "queen", "king")],
        "capital-world": [("france", "paris", "italy", "rome"), ("france", "paris", "spain", "madrid")],
        "gram9-plural-verbs": [("Man", "King", "Woman", "Queen")],
    }
    path = write_analogies(tmp_path / "questions-words.txt", sections)
    result = analogy_accuracy(words, vectors, read_analogies(path))
    # the two family questions and the capitalised one are right, rome loses to berlin, spain is unknown
    assert (result.correct, result.found, result.total) == (3, 4, 5)
    assert result.sections == {"family": (2, 2, 2), "capital-world": (0, 1, 2), "gram9-plural-verbs": (1, 1, 1)}
    semantic, syntactic = result.group(semantic=True), result.group(semantic=False)
    assert (semantic.correct, semantic.found, semantic.total) == (2, 3, 4) and syntactic.accuracy == 1.0
    assert analogy_accuracy(words, vectors, read_analogies(path), restrict_vocab=4).found == 3
    kv = KeyedVectors(vector_size=5)
    kv.add_vectors(words, vectors)
    score, gensim_sections = kv.evaluate_word_analogies(str(path), restrict_vocab=30000)
    assert result.accuracy == pytest.approx(score)
    assert len(gensim_sections[-1]["correct"]) == 3 and len(gensim_sections[-1]["incorrect"]) == 1


def test_word_similarity_is_spearman_over_covered_pairs_and_matches_gensim(tmp_path):
    words, vectors = _toy_vectors()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    pairs = [
        (a, b, 10 * float(unit[words.index(a)] @ unit[words.index(b)]))
        for a, b in [("man", "woman"), ("king", "queen"), ("man", "king"), ("paris", "rome"), ("france", "tiny")]
    ]
    pairs.append(("man", "unicorn", 5.0))
    result = word_similarity(words, vectors, pairs)
    assert result.spearman == pytest.approx(1.0) and (result.found, result.total) == (5, 6)
    reversed_scores = [(a, b, -s) for a, b, s in pairs]
    assert word_similarity(words, vectors, reversed_scores).spearman == pytest.approx(-1.0)
    shuffled = [(a, b, s) for (a, b, _), s in zip(pairs, [3.0, 1.0, 4.0, 1.5, 9.0, 2.0], strict=True)]
    path = write_word_pairs(tmp_path / "simlex999.txt", shuffled, kind="simlex999")
    ours = word_similarity(words, vectors, read_word_pairs(path))
    kv = KeyedVectors(vector_size=5)
    kv.add_vectors(words, vectors)
    (_, _), (rho, _), oov = kv.evaluate_word_pairs(str(path))
    assert ours.spearman == pytest.approx(rho) and 100 * (1 - ours.coverage) == pytest.approx(oov)


def test_word2vec_text_files_round_trip_through_gensim(tmp_path):
    words, vectors = _toy_vectors()
    vectors = vectors * np.float32(1 / 3)  # digits that a short format would round
    loaded = KeyedVectors.load_word2vec_format(str(write_word2vec_text(tmp_path / "v.txt", words, vectors)))
    assert loaded.index_to_key == words
    np.testing.assert_array_equal(loaded.vectors, vectors)
    with pytest.raises(ValueError, match="whitespace"):
        write_word2vec_text(tmp_path / "w.txt", ["a b"], np.zeros((1, 2)))


# ---------------------------------------------------------------- training


def _topic_purity(words: list[str], vectors: np.ndarray) -> float:
    """The fraction of topic words whose nearest topic word (in cosine) belongs to the same topic."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    topic = {w: t for t, group in TOY_TOPICS.items() for w in group}
    rows = [words.index(w) for w in topic]
    cosine = unit[rows] @ unit[rows].T
    np.fill_diagonal(cosine, -np.inf)
    labels = np.array(list(topic.values()))
    return float((labels[cosine.argmax(1)] == labels).mean())


@pytest.mark.parametrize(
    ("network", "objective", "optimizer", "epochs"),
    [
        (SkipGramNS, "skipgram", {"lr": 0.025}, 3),
        (CBOW, "cbow", {"lr": 0.025}, 3),
        (GloVe, "glove", {"lr": 0.05}, 15),
    ],
)
def test_training_pulls_words_of_a_topic_together(toy, tmp_path, network, objective, optimizer, epochs):
    pl.seed_everything(0, verbose=False)
    data = _data(toy, objective=objective, batch_size=512)
    make_optimizer = torch.optim.SGD if objective != "glove" else torch.optim.Adagrad
    module = WordEmbeddingModule(
        network(vocab_size=len(data.words) + 3, embedding_dim=16),
        compare_gensim=objective == "skipgram",
        optimizer=lambda params: make_optimizer(params, **optimizer),
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=pl.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    before = _topic_purity(data.words, module.network.word_vectors()[: len(data.words)].numpy())
    trainer.fit(module, datamodule=data)
    metrics = trainer.test(module, datamodule=data, verbose=False)[0]
    assert before < 0.6 and _topic_purity(data.words, module.word_vectors()) == 1.0  # chance is 5/23
    assert metrics["test/wordsim353"] > 0.5 and metrics["test/wordsim353_coverage"] == pytest.approx(16 / 17)
    assert "test/analogy_coverage" in metrics
    vectors = KeyedVectors.load_word2vec_format(str(tmp_path / "lightning_logs" / "version_0" / "vectors.txt"))
    assert vectors.index_to_key == data.words
    if objective == "skipgram":  # gensim trained on the same sentences, scored alike
        assert metrics["test/gensim_wordsim353_coverage"] == metrics["test/wordsim353_coverage"]
        assert "test/gensim_simlex999" in metrics


def test_module_rejects_a_network_the_data_does_not_fit(toy):
    data = _data(toy, objective="cbow")
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ConfigError, match="objective"):
        trainer.fit(WordEmbeddingModule(SkipGramNS(100, 8)), datamodule=data)
    with pytest.raises(ConfigError, match="vocab_size"):
        trainer.fit(WordEmbeddingModule(CBOW(5, 8)), datamodule=data)


def test_analogy_questions_type_is_what_the_data_serves(toy):
    data = _data(toy)
    assert isinstance(data.benchmarks["analogy"], AnalogyQuestions)
    assert [batch for batch in data.test_dataloader()] == ["wordsim353", "simlex999", "analogy"]
