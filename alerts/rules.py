"""Watchlist rules: the boolean language over concepts and phrases (docs/matching.md §5).

```
rule  := or
or    := and ("OR" and)*
and   := unary ("AND" unary)*
unary := "NOT" unary | atom
atom  := CONCEPT | "quoted phrase" | NEAR/n(or, or) | "(" or ")"
```
Operators are upper-case. Two terms side by side are an error, not an implicit AND: a rule that
silently means something else than its author thought sends the wrong alerts for months.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from alerts.normalize import words

# deeper than any rule a person writes, far below Python's recursion limit
MAX_NESTING = 50


class RuleError(ValueError):
    """A rule that does not parse or names an unknown concept, with where it went wrong."""

    def __init__(self, message: str, position: int, watchlist: str | None = None) -> None:
        self.message = message
        self.position = position
        self.watchlist = watchlist
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"watchlist {self.watchlist!r}: " if self.watchlist is not None else ""
        return f"{where}position {self.position}: {self.message}"


@dataclass(frozen=True)
class ConceptRef:
    name: str
    position: int


@dataclass(frozen=True)
class PhraseRef:
    text: str
    position: int


@dataclass(frozen=True)
class Not:
    operand: Rule


@dataclass(frozen=True)
class And:
    operands: tuple[Rule, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Rule, ...]


@dataclass(frozen=True)
class Near:
    distance: int  # at most this many tokens between the two hits, in one paragraph
    left: Rule
    right: Rule


Rule = ConceptRef | PhraseRef | Not | And | Or | Near

_OPERATORS = ("AND", "OR", "NOT")
_LEXEME = re.compile(r'\s*(?:(?P<punct>[(),])|(?P<quote>")|(?P<word>[^\s()",]+))')
_NEAR = re.compile(r"NEAR/(\d+)")


@dataclass(frozen=True)
class _Lexeme:
    kind: str  # "(", ")", ",", "phrase", "word", "end"
    text: str
    position: int


def _lex(text: str) -> list[_Lexeme]:
    lexemes = []
    position = 0
    while True:
        match = _LEXEME.match(text, position)
        if match is None:
            lexemes.append(_Lexeme("end", "", len(text)))
            return lexemes
        start = match.start(match.lastgroup or 0)
        if match.lastgroup == "punct":
            lexemes.append(_Lexeme(match.group("punct"), match.group("punct"), start))
            position = match.end()
        elif match.lastgroup == "quote":
            close = text.find('"', match.end())
            if close < 0:
                raise RuleError('unterminated quoted phrase (missing closing ")', start)
            lexemes.append(_Lexeme("phrase", text[match.end() : close], start))
            position = close + 1
        else:
            lexemes.append(_Lexeme("word", match.group("word"), start))
            position = match.end()


def _describe(lexeme: _Lexeme) -> str:
    if lexeme.kind == "end":
        return "the end of the rule"
    if lexeme.kind == "phrase":
        return f'"{lexeme.text}"'
    return repr(lexeme.text)


class _Parser:
    def __init__(self, text: str, concepts: Collection[str]) -> None:
        self.lexemes = _lex(text)
        self.index = 0
        self.concepts = concepts
        self.depth = 0

    @property
    def current(self) -> _Lexeme:
        return self.lexemes[self.index]

    def advance(self) -> _Lexeme:
        lexeme = self.current
        self.index += 1
        return lexeme

    def at_word(self, word: str) -> bool:
        return self.current.kind == "word" and self.current.text == word

    def parse(self) -> Rule:
        if self.current.kind == "end":
            raise RuleError("empty rule", self.current.position)
        rule = self.parse_or()
        if self.current.kind == ")":
            raise RuleError("unbalanced ')' has no matching '('", self.current.position)
        if self.current.kind != "end":
            self.fail_adjacent()
        return rule

    def fail_adjacent(self) -> None:
        lexeme = self.current
        if lexeme.kind == "word" and lexeme.text.upper() in _OPERATORS:
            message = f"operators are upper-case: write {lexeme.text.upper()}, not {lexeme.text!r}"
        elif lexeme.kind in ("word", "phrase", "("):
            message = (
                f"missing AND/OR before {_describe(lexeme)} (terms are never implicitly ANDed)"
            )
        else:
            message = f"unexpected {_describe(lexeme)}"
        raise RuleError(message, lexeme.position)

    def parse_or(self) -> Rule:
        operands = [self.parse_and()]
        while self.at_word("OR"):
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Rule:
        operands = [self.parse_unary()]
        while self.at_word("AND"):
            self.advance()
            operands.append(self.parse_unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_unary(self) -> Rule:
        """Every level of nesting (a group, NOT, NEAR's terms) passes here: the depth is capped
        so that a rule nested hundreds deep is an error, not a RecursionError in the parser or
        in every evaluation of the rule."""
        if self.depth >= MAX_NESTING:
            message = f"nested more than {MAX_NESTING} levels deep (parentheses, NOT, NEAR)"
            raise RuleError(message, self.current.position)
        self.depth += 1
        try:
            if self.at_word("NOT"):
                self.advance()
                return Not(self.parse_unary())
            return self.parse_atom()
        finally:
            self.depth -= 1

    def parse_atom(self) -> Rule:
        lexeme = self.current
        if lexeme.kind == "(":
            return self.parse_group()
        if lexeme.kind == "phrase":
            return self.parse_phrase()
        if lexeme.kind == "word" and lexeme.text.partition("/")[0] == "NEAR":
            return self.parse_near()
        if lexeme.kind == "word" and lexeme.text not in _OPERATORS:
            return self.parse_concept()
        expected = "a concept, a quoted phrase, NOT, NEAR/n(…) or '('"
        raise RuleError(f"expected {expected} but found {_describe(lexeme)}", lexeme.position)

    def parse_group(self) -> Rule:
        opening = self.advance()
        rule = self.parse_or()
        self.close(opening)
        return rule

    def close(self, opening: _Lexeme) -> None:
        if self.current.kind == ")":
            self.advance()
            return
        if self.current.kind == "end":
            message = f"unbalanced '(' at position {opening.position} is never closed"
            raise RuleError(message, opening.position)
        self.fail_adjacent()

    def parse_phrase(self) -> Rule:
        lexeme = self.advance()
        if not words(lexeme.text):
            raise RuleError("a quoted phrase needs at least one word", lexeme.position)
        return PhraseRef(lexeme.text, lexeme.position)

    def parse_near(self) -> Rule:
        lexeme = self.advance()
        distance = _NEAR.fullmatch(lexeme.text)
        if distance is None:
            message = f"{lexeme.text!r}: write NEAR/n(a, b) with n a number of tokens"
            raise RuleError(message, lexeme.position)
        opening = self.expect("(", f"'(' after {lexeme.text}")
        left = self.parse_or()
        self.expect(",", f"',' between the two terms of {lexeme.text}")
        right = self.parse_or()
        self.close(opening)
        return Near(int(distance.group(1)), left, right)

    def expect(self, kind: str, what: str) -> _Lexeme:
        if self.current.kind != kind:
            found = _describe(self.current)
            raise RuleError(f"expected {what}, found {found}", self.current.position)
        return self.advance()

    def parse_concept(self) -> Rule:
        lexeme = self.advance()
        if lexeme.text not in self.concepts:
            known = ", ".join(sorted(self.concepts)) or "none"
            hint = ""
            if lexeme.text.upper() in (*_OPERATORS, "NEAR"):
                hint = f"; operators are upper-case ({lexeme.text.upper()})"
            message = f"unknown concept {lexeme.text!r} (known: {known}){hint}"
            raise RuleError(message, lexeme.position)
        return ConceptRef(lexeme.text, lexeme.position)


def parse_rule(text: str, concepts: Collection[str]) -> Rule:
    """Parse a watchlist rule; `concepts` are the names the rule may use (the config's keys)."""
    return _Parser(text, concepts).parse()


def walk(rule: Rule) -> Iterator[Rule]:
    """Every node of a rule, the rule itself first."""
    yield rule
    if isinstance(rule, Not):
        yield from walk(rule.operand)
    elif isinstance(rule, And | Or):
        for operand in rule.operands:
            yield from walk(operand)
    elif isinstance(rule, Near):
        yield from walk(rule.left)
        yield from walk(rule.right)


def rule_concepts(rule: Rule) -> set[str]:
    """Concepts the rule names."""
    return {node.name for node in walk(rule) if isinstance(node, ConceptRef)}


def rule_phrases(rule: Rule) -> set[str]:
    """Quoted phrases the rule uses as one-off aliases."""
    return {node.text for node in walk(rule) if isinstance(node, PhraseRef)}
