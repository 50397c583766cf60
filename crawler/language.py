"""Which language a text is in: py3langid, tuned for the project's three languages.

The model takes 0.8 s and 75 MB to load. The daemon loads it once, before it forks its
extraction workers, which share it; it then drops its own reference, as it never detects a
language itself.
"""

from __future__ import annotations

import sys
import threading

from py3langid.langid import MODEL_FILE, LanguageIdentifier

# The project's users read these: on a short text (a feed summary, a headline) py3langid's scores
# are close, and one of these within the margin of the best guess is the likelier answer.
_PREFERRED_LANGUAGES = ("ar", "fr", "en")
_PREFERENCE_MARGIN = 5.0
# py3langid also names languages without an ISO 639-1 code: the Arabic varieties fold into "ar".
_ARABIC_VARIETIES = frozenset({"arz", "ary", "apc", "acm", "ajp", "afb", "aeb", "arq", "ars"})
_MIN_LETTERS = 3
_DETECTION_SAMPLE_CHARS = 1000


_SWITCH_INTERVAL = sys.getswitchinterval()
_LOADING_SWITCH_INTERVAL = 0.0005
_model: LanguageIdentifier | None = None
_model_loader: threading.Thread | None = None


def _load_model() -> None:
    global _model
    _model = LanguageIdentifier.from_model_file(MODEL_FILE)


def load_model_soon() -> None:
    """Start loading the model in a thread, first thing in a command that will extract pages.
    Most of the load is LZMA decompression, which releases the GIL: the daemon imports its
    modules and reads its config meanwhile, and `model` joins the thread before the workers are
    forked. While it runs, the interpreter hands the GIL over every 0.5 ms instead of 5: the
    decompression gives it back between 8 KB chunks, and each wait for it was a 5 ms stall."""
    global _model_loader
    if _model is None and _model_loader is None:
        sys.setswitchinterval(_LOADING_SWITCH_INTERVAL)
        _model_loader = threading.Thread(target=_load_model, name="language-model", daemon=True)
        _model_loader.start()


def model() -> LanguageIdentifier:
    global _model_loader
    if _model_loader is not None:
        _model_loader.join()
        _model_loader = None
        sys.setswitchinterval(_SWITCH_INTERVAL)
    if _model is None:
        _load_model()
    assert _model is not None
    return _model


def forget_model() -> None:
    """Drop this process's reference: the daemon never detects a language itself, its workers
    do, with the copy they inherited when forked."""
    global _model
    _model = None


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language, None when the text is too short to tell or the
    language has no two-letter code."""
    sample = text[:_DETECTION_SAMPLE_CHARS]
    if sum(c.isalpha() for c in sample) < _MIN_LETTERS:
        return None
    ranking = model().rank(sample)
    best_score = ranking[0][1]
    for code, score in ranking:
        if best_score - score > _PREFERENCE_MARGIN:
            break
        if code in _PREFERRED_LANGUAGES:
            return code
    code = ranking[0][0]
    if code in _ARABIC_VARIETIES:
        return "ar"
    return code if len(code) == 2 else None
