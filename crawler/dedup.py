"""Near-duplicate detection: MinHash signatures of normalised text, and an LSH index over them.

A republished agency story differs from its original by a title, a byline, a dropped or added
sentence: the exact content hash misses it, the share of common shingles does not. Shingles are
character 5-grams of the normalised text (diacritics, case, hamza forms folded), which work the
same for Arabic, French and English and survive light edits better than word n-grams (measured
in bench/dedup.py). Signatures are stored with each article, so the index is rebuilt from the
database at start and never has to be persisted on its own.

Signatures are datasketch's MinHash, scheme "affine32", bit for bit (the tests compare them with
datasketch's own), computed here: importing datasketch imports scipy, 0.6 s of CPU for each
process that makes signatures, the daemon's extraction workers, at every start; the index's
band parameters are datasketch's choice too (`band_params`).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from alerts.normalize import normalise

NUM_PERM = 128
SEED = 1
# Fewer distinct shingles than this (a title alone, an empty body) says too little to call two
# texts the same story: such articles stay out of the index.
MIN_SHINGLES = 20
# datasketch ≥ 2's default scheme, "affine32": a shingle's 32-bit hash is mixed by MurmurHash3's
# finalizer, then permuted by h → a·h + b (mod 2^32, `a` odd) for each of the NUM_PERM
# permutations, drawn from numpy's RandomState(SEED) as datasketch draws them. A stored signature
# is the NUM_PERM minima, 4 × NUM_PERM bytes.
_DTYPE = np.dtype("<u4")
_PERMUTATIONS = np.random.RandomState(SEED)
_A = _PERMUTATIONS.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
_B = _PERMUTATIONS.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)


def flat_text(title: str, paragraphs: Iterable[str]) -> str:
    """Title and body normalised (diacritics, case, hamza forms folded) and whitespace-collapsed:
    the text both the exact-copy hash and the shingles are taken from."""
    return " ".join(normalise("\n".join((title, *paragraphs))).split())


def char_shingles(flat: str, size: int = 5) -> set[str]:
    return {flat[i : i + size] for i in range(len(flat) - size + 1)}


def _mix(hashes: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer: spreads crc32's structure over all bits."""
    hashes = hashes ^ (hashes >> np.uint32(16))
    hashes = hashes * np.uint32(0x85EBCA6B)
    hashes = hashes ^ (hashes >> np.uint32(13))
    hashes = hashes * np.uint32(0xC2B2AE35)
    return hashes ^ (hashes >> np.uint32(16))


def signature_of_shingles(shingles: set[str]) -> bytes | None:
    """crc32 of each shingle: stable across processes and Python versions (unlike `hash`), and
    ~3× faster than datasketch's default SHA-1."""
    if len(shingles) < MIN_SHINGLES:
        return None
    hashes = np.fromiter((zlib.crc32(s.encode("utf-8")) for s in shingles), np.uint32)
    permuted = _mix(hashes)[:, None] * _A + _B
    return permuted.min(axis=0).astype(_DTYPE).tobytes()


@dataclass(frozen=True)
class Fingerprint:
    content_hash: str
    signature: bytes | None


def fingerprint(title: str, paragraphs: Sequence[str]) -> Fingerprint:
    """Exact-copy hash and MinHash from one normalisation of the text, which is most of the cost
    (a few ms for a long article): the daemon computes it in the extraction workers."""
    flat = flat_text(title, paragraphs)
    digest = hashlib.sha256(flat.encode("utf-8")).hexdigest()
    return Fingerprint(digest, signature_of_shingles(char_shingles(flat)))


def _values(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=_DTYPE)


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the two texts' shingle sets."""
    return float(np.mean(_values(a) == _values(b)))


def band_params(threshold: float) -> tuple[int, int]:
    """(bands, rows per band) minimising false positives plus false negatives at the threshold,
    weighted equally, as datasketch's MinHashLSH chooses them: two texts of similarity s share a
    band with probability 1 - (1 - s^r)^b; the errors are its integral below the threshold and
    its complement's above. Numerically, on a fine grid, rather than through datasketch's
    private helper and scipy."""
    pairs = np.array(
        [(b, r) for b in range(1, NUM_PERM + 1) for r in range(1, NUM_PERM // b + 1)], dtype=float
    )
    below = np.linspace(0.0, threshold, 201)
    above = np.linspace(threshold, 1.0, 201)
    bands, rows = pairs[:, :1], pairs[:, 1:]
    false_positive = np.trapezoid(1 - (1 - below**rows) ** bands, below, axis=1)
    false_negative = np.trapezoid((1 - above**rows) ** bands, above, axis=1)
    best = pairs[np.argmin(false_positive + false_negative)]
    return int(best[0]), int(best[1])


class Banding:
    """How signatures are cut into LSH bands at a threshold (`band_params`): each band's hash
    values folded into one 64-bit hash salted by the band's number, so the hashes of all bands
    can share one sorted array (or one indexed table column) without two bands colliding by
    construction. The in-memory index and PostgreSQL's band table both cut them here, so a text
    has the same band hashes on both engines."""

    def __init__(self, threshold: float) -> None:
        self.bands, self.rows = band_params(threshold)
        self._salts = np.arange(self.bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        self._weights = np.uint64(0x100000001B3) ** np.arange(self.rows, dtype=np.uint64)

    def of_many(self, matrix: np.ndarray) -> np.ndarray:
        """(n, NUM_PERM) hash values → (n, bands) band hashes; uint64 arithmetic wraps."""
        width = self.bands * self.rows
        grouped = matrix[:, :width].astype(np.uint64).reshape(-1, self.bands, self.rows)
        with np.errstate(over="ignore"):
            return (grouped * self._weights).sum(axis=2, dtype=np.uint64) ^ self._salts

    def of(self, blob: bytes) -> np.ndarray:
        """One signature's band hashes, band 0 first."""
        return self.of_many(_values(blob).reshape(1, NUM_PERM))[0]


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
        self.banding = Banding(threshold)
        self._hashes = np.empty(0, dtype=np.uint64)
        self._ids = np.empty(0, dtype=np.int64)
        self._recent: dict[int, list[int]] = {}
        self._recent_ids: set[int] = set()
        self._count = 0

    def __len__(self) -> int:
        return self._count + len(self._recent_ids)

    def add_all(self, rows: Iterable[tuple[int, bytes]]) -> None:
        ids, blobs = [], []
        for key, blob in rows:
            ids.append(key)
            blobs.append(blob)
        if ids:
            self._merge(np.array(ids, dtype=np.int64), b"".join(blobs))

    def _merge(self, ids: np.ndarray, blobs: bytes) -> None:
        matrix = np.frombuffer(blobs, dtype=_DTYPE).reshape(len(ids), NUM_PERM)
        bands = self.banding.of_many(matrix)
        self._absorb(bands.ravel(), np.repeat(ids, self.banding.bands), len(ids))

    def _absorb(self, hashes: np.ndarray, owners: np.ndarray, articles: int) -> None:
        """Band hashes of `articles` more articles into the sorted arrays."""
        hashes = np.concatenate([self._hashes, hashes])
        owners = np.concatenate([self._ids, owners])
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._ids = hashes[order], owners[order]
        self._count += articles

    def add(self, key: int, blob: bytes) -> None:
        for band in self.banding.of(blob).tolist():
            self._recent.setdefault(band, []).append(key)
        self._recent_ids.add(key)
        if len(self._recent_ids) > max(1000, self._count // 10):
            self._compact()

    def _compact(self) -> None:
        pairs = [(band, key) for band, keys in self._recent.items() for key in keys]
        self._absorb(
            np.array([b for b, _ in pairs], dtype=np.uint64),
            np.array([k for _, k in pairs], dtype=np.int64),
            len(self._recent_ids),
        )
        self._recent.clear()
        self._recent_ids.clear()

    def candidates(self, blob: bytes) -> list[int]:
        bands = self.banding.of(blob)
        starts = np.searchsorted(self._hashes, bands, side="left")
        ends = np.searchsorted(self._hashes, bands, side="right")
        found: set[int] = set()
        for hit in np.flatnonzero(ends > starts).tolist():
            found.update(self._ids[starts[hit] : ends[hit]].tolist())
        if self._recent:
            for band in bands.tolist():
                found.update(self._recent.get(band, ()))
        return sorted(found)
