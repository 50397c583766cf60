"""Text for a terminal: stored strings come from web pages, and a title holding `ESC ] 0;…`
retitles the operator's window, `ESC [ 2J` clears it, a carriage return hides what precedes it,
and a bidi override (U+202E) shows text reversed. Every CLI table and text report goes through
`printable`; JSON output is left exact (json escapes C0 controls itself)."""

from __future__ import annotations

import re

# C0 controls but newline, DEL, C1 controls, and the bidi embeddings, overrides and isolates
# (marks such as U+200F stay: Arabic text uses them and they cannot hide or reorder a line).
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character but newline shown as an escape (`\\x1b`,
    `\\u202e`): visible to the reader, inert for the terminal."""
    return _UNSAFE.sub(_escape, text)
