"""Nearest training examples for retrieval contexts (method.md 0.8 and 3.1).

A sentence-transformers model is used when the package and a model are available offline;
otherwise a TF-IDF index built here (no extra dependency). The backend actually used is returned,
so the run can record it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

SENTENCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_WORD = re.compile(r"[a-z0-9]+")


def tfidf_matrix(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised TF-IDF rows (smoothed idf, sublinear tf)."""
    docs = [Counter(_WORD.findall(text.lower())) for text in texts]
    vocab = sorted({word for doc in docs for word in doc})
    index = {word: i for i, word in enumerate(vocab)}
    df = Counter(word for doc in docs for word in doc)
    n = len(docs)
    matrix = np.zeros((n, max(1, len(vocab))), dtype=np.float32)
    for row, doc in enumerate(docs):
        for word, count in doc.items():
            idf = math.log((1 + n) / (1 + df[word])) + 1.0
            matrix[row, index[word]] = (1.0 + math.log(count)) * idf
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def _sentence_embeddings(texts: Sequence[str]) -> np.ndarray | None:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    try:
        encoder = SentenceTransformer(SENTENCE_MODEL, local_files_only=True)
        vectors = encoder.encode(list(texts), normalize_embeddings=True)
    except Exception:  # offline without the model cached: fall back rather than fail the run
        return None
    return np.asarray(vectors, dtype=np.float32)


def embed(texts: Sequence[str]) -> tuple[np.ndarray, str]:
    """Unit-norm embeddings and the backend name (`sentence-transformers` or `tfidf`)."""
    dense = _sentence_embeddings(texts)
    if dense is not None:
        return dense, "sentence-transformers"
    return tfidf_matrix(texts), "tfidf"


def nearest_neighbours(vectors: np.ndarray, k: int) -> list[list[int]]:
    """For each row, the `k` most similar other rows (cosine; self excluded; ties by index)."""
    n = vectors.shape[0]
    if k >= n:
        raise ValueError(f"need more than {k} examples for {k} retrieval contexts, got {n}")
    result: list[list[int]] = []
    for start in range(0, n, 512):  # blockwise: an N x N similarity matrix can be large
        sims = vectors[start : start + 512] @ vectors.T
        for offset, row in enumerate(sims):
            row = row.copy()
            row[start + offset] = -np.inf
            order = np.lexsort((np.arange(n), -row))  # stable: highest similarity, then index
            result.append([int(i) for i in order[:k]])
    return result
