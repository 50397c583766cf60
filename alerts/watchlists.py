"""Watchlists as users configure them: a rule, optional source/language filters, channels.

The daemon and `newswatch match` call the same `Watchlists.match`, so a backtest or a manual
check gives exactly the answer the daemon would have given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.concepts import ConceptSpec
from alerts.document import Document
from alerts.matcher import Matcher, WatchlistMatch

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=80)]


class WatchlistConfig(BaseModel):
    """One watchlist as the YAML writes it: its rule over concepts, where to send its alerts,
    and the sources and languages it is limited to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    rule: str
    notify: list[str] = []
    sources: list[str] | None = None
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]] | None = None
    # one rate-limited notice when an alerted story reaches more outlets or its text changes
    notify_updates: bool = False
    # one alert per event (independently written reports of one happening), or per story
    group: Literal["event", "story"] = "event"

    def applies_to(self, source: str | None, language: str | None) -> bool:
        """Filters only narrow: a document with no known source or language is not excluded."""
        if self.sources is not None and source is not None and source not in self.sources:
            return False
        return not (
            self.languages is not None and language is not None and language not in self.languages
        )


class Watchlists:
    """Every configured watchlist behind one `match` call: the filters pick the watchlists that
    apply to a document, one shared `Matcher` answers for all of them."""

    def __init__(
        self, concepts: Mapping[str, ConceptSpec], watchlists: Sequence[WatchlistConfig]
    ) -> None:
        self.configs = {w.name: w for w in watchlists}
        self.matcher = Matcher(concepts, {w.name: w.rule for w in watchlists})

    def match(self, doc: Document, source: str | None = None) -> list[WatchlistMatch]:
        wanted = [w.name for w in self.configs.values() if w.applies_to(source, doc.language)]
        return self.matcher.match(doc, wanted) if wanted else []
