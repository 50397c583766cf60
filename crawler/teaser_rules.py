"""The words and names that give a teaser away, as rules on strings: the list that grows with
each new site.

trafilatura's boilerplate filters key on English and German class names and words: Arabic and
French "read also" labels and the class names of related-article, comment and share blocks are
listed here. `crawler.teasers` applies these rules to the page tree; `crawler.extract` checks
the paragraphs trafilatura returns once more for labels. A label rule reads only the head of a
text, and a class-name rule is cached per distinct class-and-id string, so both are cheap to
ask of every element.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

# --- "read also" labels -----------------------------------------------------------------------

# Labels that open a teaser whatever follows them: no article sentence starts this way.
_STRONG_LABELS = (
    "اقرأ أيضا",
    "إقرأ أيضا",
    "اقرأ أيضاً",
    "اقرأ كذلك",
    "اقرأ المزيد",
    "إقرأ المزيد",
    "طالع أيضا",
    "شاهد أيضا",
    "مواضيع ذات صلة",
    "أخبار ذات صلة",
    "مقالات ذات صلة",
    "Lire aussi",
    "À lire aussi",
    "A lire aussi",
    "Lire également",
    "À lire également",
    "Voir aussi",
    "Read also",
    "Also read",
)
# Labels that can also open an ordinary sentence ("Related charges were filed…"): they count only
# when a separator or nothing follows them.
_WEAK_LABELS = (
    "Sur le même sujet",
    "Lire la suite",
    "Read more",
    "Related",
    "See also",
)
# Words that may follow a label in a heading ("Related articles", "Lire aussi sur le sujet").
_LABEL_HEADING_MAX_WORDS = 4
_WEAK_LABEL_HEADING_WORDS = frozenset(
    {"articles", "article", "posts", "stories", "news", "content", "coverage", "links", "reading"}
)
WORD = re.compile(r"\w+")
# The first letter or digit: what follows leading spaces, punctuation and underscores.
_FIRST_WORD_CHAR = re.compile(r"[^\W_]")
_LEADING_SPACE = re.compile(r"\s*")
_SEPARATOR = re.compile(r"^\s*(?:[:：|»>\-–—•.…،]|$)")
LABEL_MAX_CHARS = 60
_LABEL_SCAN_CHARS = 80


def fold(text: str) -> str:
    """Fold case, accents, Arabic hamza forms, tanween and tatweel, so "اقرأ أيضاً", "إقرأ ايضا"
    and "A LIRE AUSSI" all compare equal to their label."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    stripped = stripped.replace("\u0640", "").replace("ٱ", "ا").replace("ى", "ي").replace("ة", "ه")
    return " ".join(stripped.casefold().split())


_FOLDED_STRONG = tuple(fold(label) for label in _STRONG_LABELS)
_FOLDED_WEAK = tuple(fold(label) for label in _WEAK_LABELS)
_LABEL_INITIALS = frozenset(label[0] for label in _FOLDED_STRONG + _FOLDED_WEAK)


@lru_cache(maxsize=4096)
def _fold_initial(char: str) -> str:
    """Every element's text is checked for a label: its first letter, folded once per letter,
    rules out almost all of them without folding the text."""
    return fold(char)


class Label(NamedTuple):
    """A label at the start of a text: strong or weak, its length, the folded head after it."""

    strong: bool
    length: int
    rest: str

    @property
    def opens_teaser(self) -> bool:
        """A strong label always does; a weak one only before a separator or nothing."""
        return self.strong or _SEPARATOR.match(self.rest) is not None


def split_label(text: str) -> Label | None:
    """The label a text starts with, if any, and the (folded) head of the text after it.

    Only the head of the text is folded: labels are short and containers' texts are long."""
    end = _LEADING_SPACE.match(text).end() + _LABEL_SCAN_CHARS
    initial = _FIRST_WORD_CHAR.search(text, 0, end)
    if initial is None or _fold_initial(initial.group()) not in _LABEL_INITIALS:
        return None
    folded = fold(text[initial.start() : end])
    for labels, strong in ((_FOLDED_STRONG, True), (_FOLDED_WEAK, False)):
        for label in labels:
            rest = folded[len(label) :]
            if folded.startswith(label) and not (rest[:1].isalnum() or rest[:1] == "_"):
                return Label(strong, len(label), rest)
    return None


def starts_with_label(text: str) -> bool:
    """Whether a paragraph opens as a teaser: a strong label, or a weak one plus a separator."""
    label = split_label(text)
    return label is not None and label.opens_teaser


def is_label_heading(text: str) -> bool:
    """Whether a short text is only a label, maybe with a few words ("Lire aussi sur ce sujet")."""
    if len(text) > LABEL_MAX_CHARS:
        return False
    label = split_label(text)
    if label is None:
        return False
    words = WORD.findall(label.rest)
    if label.strong:
        return len(words) <= _LABEL_HEADING_MAX_WORDS
    return all(word in _WEAK_LABEL_HEADING_WORDS for word in words) and len(words) <= 2


# --- class / id names of boilerplate blocks -------------------------------------------------

# A class or id word sequence names a boilerplate block when one of these markers is followed
# only by words that name a kind of container: "related-posts", "post-share-buttons",
# "comments-area" are blocks; "comments-open", "tag-morocco" and "article-body-related-to-nothing"
# are not (WordPress puts the first two on <body> and <article>).
_BLOCK_MARKERS: tuple[tuple[str, ...], ...] = (
    ("related",),
    ("relatedposts",),
    ("read", "also"),
    ("readalso",),
    ("also", "read"),
    ("lire", "aussi"),
    ("more", "news"),
    ("more", "articles"),
    ("more", "stories"),
    ("recommended",),
    ("recommendations",),
    ("teaser",),
    ("teasers",),
    ("comments",),
    ("comment",),
    ("share",),
    ("sharing",),
    ("sharedaddy",),
    ("tags",),
    ("tagcloud",),
)
# Looked up by a name's word, so a name of a thousand words is read once, not once per marker.
_MARKERS_BY_FIRST_WORD = {
    first: tuple(marker for marker in _BLOCK_MARKERS if marker[0] == first)
    for first in {marker[0] for marker in _BLOCK_MARKERS}
}
_CONTAINER_WORDS = frozenset(
    ("posts", "post", "articles", "article", "news", "stories", "story", "links", "link", "list")
)
_CONTAINER_WORDS |= {"lists", "box", "block", "blocks", "widget", "widgets", "section", "area"}
_CONTAINER_WORDS |= {"container", "wrapper", "wrap", "items", "item", "content", "module", "bar"}
_CONTAINER_WORDS |= {"buttons", "button", "tools", "toolbar", "icons", "panel", "sidebar", "inner"}
_CONTAINER_WORDS |= {"outer", "holder", "grid", "cards", "card", "carousel", "slider", "title"}
_CONTAINER_WORDS |= {"heading", "header", "label", "thread", "form", "respond", "feed", "rail"}
_CONTAINER_WORDS |= {"zone", "unit", "entries", "footer", "top", "bottom", "below", "above"}
_CONTAINER_WORDS |= {"head", "col", "column", "row", "side"}
# Words that make the name a state of something else: "has-comments", "no-share".
_NEGATING_WORDS = frozenset({"has", "no", "with", "is", "show", "hide", "enable", "disable"})
# Third-party widget names: wherever they appear in a name, the element is theirs.
_VENDOR_WORDS = frozenset({"outbrain", "taboola", "yarpp", "relatedposts", "sharedaddy"})
# Cheap first test: most class names on a page contain none of the marker words.
_MARKER_HINT = re.compile(
    r"relat|read|also|lire|more|recommend|teaser|comment|shar|tag|outbrain|taboola|yarpp"
)
# Class-and-id strings up to this long are remembered (4,096 of them, ~1 MB at most).
_REMEMBERED_NAMES_MAX_CHARS = 256
_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _name_words(name: str) -> list[str]:
    return [word.lower() for word in _NAME_WORD.findall(name)]


def _names_boilerplate(name: str) -> bool:
    """Whether one class name or id names a related/teaser/comments/share/tags block. Linear in
    the name's words: each word is looked up once, and a marker's neighbours are read in place,
    never copied, as a hostile page can repeat "related" a hundred thousand times in one name."""
    words = _name_words(name)
    if _VENDOR_WORDS.intersection(words):
        return True
    for start, word in enumerate(words):
        for marker in _MARKERS_BY_FIRST_WORD.get(word, ()):
            end = start + len(marker)
            if tuple(words[start:end]) != marker:
                continue
            if start and words[start - 1] in _NEGATING_WORDS:
                continue
            if _only_containers(words, end):
                return True
    return False


def _only_containers(words: list[str], start: int) -> bool:
    """Whether the words from `start` on all name a kind of container; read in place, without
    the copy a slice makes."""
    return all(words[i] in _CONTAINER_WORDS or words[i].isdigit() for i in range(start, len(words)))


def is_boilerplate_name(names: str) -> bool:
    """Whether an element's class-and-id string names a boilerplate block. A page repeats a few
    dozen such strings over thousands of elements, so short ones are remembered; long ones are
    not, as a worker lives as long as the daemon and a hostile site's megabyte-long class names
    must not pile up in it."""
    if len(names) > _REMEMBERED_NAMES_MAX_CHARS:
        return _read_names(names)
    return _remembered_names(names)


def _read_names(names: str) -> bool:
    if _MARKER_HINT.search(names.lower()) is None:
        return False
    return any(map(_names_boilerplate, names.split()))


_remembered_names = lru_cache(maxsize=4096)(_read_names)
