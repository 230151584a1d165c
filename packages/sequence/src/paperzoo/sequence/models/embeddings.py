"""Word embeddings learnt from co-occurrence: word2vec's skip-gram and CBOW with negative sampling, and GloVe.

word2vec is Mikolov, Chen, Corrado & Dean 2013, "Efficient Estimation of Word Representations in Vector Space"
(the CBOW and skip-gram architectures), and Mikolov, Sutskever, Chen, Corrado & Dean 2013, "Distributed
Representations of Words and Phrases and their Compositionality" (negative sampling, the unigram^(3/4) noise
distribution, subsampling of frequent words). GloVe is Pennington, Socher & Manning 2014, "GloVe: Global Vectors for
Word Representation".

Each model returns the loss of every example in a batch, so the module can sum them (one SGD step of a batch is then
the sum of the per-example steps word2vec takes) and log their mean. The tables are ``nn.Embedding`` with sparse
gradients by default: a batch touches a few thousand of the vocabulary's rows, and a sparse optimiser step
(``torch.optim.SGD`` or ``Adagrad``) updates only those.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.sequence.registry import register_model


def negative_sampling_loss(hidden: Tensor, positive: Tensor, negatives: Tensor, negative_mask: Tensor) -> Tensor:
    r"""The negative-sampling objective of Mikolov et al. 2013 (their equation 4), negated, per example.

    .. math::
        \ell = -\log \sigma({v'_{w_O}}^\top h) - \sum_{k=1}^{K} m_k \log \sigma(-{v'_{w_k}}^\top h)

    Args:
        hidden: the input representation :math:`h` (a word's input vector, or CBOW's context mean).
        positive: the output vector :math:`v'_{w_O}` of the observed word.
        negatives: the output vectors :math:`v'_{w_k}` of the noise words.
        negative_mask: :math:`m_k`, 0 for a noise word that is the observed word itself (word2vec skips those).

    Shapes:
        - **hidden, positive:** :math:`(B, D)`.
        - **negatives:** :math:`(B, K, D)`; **negative_mask:** :math:`(B, K)`.
        - **output:** :math:`(B)`.
    """
    positive_score = (hidden * positive).sum(-1)  # (B,)
    negative_scores = torch.bmm(negatives, hidden.unsqueeze(-1)).squeeze(-1)  # (B, K)
    return -F.logsigmoid(positive_score) - (F.logsigmoid(-negative_scores) * negative_mask).sum(-1)


class _Word2Vec(nn.Module):
    r"""What skip-gram and CBOW share: an input and an output table with word2vec's initialisation (input vectors
    uniform in :math:`\pm 0.5/D`, output vectors zero); the input vectors are the word vectors."""

    def __init__(self, vocab_size: int, embedding_dim: int, sparse: bool) -> None:
        super().__init__()
        if vocab_size < 1 or embedding_dim < 1:
            raise ValueError(f"vocab_size and embedding_dim must be at least 1, got {vocab_size} and {embedding_dim}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.input_embeddings = nn.Embedding(vocab_size, embedding_dim, sparse=sparse)
        self.output_embeddings = nn.Embedding(vocab_size, embedding_dim, sparse=sparse)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 0.5 / self.embedding_dim
        nn.init.uniform_(self.input_embeddings.weight, -bound, bound)
        nn.init.zeros_(self.output_embeddings.weight)

    def word_vectors(self) -> Tensor:
        """The word vectors: the input embeddings, ``(vocab_size, D)``."""
        return self.input_embeddings.weight.detach()


class SkipGramNS(_Word2Vec):
    r"""The continuous skip-gram model trained with negative sampling (Mikolov et al. 2013).

    Every word :math:`w_I` has an input vector :math:`v_{w_I}` and an output vector :math:`v'_{w_I}`; a pair of a
    centre word and a word of its window is scored by :math:`\sigma({v'_{w_O}}^\top v_{w_I})` against ``K`` noise
    words drawn from the unigram distribution raised to 3/4 (see :func:`negative_sampling_loss`). The input vectors
    are the word vectors. Initialisation is word2vec's: input vectors uniform in :math:`\pm 0.5/D`, output vectors
    zero.

    Args:
        vocab_size: rows of both tables; every word id must be below it.
        embedding_dim: :math:`D`, the width of the vectors.
        sparse: give the tables sparse gradients (for ``torch.optim.SGD``, ``Adagrad`` or ``SparseAdam``).

    Shapes:
        - **centers:** :math:`(B)` input word ids.
        - **contexts:** :math:`(B)` output word ids, one observed word of each centre's window.
        - **negatives:** :math:`(B, K)` noise word ids.
        - **output:** :math:`(B)`, the loss of each pair.
    """

    objective = "skipgram"

    def __init__(self, vocab_size: int, embedding_dim: int = 100, sparse: bool = True) -> None:
        super().__init__(vocab_size, embedding_dim, sparse)

    def forward(self, centers: Tensor, contexts: Tensor, negatives: Tensor) -> Tensor:
        mask = (negatives != contexts.unsqueeze(-1)).to(self.input_embeddings.weight.dtype)  # (B, K)
        return negative_sampling_loss(
            self.input_embeddings(centers),  # (B, D)
            self.output_embeddings(contexts),  # (B, D)
            self.output_embeddings(negatives),  # (B, K, D)
            mask,
        )


class CBOW(_Word2Vec):
    r"""The continuous bag-of-words model trained with negative sampling (Mikolov et al. 2013).

    The centre word :math:`w_O` is predicted from the mean of its window's input vectors,
    :math:`h = \frac{1}{|C|}\sum_{c \in C} v_c`, scored as in :class:`SkipGramNS`. The exact gradient of that mean
    gives each context vector :math:`1/|C|` of :math:`\partial\ell/\partial h`; the word2vec C code released with the
    paper (and gensim with ``cbow_mean=1``) adds the whole of :math:`\partial\ell/\partial h` to every context vector
    instead, a step :math:`|C|` times larger for the input vectors. ``full_context_gradient`` (the default) takes
    word2vec's step, so that its learning rate of 0.025 means the same here (at that rate the exact gradient learns
    much weaker vectors in the same time: see ``experiments/sequence/word2vec_mikolov2013/README.md``). The input
    vectors are the word vectors.

    Args:
        vocab_size: rows of both tables; every word id must be below it.
        embedding_dim: :math:`D`, the width of the vectors.
        full_context_gradient: give every context vector the whole gradient of :math:`h` (word2vec's update);
            False for the exact gradient of the mean.
        sparse: give the tables sparse gradients.

    Shapes:
        - **contexts:** :math:`(B, C)` the window's word ids, padded with any id where ``context_mask`` is False.
        - **context_mask:** :math:`(B, C)` True for a real context word; every row has at least one.
        - **targets:** :math:`(B)` the centre word ids.
        - **negatives:** :math:`(B, K)` noise word ids.
        - **output:** :math:`(B)`, the loss of each window.
    """

    objective = "cbow"

    def __init__(
        self, vocab_size: int, embedding_dim: int = 100, full_context_gradient: bool = True, sparse: bool = True
    ) -> None:
        super().__init__(vocab_size, embedding_dim, sparse)
        self.full_context_gradient = full_context_gradient

    def forward(self, contexts: Tensor, context_mask: Tensor, targets: Tensor, negatives: Tensor) -> Tensor:
        weights = context_mask.to(self.input_embeddings.weight.dtype)  # (B, C)
        summed = torch.bmm(weights.unsqueeze(1), self.input_embeddings(contexts)).squeeze(1)  # (B, C, D) -> (B, D)
        hidden = summed / weights.sum(-1, keepdim=True)
        if self.full_context_gradient:
            hidden = hidden.detach() + (summed - summed.detach())  # the mean's value, the sum's gradient
        mask = (negatives != targets.unsqueeze(-1)).to(weights.dtype)  # (B, K)
        return negative_sampling_loss(hidden, self.output_embeddings(targets), self.output_embeddings(negatives), mask)


class GloVe(nn.Module):
    r"""Global Vectors (Pennington et al. 2014): a weighted least-squares fit of log co-occurrence counts.

    Every word has a vector :math:`w_i` and a context vector :math:`\tilde w_j`, each with a bias; an entry
    :math:`X_{ij} > 0` of the co-occurrence matrix costs

    .. math::
        \ell_{ij} = \tfrac12 f(X_{ij}) \left(w_i^\top \tilde w_j + b_i + \tilde b_j - \log X_{ij}\right)^2,
        \qquad f(x) = \min\left(1, (x / x_{\max})^\alpha\right),

    the paper's equation 8 with its :math:`x_{\max} = 100`, :math:`\alpha = 3/4`. The factor 1/2 is the authors'
    ``glove.c``, so AdaGrad's learning rate of 0.05 means what it means there. All four tables start uniform in
    :math:`\pm 0.5/D`, as in ``glove.c``, and the word vectors are :math:`w + \tilde w` (the paper's section 4.2).

    Args:
        vocab_size: rows of the tables; every word id must be below it.
        embedding_dim: :math:`D`, the width of the vectors.
        x_max: the count at which the weight :math:`f` saturates at 1.
        alpha: the exponent of :math:`f` below ``x_max``.
        sparse: give the tables sparse gradients (for ``torch.optim.Adagrad``).

    Shapes:
        - **rows, cols:** :math:`(B)` word ids :math:`i` and context ids :math:`j`.
        - **counts:** :math:`(B)` the positive co-occurrence values :math:`X_{ij}`.
        - **output:** :math:`(B)`, the cost of each entry.
    """

    objective = "glove"

    def __init__(
        self, vocab_size: int, embedding_dim: int = 100, x_max: float = 100.0, alpha: float = 0.75, sparse: bool = True
    ) -> None:
        super().__init__()
        if vocab_size < 1 or embedding_dim < 1:
            raise ValueError(f"vocab_size and embedding_dim must be at least 1, got {vocab_size} and {embedding_dim}")
        if x_max <= 0 or alpha < 0:
            raise ValueError(f"x_max must be positive and alpha non-negative, got {x_max} and {alpha}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.x_max = x_max
        self.alpha = alpha
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim, sparse=sparse)
        self.context_embeddings = nn.Embedding(vocab_size, embedding_dim, sparse=sparse)
        self.word_biases = nn.Embedding(vocab_size, 1, sparse=sparse)
        self.context_biases = nn.Embedding(vocab_size, 1, sparse=sparse)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 0.5 / self.embedding_dim
        for table in (self.word_embeddings, self.context_embeddings, self.word_biases, self.context_biases):
            nn.init.uniform_(table.weight, -bound, bound)

    def weighting(self, counts: Tensor) -> Tensor:
        """:math:`f(X_{ij}) = \\min(1, (X_{ij}/x_{\\max})^\\alpha)`."""
        return (counts / self.x_max).pow(self.alpha).clamp(max=1.0)

    def forward(self, rows: Tensor, cols: Tensor, counts: Tensor) -> Tensor:
        dot = (self.word_embeddings(rows) * self.context_embeddings(cols)).sum(-1)  # (B,)
        biases = self.word_biases(rows).squeeze(-1) + self.context_biases(cols).squeeze(-1)
        residual = dot + biases - counts.log()
        return 0.5 * self.weighting(counts) * residual.square()

    def word_vectors(self) -> Tensor:
        """The word vectors :math:`w + \\tilde w`, ``(vocab_size, D)``."""
        return (self.word_embeddings.weight + self.context_embeddings.weight).detach()

    def extra_repr(self) -> str:
        return f"x_max={self.x_max:g}, alpha={self.alpha:g}"


@register_model
def word2vec_sgns(**kwargs) -> SkipGramNS:
    """Skip-gram with negative sampling; 100-dimensional vectors unless ``embedding_dim`` says otherwise."""
    return SkipGramNS(**kwargs)


@register_model
def word2vec_cbow(**kwargs) -> CBOW:
    """CBOW (mean of the window's vectors) with negative sampling; 100-dimensional vectors by default."""
    return CBOW(**kwargs)


@register_model
def glove(**kwargs) -> GloVe:
    """GloVe with the paper's weighting (x_max 100, alpha 3/4); 100-dimensional vectors by default."""
    return GloVe(**kwargs)
