r"""Prompting and zero-shot classification with pretrained language models, without training.

Three ways to classify a text with a model that was never trained on the task:

- **A causal LM scores label words** (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners",
  section 3; Brown et al. 2020, "Language Models are Few-Shot Learners", section 2): the text is written into a
  prompt ("Review: ... Sentiment:") and each class is scored by the log-probability that the model continues the
  prompt with the class's label word, :math:`\log p(w \mid \text{prompt}) = \sum_j \log p(w_j \mid \text{prompt},
  w_{<j})`; a few labelled examples written before the query ("demonstrations") make it few-shot, in context.
- **A masked LM scores label words at a** ``[MASK]`` (Schick & Schütze 2021, "Exploiting Cloze Questions for Few
  Shot Text Classification and Natural Language Inference", PET; Gao et al. 2021, "Making Pre-trained Language
  Models Better Few-shot Learners", LM-BFF): "<text> It was [MASK]." and each class is scored by
  :math:`\log p([\text{MASK}] = w)` of its label word ("great", "terrible").
- **A sentence encoder compares embeddings** (Reimers & Gurevych 2019, "Sentence-BERT"): the cosine similarity of
  the text's mean-pooled embedding with each class's, the embedding of a description of the class ("a positive movie
  review") for zero-shot, or the mean embedding of k labelled examples per class, a prototype (Snell et al. 2017,
  "Prototypical Networks for Few-shot Learning"), for few-shot.

Every scorer returns a ``(N, C)`` tensor of class scores; the prediction is its ``argmax(dim=1)``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.llm.data.wordpiece import WordPieceTokenizer
from paperzoo.llm.models.bert import BertForMaskedLM, BertModel, mean_pool
from paperzoo.llm.models.gpt import GPT

LabelWords = Sequence[str | Sequence[str]]
"""Per class, one word (or text) or several; a class's score combines its words' (see ``reduce``)."""

_FORMATTER = string.Formatter()


def _escape(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt with named fields, Python format syntax: ``"Review: {text}\\nSentiment: {label}"``.

    The ``label_field`` (if the template has it) is where a label word goes. It must be the template's last field, so
    that everything before it is the prompt a causal model continues (:meth:`prompt`) and the label word with the text
    after it is the continuation that is scored (:meth:`continuation`).

    Args:
        template: the format string; fields are named (``{text}``), not positional (``{}`` or ``{0}``).
        label_field: the name of the label's field.

    Raises:
        ConfigError: a field is positional, the format string is malformed, or a field follows the label field.
    """

    template: str
    label_field: str = "label"
    fields: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            pieces = list(_FORMATTER.parse(self.template))
        except ValueError as err:
            raise ConfigError(f"the template {self.template!r} is not a valid format string ({err})") from err
        names = [name for _, name, _, _ in pieces if name is not None]
        if any(name == "" or name.isdigit() for name in names):
            raise ConfigError(f"the template {self.template!r} has a positional field; name every field, as {{text}}")
        if self.label_field in names and names[-1] != self.label_field:
            raise ConfigError(
                f"the template {self.template!r} has fields after {{{self.label_field}}}; the label must be its last "
                "field (the scored continuation)"
            )
        object.__setattr__(self, "fields", tuple(dict.fromkeys(names)))

    @property
    def has_label(self) -> bool:
        return self.label_field in self.fields

    def format(self, **values: str) -> str:
        """The template with every field filled in.

        Raises:
            ConfigError: a field has no value.
        """
        missing = [name for name in self.fields if name not in values]
        if missing:
            raise ConfigError(f"the template needs values for {', '.join(missing)}; pass them as keywords")
        return self.template.format(**values)

    def _split(self) -> tuple[str, str]:
        """The template before the label field (a format string) and the literal text after it."""
        if not self.has_label:
            raise ConfigError(
                f"the template {self.template!r} has no {{{self.label_field}}} field, where the label goes; add it"
            )
        before, after = [], []
        seen = False
        for literal, name, spec, conversion in _FORMATTER.parse(self.template):
            if seen:
                after.append(literal)
                continue
            before.append(_escape(literal))
            if name == self.label_field:
                seen = True
            elif name is not None:
                suffix = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
                before.append("{" + name + suffix + "}")
        return "".join(before), "".join(after)

    def prompt(self, **values: str) -> str:
        """The text before the label field, filled in (the label's value is not needed)."""
        before, _ = self._split()
        return PromptTemplate(before, self.label_field).format(**values)

    def continuation(self, label: str) -> str:
        """The label word followed by the template's literal text after the label field."""
        return label + self._split()[1]


def as_template(template: str | PromptTemplate) -> PromptTemplate:
    return template if isinstance(template, PromptTemplate) else PromptTemplate(template)


def format_few_shot(
    template: str | PromptTemplate,
    examples: Sequence[Mapping[str, str]],
    query: Mapping[str, str],
    separator: str = "\n\n",
) -> str:
    """Demonstrations and a query in one prompt (Brown et al. 2020, section 2): each example formatted in full, then
    the query, joined by ``separator``.

    The query is formatted in full when it gives the label field (as ``"[MASK]"`` for a masked LM) or the template
    has none, and up to the label field otherwise (the prompt a causal LM continues).

    Args:
        template: the prompt template.
        examples: the demonstrations' field values, the label included.
        query: the query's field values.
        separator: between demonstrations and before the query.
    """
    template = as_template(template)
    whole = template.label_field in query or not template.has_label
    last = template.format(**query) if whole else template.prompt(**query)
    return separator.join([*(template.format(**example) for example in examples), last])


def _words_per_class(label_words: LabelWords) -> list[list[str]]:
    words = [[w] if isinstance(w, str) else list(w) for w in label_words]
    if len(words) < 2 or any(not w for w in words):
        raise ConfigError("label_words needs at least two classes, each with at least one word")
    return words


def _reduce(scores: Tensor, how: str) -> Tensor:
    """Combine per-word log-probabilities ``(N, W)`` into one class score ``(N,)``."""
    if how == "max":
        return scores.max(dim=1).values
    if how == "mean":
        return scores.logsumexp(dim=1) - math.log(scores.size(1))
    raise ConfigError(f"reduce={how!r} is not one of 'max' (the likeliest word) and 'mean' (the mean probability)")


class _EvalMode:
    """Run a model in eval mode under ``no_grad`` and put it back in its mode afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.was_training = self.model.training
        self.no_grad = torch.no_grad()
        self.no_grad.__enter__()
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)
        self.no_grad.__exit__(*exc)


def _pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Right-padded ``(ids, attention_mask)``, both ``(B, T)``."""
    longest = max(len(r) for r in rows)
    ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# ---------------------------------------------------------------------------------------------- causal LM


def continuation_log_probs(
    model: GPT, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], batch_size: int = 16
) -> Tensor:
    r"""The total log-probability of each continuation after its prompt, :math:`\sum_j \log p(c_j \mid p, c_{<j})`.

    Rows are right-padded in batches (the model's ``attention_mask`` hides the padding, so a row's score does not
    depend on its batch) and run in eval mode.

    Args:
        model: a causal LM whose ``forward(input_ids, attention_mask)`` gives next-token logits ``(B, T, V)``.
        pairs: ``(prompt ids, continuation ids)``; every prompt has at least one id and their total fits the model.
        batch_size: rows per forward pass.

    Shapes:
        - output: :math:`(N,)`, N = ``len(pairs)``
    """
    device = _device(model)
    scores = []
    with _EvalMode(model):
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            ids, mask = _pad([[*p, *c] for p, c in chunk], 0, device)  # (B, T)
            logits = model(ids, attention_mask=mask)  # (B, T, V)
            log_probs = logits[:, :-1].float().log_softmax(dim=-1)  # (B, T - 1, V): position t predicts token t + 1
            token_lp = log_probs.gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, T - 1)
            position = torch.arange(1, ids.size(1), device=device)  # (T - 1,): the predicted token's position
            prompt_len = torch.tensor([len(p) for p, _ in chunk], device=device)[:, None]
            total_len = torch.tensor([len(p) + len(c) for p, c in chunk], device=device)[:, None]
            scored = (position >= prompt_len) & (position < total_len)  # (B, T - 1)
            scores.append((token_lp * scored).sum(dim=1))
    return torch.cat(scores)


def score_label_words_causal(
    model: GPT,
    encode: Callable[[str], list[int]],
    texts: Sequence[str],
    template: str | PromptTemplate,
    label_words: LabelWords,
    demonstrations: Sequence[Mapping[str, str]] = (),
    separator: str = "\n\n",
    reduce: Literal["max", "mean"] = "max",
    text_field: str = "text",
    bos_token_id: int | None = None,
    max_length: int | None = None,
    batch_size: int = 16,
) -> Tensor:
    r"""Zero- or few-shot classification by a causal LM (Radford et al. 2019; Brown et al. 2020): each class's score
    is the total log-probability of its label word as the continuation of the prompt.

    The prompt is the demonstrations and the query (:func:`format_few_shot`), up to the template's label field; the
    continuation is :meth:`PromptTemplate.continuation` of the word. Whitespace at the end of the prompt is moved to
    the start of the continuation, so that a word-level tokenizer such as GPT-2's, which writes the space before a
    word into the word's token (``" positive"``), sees the word as it would in running text. The prompt and the
    continuation are encoded separately and their ids concatenated. A prompt too long for the model loses its first
    tokens (the demonstrations before the query).

    Args:
        model: our :class:`~paperzoo.llm.models.gpt.GPT` (or any model with its ``forward(input_ids,
            attention_mask)``).
        encode: a text's token ids (``GPT2Tokenizer.encode``, a character vocabulary's ``encode`` ...).
        texts: the texts to classify.
        template: a template whose fields are ``text_field`` and, last, ``label``.
        label_words: per class, its word or words.
        demonstrations: the few-shot examples' field values, ``{"text": ..., "label": <a label word>}``.
        separator: between demonstrations and before the query.
        reduce: a class of several words scores ``"max"`` (its likeliest word's log-probability) or ``"mean"`` (the
            log of its words' mean probability).
        text_field: the template's field for the text.
        bos_token_id: an id put before every prompt (GPT-2's ``<|endoftext|>``, 50256, as its documents began), or
            ``None``.
        max_length: the most ids of a row; ``None`` for the model's ``config.block_size``.
        batch_size: rows (text-word pairs) per forward pass.

    Returns:
        ``(N, C)`` log-probability scores.

    Raises:
        ConfigError: a prompt encodes to no ids without ``bos_token_id``, or a continuation does not fit the model.
    """
    template = as_template(template)
    words = _words_per_class(label_words)
    limit = max_length if max_length is not None else model.config.block_size
    pairs, index = [], []
    for n, text in enumerate(texts):
        prompt = format_few_shot(template, demonstrations, {text_field: text}, separator)
        stripped = prompt.rstrip()
        prompt_ids = ([] if bos_token_id is None else [bos_token_id]) + encode(stripped)
        for c, class_words in enumerate(words):
            for w, word in enumerate(class_words):
                continuation = encode(prompt[len(stripped) :] + template.continuation(word))
                if not prompt_ids or not continuation or len(continuation) >= limit:
                    raise ConfigError(
                        f"the prompt and continuation of {word!r} encode to {len(prompt_ids)} and {len(continuation)} "
                        f"ids; the prompt needs at least one (pass bos_token_id), the continuation fewer than {limit}"
                    )
                pairs.append((prompt_ids[-(limit - len(continuation)) :], continuation))
                index.append((n, c, w))
    flat = continuation_log_probs(model, pairs, batch_size)
    table = torch.full((len(texts), len(words), max(map(len, words))), float("nan"), device=flat.device)
    table[tuple(torch.tensor(index, device=flat.device).reshape(-1, 3).T)] = flat  # (N, C, W)
    return torch.stack([_reduce(table[:, c, : len(w)], reduce) for c, w in enumerate(words)], dim=1)


# ---------------------------------------------------------------------------------------------- masked LM


def label_word_ids(tokenizer: WordPieceTokenizer, label_words: LabelWords) -> list[list[int]]:
    """The token id of every label word, per class.

    Raises:
        ConfigError: a word is not one WordPiece token of the vocabulary (one ``[MASK]`` predicts one token).
    """
    out = []
    for class_words in _words_per_class(label_words):
        ids = []
        for word in class_words:
            pieces = tokenizer.encode(word, add_special_tokens=False)
            if len(pieces) != 1 or pieces[0] == tokenizer.unk_token_id:
                raise ConfigError(
                    f"the label word {word!r} is {tokenizer.convert_ids_to_tokens(pieces)} in WordPiece, not one "
                    "token of the vocabulary; one [MASK] predicts one token, so choose single-token words"
                )
            ids.append(pieces[0])
        out.append(ids)
    return out


def mask_logits(model: BertForMaskedLM, input_ids: Tensor, attention_mask: Tensor, positions: Tensor) -> Tensor:
    """The MLM logits at one position of each row, ``(B, V)``: the head runs at those positions only.

    Shapes:
        - input_ids, attention_mask: :math:`(B, T)`
        - positions: :math:`(B,)`
    """
    hidden = model.bert(input_ids, attention_mask).last_hidden_state  # (B, T, H)
    rows = torch.arange(len(positions), device=hidden.device)
    return model.lm_head(hidden[rows, positions])  # (B, V)


def score_label_words_mlm(
    model: BertForMaskedLM,
    tokenizer: WordPieceTokenizer,
    texts: Sequence[str],
    template: str | PromptTemplate,
    label_words: LabelWords,
    demonstrations: Sequence[Mapping[str, str]] = (),
    separator: str = " ",
    reduce: Literal["max", "mean"] = "max",
    text_field: str = "text",
    max_length: int | None = None,
    batch_size: int = 32,
) -> Tensor:
    r"""Zero- or few-shot classification by a masked LM (PET, Schick & Schütze 2021; LM-BFF, Gao et al. 2021): each
    class's score is :math:`\log p([\text{MASK}] = w \mid \text{prompt})` of its label word ``w`` at the prompt's one
    ``[MASK]``.

    The template's label field becomes ``[MASK]`` (or, without one, the template writes ``[MASK]`` itself). With
    ``demonstrations``, the filled-in examples come first (LM-BFF's demonstrations). A prompt longer than
    ``max_length`` loses its first tokens after ``[CLS]``.

    Args:
        model: our :class:`~paperzoo.llm.models.bert.BertForMaskedLM`.
        tokenizer: its WordPiece tokenizer.
        texts: the texts to classify.
        template: e.g. ``"{text} It was {label}."`` or ``"{text} It was [MASK]."``.
        label_words: per class, its word or words; every word must be one token of the vocabulary.
        demonstrations: the few-shot examples' field values (``"label"``: a label word); the template needs a label
            field then.
        separator: between demonstrations and before the query.
        reduce: a class of several words scores ``"max"`` (its likeliest word) or ``"mean"`` (the log of its words'
            mean probability).
        text_field: the template's field for the text.
        max_length: the most ids of a row; ``None`` for the model's ``max_position_embeddings``.
        batch_size: texts per forward pass.

    Returns:
        ``(N, C)`` log-probability scores.

    Raises:
        ConfigError: a label word is not a single token, or a prompt has no ``[MASK]`` or several.
    """
    template = as_template(template)
    if tokenizer.mask_token is None:
        raise ConfigError("the tokenizer has no [MASK] token; a masked-LM prompt needs BERT's vocabulary")
    if demonstrations and not template.has_label:
        raise ConfigError("demonstrations need a template with a {label} field, where their label words go")
    word_ids = label_word_ids(tokenizer, label_words)
    limit = max_length if max_length is not None else model.config.max_position_embeddings
    query = {template.label_field: tokenizer.mask_token} if template.has_label else {}
    rows, positions = [], []
    for text in texts:
        body = tokenizer.encode(
            format_few_shot(template, demonstrations, {text_field: text, **query}, separator), add_special_tokens=False
        )
        body = body[len(body) - min(len(body), limit - 2) :]
        at = [i for i, t in enumerate(body) if t == tokenizer.mask_token_id]
        if len(at) != 1:
            raise ConfigError(
                f"the prompt of {text[:40]!r}... has {len(at)} [MASK] tokens after truncation to {limit}; the template "
                "must give exactly one (and the text must leave it within the model's length)"
            )
        rows.append([tokenizer.cls_token_id, *body, tokenizer.sep_token_id])
        positions.append(at[0] + 1)
    device = _device(model)
    out = []
    with _EvalMode(model):
        for start in range(0, len(rows), batch_size):
            ids, mask = _pad(rows[start : start + batch_size], tokenizer.pad_token_id, device)
            where = torch.tensor(positions[start : start + batch_size], device=device)
            log_probs = mask_logits(model, ids, mask, where).float().log_softmax(dim=-1)  # (B, V)
            out.append(
                torch.stack([_reduce(log_probs[:, ids_c], reduce) for ids_c in word_ids], dim=1)  # (B, C)
            )
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------- embeddings


def _encoder(model: nn.Module) -> BertModel:
    if isinstance(model, BertModel):
        return model
    inner = getattr(model, "bert", None)
    if isinstance(inner, BertModel):
        return inner
    raise ConfigError(f"{type(model).__name__} is not a BERT; pass a BertModel (or a model with one as .bert)")


def embed_texts(
    model: nn.Module,
    tokenizer: WordPieceTokenizer,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int | None = 256,
    normalize: bool = True,
) -> Tensor:
    """Sentence embeddings (Reimers & Gurevych 2019): the mean of the last layer's states over the real tokens,
    L2-normalised (all-MiniLM-L6-v2's pooling and normalisation, over at most its 256 tokens).

    Texts are batched in order of length, so that little padding is computed (the padding does not change an
    embedding); the output is in the texts' order.

    Args:
        model: a :class:`~paperzoo.llm.models.bert.BertModel`, or a BERT task model (its ``.bert`` is used).
        tokenizer: its WordPiece tokenizer.
        texts: the texts.
        batch_size: texts per forward pass.
        max_length: the most tokens of a text (longer ones are cut); ``None`` for the model's positions.
        normalize: divide each embedding by its norm.

    Shapes:
        - output: :math:`(N, H)`
    """
    encoder = _encoder(model)
    device = _device(encoder)
    limit = encoder.config.max_position_embeddings if max_length is None else max_length
    rows = [tokenizer.encode(text, max_length=limit, truncation=True) for text in texts]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = torch.empty(len(rows), encoder.config.hidden_size, device=device)
    with _EvalMode(encoder):
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = _pad([rows[i] for i in chunk], tokenizer.pad_token_id, device)
            pooled = mean_pool(encoder(ids, mask).last_hidden_state.float(), mask)  # (B, H)
            out[torch.tensor(chunk, device=device)] = F.normalize(pooled, dim=-1) if normalize else pooled
    return out


def class_prototypes(embeddings: Tensor, labels: Tensor | Sequence[int], num_classes: int | None = None) -> Tensor:
    """Each class's mean embedding, L2-normalised (Snell et al. 2017's prototype, for cosine similarity).

    Shapes:
        - embeddings: :math:`(N, H)`
        - labels: :math:`(N,)` in ``0 .. C - 1``
        - output: :math:`(C, H)`

    Raises:
        ConfigError: a class has no example.
    """
    labels = torch.as_tensor(labels, device=embeddings.device)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    counts = torch.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        raise ConfigError(f"the classes {(counts == 0).nonzero().flatten().tolist()} have no example to average")
    sums = torch.zeros(num_classes, embeddings.size(1), device=embeddings.device).index_add_(0, labels, embeddings)
    return F.normalize(sums / counts[:, None], dim=-1)


def classify_by_embedding(
    model: nn.Module,
    tokenizer: WordPieceTokenizer,
    texts: Sequence[str],
    label_descriptions: LabelWords,
    batch_size: int = 64,
    max_length: int | None = 256,
) -> Tensor:
    """Zero-shot classification by sentence embeddings: the cosine similarity of each text's embedding
    (:func:`embed_texts`) with each class's, the normalised mean of its descriptions' embeddings.

    Args:
        model: a BERT sentence encoder (all-MiniLM-L6-v2 is trained for exactly this similarity).
        tokenizer: its WordPiece tokenizer.
        texts: the texts to classify.
        label_descriptions: per class, a description ("a positive movie review") or several.
        batch_size: texts per forward pass.
        max_length: the most tokens of a text.

    Returns:
        ``(N, C)`` cosine similarities.
    """
    descriptions = _words_per_class(label_descriptions)
    flat = [d for class_descriptions in descriptions for d in class_descriptions]
    owner = [c for c, class_descriptions in enumerate(descriptions) for _ in class_descriptions]
    classes = class_prototypes(embed_texts(model, tokenizer, flat, batch_size, max_length), owner, len(descriptions))
    return embed_texts(model, tokenizer, texts, batch_size, max_length) @ classes.T  # (N, C)


def classify_by_prototypes(
    model: nn.Module,
    tokenizer: WordPieceTokenizer,
    texts: Sequence[str],
    support_texts: Sequence[str],
    support_labels: Sequence[int],
    num_classes: int | None = None,
    batch_size: int = 64,
    max_length: int | None = 256,
) -> Tensor:
    """Few-shot classification by sentence embeddings: the cosine similarity of each text's embedding with each
    class's prototype, the normalised mean embedding of its labelled ``support_texts`` (Snell et al. 2017, with
    cosine similarity and a frozen encoder).

    Returns:
        ``(N, C)`` cosine similarities.
    """
    support = embed_texts(model, tokenizer, support_texts, batch_size, max_length)
    prototypes = class_prototypes(support, list(support_labels), num_classes)
    return embed_texts(model, tokenizer, texts, batch_size, max_length) @ prototypes.T  # (N, C)


def sample_shots(labels: Sequence[int], shots: int, seed: int = 0, num_classes: int | None = None) -> list[int]:
    """Indices of ``shots`` examples of each class, drawn without replacement by a generator seeded with ``seed``,
    class by class (sorted within each class).

    Raises:
        ConfigError: a class has fewer than ``shots`` examples.
    """
    labels = np.asarray(labels)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    rng = np.random.default_rng(seed)
    picked = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < shots:
            raise ConfigError(f"class {c} has {len(members)} examples, fewer than shots={shots}; lower shots")
        picked += sorted(rng.choice(members, size=shots, replace=False).tolist())
    return picked
