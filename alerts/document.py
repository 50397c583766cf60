"""The article as the matcher sees it: a title and body paragraphs, teasers already gone.

Paragraphs are kept apart because phrases and NEAR must not reach across them
(docs/matching.md §1.1), and every hit offset indexes `Document.text`, the one string a reader
can check a hit against.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

PARAGRAPH_SEPARATOR = "\n\n"
_TEASER_MARK = "-"


@dataclass(frozen=True)
class Document:
    """A text to match, cut into title and paragraphs: the boundaries phrases and NEAR respect."""

    title: str
    paragraphs: tuple[str, ...]
    language: str | None = None

    def __post_init__(self) -> None:
        # Callers often hold a list; a tuple keeps the document hashable and immutable.
        object.__setattr__(self, "paragraphs", tuple(self.paragraphs))

    @property
    def text(self) -> str:
        """Title and paragraphs as one string: the string hit offsets index into."""
        return self.title + PARAGRAPH_SEPARATOR + PARAGRAPH_SEPARATOR.join(self.paragraphs)

    def blocks(self) -> Iterator[tuple[int, str]]:
        """(offset in `text`, block) for the title and each paragraph, in order."""
        offset = 0
        for block in (self.title, *self.paragraphs):
            yield offset, block
            offset += len(block) + len(PARAGRAPH_SEPARATOR)

    @classmethod
    def from_plain_text(cls, text: str, language: str | None = None) -> Document:
        """Read the plain-text form: first line the title, a `-` line announces a teaser line.

        The teaser headline after a `-` names another article; matching it would alert on a
        story this article is not about.
        """
        title: str | None = None
        paragraphs: list[str] = []
        skip_next = False
        for raw_line in text.splitlines():
            line = raw_line.strip()
            if not line:
                continue
            if line == _TEASER_MARK:
                skip_next = True
            elif skip_next:
                skip_next = False
            elif title is None:
                title = line
            else:
                paragraphs.append(line)
        return cls(title or "", tuple(paragraphs), language)
