"""The neighbourhood graph of the closed-form models: each video linked to its nearest others
by cosine similarity, symmetrised, exact (blockwise) up to ``EXACT_GRAPH_LIMIT`` videos and
approximate above (an HNSW index of faiss, the optional ``scale`` extra); and the products with
its Laplacian L = D - W that the models need, without forming L."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from s4aqa.errors import S4AQAError

EXACT_GRAPH_LIMIT = 20_000  # videos: exact neighbours up to here, approximate (HNSW) above
BLOCK = 2048  # rows of the similarity matrix computed at a time
HNSW_LINKS, HNSW_BUILD, HNSW_SEARCH = 16, 100, 80  # the approximate graph's index (faiss)


def unit_rows(points: np.ndarray) -> np.ndarray:
    return points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)


def exact_neighbours(points: np.ndarray, neighbours: int, block: int = BLOCK) -> np.ndarray:
    """(N, k) indices of each point's k nearest others by cosine similarity, ties to the lower
    index (as a stable sort), computed a block of rows at a time: O(N²D) time, O(block·N)
    memory."""
    unit = unit_rows(points)
    n = len(points)
    k = min(neighbours, n - 1)
    out = np.empty((n, max(k, 0)), dtype=np.int64)
    if k < 1:
        return out
    for start in range(0, n, block):
        stop = min(start + block, n)
        negative = -(unit[start:stop] @ unit.T)
        negative[np.arange(stop - start), np.arange(start, stop)] = np.inf
        chosen = np.argpartition(negative, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(negative, chosen, axis=1).max(axis=1)
        # a tie at the k-th value: take the lowest indices, as the stable sort does
        tied = np.flatnonzero((negative <= kth[:, None]).sum(axis=1) > k)
        for row in tied:
            chosen[row] = np.argsort(negative[row], kind="stable")[:k]
        out[start:stop] = chosen
    return out


def approximate_neighbours(points: np.ndarray, neighbours: int) -> np.ndarray:
    """(N, k) approximate cosine nearest neighbours from an HNSW index (faiss), built on one
    thread, so the graph is the same on every run (each query's search is independent, so it
    runs on the threads faiss was given)."""
    try:
        import faiss
    except ImportError:
        raise S4AQAError(
            f"a neighbourhood graph over more than {EXACT_GRAPH_LIMIT} videos is approximate "
            "and needs faiss: pip install 's4aqa[scale]'") from None
    unit = np.ascontiguousarray(unit_rows(points), dtype=np.float32)
    n, k = len(points), min(neighbours, len(points) - 1)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # a parallel build inserts in a racing order
    try:
        index = faiss.IndexHNSWFlat(unit.shape[1], HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_BUILD
        index.add(unit)
        faiss.omp_set_num_threads(threads)
        index.hnsw.efSearch = max(HNSW_SEARCH, 2 * k)
        found = np.empty((n, k + 1), dtype=np.int64)
        for start in range(0, n, BLOCK):
            found[start:start + BLOCK] = index.search(unit[start:start + BLOCK], k + 1)[1]
    finally:
        faiss.omp_set_num_threads(threads)
    out = np.empty((n, k), dtype=np.int64)
    for i, row in enumerate(found):  # drop the point itself (or the farthest, if not found)
        others = row[(row != i) & (row >= 0)]
        if len(others) < k:
            raise S4AQAError("the approximate neighbour search found too few neighbours")
        out[i] = others[:k]
    return out


def knn_graph(points: np.ndarray, neighbours: int,
              exact_limit: int = EXACT_GRAPH_LIMIT) -> sparse.csr_matrix:
    """(N, N) sparse symmetric 0/1 adjacency: i ~ j when either is among the other's
    ``neighbours`` nearest by cosine similarity (exact up to ``exact_limit`` points,
    approximate above)."""
    n = len(points)
    nearest = (exact_neighbours(points, neighbours) if n <= exact_limit
               else approximate_neighbours(points, neighbours))
    rows = np.repeat(np.arange(n), nearest.shape[1])
    adjacency = sparse.csr_matrix((np.ones(rows.size), (rows, nearest.ravel())), shape=(n, n))
    return adjacency.maximum(adjacency.T).tocsr()


def laplacian_times(adjacency: sparse.csr_matrix, x: np.ndarray) -> np.ndarray:
    """L x with L = D − W, without forming L."""
    degrees = np.asarray(adjacency.sum(axis=1)).ravel()
    return degrees[:, None] * x - adjacency @ x


def graph_gram(adjacency: sparse.csr_matrix, x: np.ndarray, block: int = 8192) -> np.ndarray:
    """Xᵀ L X (D × D) in O(N·k·D + N·D²) time, a block of rows at a time."""
    degrees = np.asarray(adjacency.sum(axis=1)).ravel()
    out = np.zeros((x.shape[1], x.shape[1]))
    for start in range(0, len(x), block):
        rows = slice(start, start + block)
        out += x[rows].T @ (degrees[rows, None] * x[rows] - adjacency[rows] @ x)
    return (out + out.T) / 2
