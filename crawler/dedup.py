"""Near-duplicate detection: MinHash signatures of normalised text, and an LSH index over them.

A republished agency story differs from its original by a title, a byline, a dropped or added
sentence: the exact content hash misses it, the share of common shingles does not. Shingles are
character 5-grams of the normalised text (diacritics, case, hamza forms folded), which work the
same for Arabic, French and English and survive light edits better than word n-grams (measured
in bench/dedup.py). Signatures are stored with each article, so the index is rebuilt from the
database at start and never has to be persisted on its own.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash
from datasketch.lsh import _optimal_param as optimal_param

from alerts.normalize import normalise

NUM_PERM = 128
SEED = 1
# Fewer distinct shingles than this (a title alone, an empty body) says too little to call two
# texts the same story: such articles stay out of the index.
MIN_SHINGLES = 20
# datasketch ≥ 2's default: 32-bit hash values, so a stored signature is 4 × NUM_PERM bytes.
SCHEME = "affine32"
_DTYPE = np.dtype("<u4")


def flat_text(title: str, paragraphs: Iterable[str]) -> str:
    """Title and body normalised (diacritics, case, hamza forms folded) and whitespace-collapsed:
    the text both the exact-copy hash and the shingles are taken from."""
    return " ".join(normalise("\n".join((title, *paragraphs))).split())


def char_shingles(flat: str, size: int = 5) -> set[str]:
    return {flat[i : i + size] for i in range(len(flat) - size + 1)}


def word_shingles(flat: str, size: int) -> set[str]:
    words = flat.split()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


SHINGLINGS: dict[str, Callable[[str], set[str]]] = {
    "char5": char_shingles,
    "word3": lambda flat: word_shingles(flat, 3),
    "word5": lambda flat: word_shingles(flat, 5),
}
SHINGLING = "char5"


def _crc32(data: bytes) -> int:
    """Stable across processes and Python versions (unlike `hash`), and ~3× faster than SHA-1."""
    return zlib.crc32(data)


def signature_of_shingles(shingles: set[str]) -> bytes | None:
    if len(shingles) < MIN_SHINGLES:
        return None
    minhash = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=_crc32, scheme=SCHEME)
    minhash.update_batch([s.encode("utf-8") for s in shingles])
    return minhash.hashvalues.astype(_DTYPE).tobytes()


def signature(title: str, paragraphs: Sequence[str], shingling: str = SHINGLING) -> bytes | None:
    """The article's MinHash as bytes (NUM_PERM little-endian uint32), or None when too short."""
    return signature_of_shingles(SHINGLINGS[shingling](flat_text(title, paragraphs)))


@dataclass(frozen=True)
class Fingerprint:
    content_hash: str
    signature: bytes | None


def fingerprint(title: str, paragraphs: Sequence[str]) -> Fingerprint:
    """Exact-copy hash and MinHash from one normalisation of the text, which is most of the cost
    (a few ms for a long article): the daemon computes it in the extraction workers."""
    flat = flat_text(title, paragraphs)
    digest = hashlib.sha256(flat.encode("utf-8")).hexdigest()
    return Fingerprint(digest, signature_of_shingles(SHINGLINGS[SHINGLING](flat)))


def _values(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=_DTYPE)


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the two texts' shingle sets."""
    return float(np.mean(_values(a) == _values(b)))


def band_params(threshold: float) -> tuple[int, int]:
    """(bands, rows per band) minimising false positives plus false negatives at the threshold,
    as datasketch's MinHashLSH chooses them."""
    return optimal_param(threshold, NUM_PERM, 0.5, 0.5)


class NearDuplicateIndex:
    """Articles by MinHash bands: `candidates` returns ids that may share ≥ threshold of their
    shingles with a text; the caller confirms with `similarity` on the stored signatures.

    datasketch's MinHashLSH keeps every band as a Python object: ~8 KB and ~0.3 ms per stored
    article, 750 MB and 30 s to rebuild 100,000 at start. Here the bands of all stored articles are
    one sorted numpy array of 64-bit band hashes (salted by band number) beside the article ids,
    ~12 bytes per band, rebuilt in one vectorised pass; articles added since are kept in a small
    dict and merged in when it grows. An article stored again (a new version) keeps its old bands
    too: they only add a candidate, which the signature check settles."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.bands, self.rows = band_params(threshold)
        salts = np.arange(self.bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        self._salts = salts
        self._weights = np.uint64(0x100000001B3) ** np.arange(self.rows, dtype=np.uint64)
        self._hashes = np.empty(0, dtype=np.uint64)
        self._ids = np.empty(0, dtype=np.int64)
        self._recent: dict[int, list[int]] = {}
        self._recent_ids: set[int] = set()
        self._count = 0

    def __len__(self) -> int:
        return self._count + len(self._recent_ids)

    def _band_hashes(self, matrix: np.ndarray) -> np.ndarray:
        """(n, NUM_PERM) hash values → (n, bands) band hashes; uint64 arithmetic wraps."""
        width = self.bands * self.rows
        grouped = matrix[:, :width].astype(np.uint64).reshape(-1, self.bands, self.rows)
        with np.errstate(over="ignore"):
            return (grouped * self._weights).sum(axis=2, dtype=np.uint64) ^ self._salts

    def add_all(self, rows: Iterable[tuple[int, bytes]]) -> None:
        ids, blobs = [], []
        for key, blob in rows:
            ids.append(key)
            blobs.append(blob)
        if ids:
            self._merge(np.array(ids, dtype=np.int64), b"".join(blobs))

    def _merge(self, ids: np.ndarray, blobs: bytes) -> None:
        bands = self._band_hashes(np.frombuffer(blobs, dtype=_DTYPE).reshape(len(ids), NUM_PERM))
        hashes = np.concatenate([self._hashes, bands.ravel()])
        owners = np.concatenate([self._ids, np.repeat(ids, self.bands)])
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._ids = hashes[order], owners[order]
        self._count += len(ids)

    def add(self, key: int, blob: bytes) -> None:
        for band in self._band_hashes(_values(blob).reshape(1, NUM_PERM))[0].tolist():
            self._recent.setdefault(band, []).append(key)
        self._recent_ids.add(key)
        if len(self._recent_ids) > max(1000, self._count // 10):
            self._compact()

    def _compact(self) -> None:
        pairs = [(band, key) for band, keys in self._recent.items() for key in keys]
        hashes = np.concatenate([self._hashes, np.array([b for b, _ in pairs], dtype=np.uint64)])
        owners = np.concatenate([self._ids, np.array([k for _, k in pairs], dtype=np.int64)])
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._ids = hashes[order], owners[order]
        self._count += len(self._recent_ids)
        self._recent.clear()
        self._recent_ids.clear()

    def candidates(self, blob: bytes) -> list[int]:
        bands = self._band_hashes(_values(blob).reshape(1, NUM_PERM))[0]
        starts = np.searchsorted(self._hashes, bands, side="left")
        ends = np.searchsorted(self._hashes, bands, side="right")
        found: set[int] = set()
        for hit in np.flatnonzero(ends > starts).tolist():
            found.update(self._ids[starts[hit] : ends[hit]].tolist())
        if self._recent:
            for band in bands.tolist():
                found.update(self._recent.get(band, ()))
        return sorted(found)
