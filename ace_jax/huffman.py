"""word2vec's Huffman tree over word counts: each word's path of inner nodes and code bits (numpy)."""

import heapq

import numpy as np


def build_huffman_tree(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes and paths for hierarchical softmax.

    Args:
      counts: [V] word counts, V ≥ 2.
    Returns:
      points [V, L] int32: inner-node ids (0 … V−2, the root is V−2) from the root down, −1 padded;
      codes [V, L] int8: the branch taken at each node (0/1), 0 padded;
      lengths [V] int32.
    Ties between equal counts are broken by creation order, so the tree is deterministic.
    """
    counts = np.asarray(counts, np.int64)
    vocab_size = len(counts)
    if vocab_size < 2:
        raise ValueError("a Huffman tree needs at least two words")
    heap = [(int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent = np.zeros(2 * vocab_size - 1, np.int64)
    branch = np.zeros(2 * vocab_size - 1, np.int8)
    for node in range(vocab_size, 2 * vocab_size - 1):
        (c0, left), (c1, right) = heapq.heappop(heap), heapq.heappop(heap)
        parent[left], parent[right] = node, node
        branch[right] = 1
        heapq.heappush(heap, (c0 + c1, node))
    root = 2 * vocab_size - 2
    paths, bits = [], []
    for word in range(vocab_size):
        node, path, code = word, [], []
        while node != root:
            code.append(branch[node])
            node = parent[node]
            path.append(node - vocab_size)  # inner nodes are numbered 0 … V−2
        paths.append(path[::-1])
        bits.append(code[::-1])
    lengths = np.array([len(p) for p in paths], np.int32)
    points = np.full((vocab_size, lengths.max()), -1, np.int32)
    codes = np.zeros((vocab_size, lengths.max()), np.int8)
    for word, (path, code) in enumerate(zip(paths, bits)):
        points[word, : len(path)] = path
        codes[word, : len(code)] = code
    return points, codes, lengths
