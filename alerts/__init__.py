"""newswatch's alerts library: which watchlists a text matches, and telling people once.

Matching: text normalised the same way for Arabic, French and English (`normalize`), concepts
and their aliases (`concepts`, `presets`), boolean rules with NEAR (`rules`), compiled once into
a `Matcher` that every document reuses. Messages: an alert, a bundle (digest or summary) or a
notice, with the webhook payload contract (`message`) and renderings for people (`render`).
Delivery: every message is an outbox row (`outbox`) before any send is tried, sent through the
configured channels (`channels`, `senders`, `mail`) with retries (`delivery`), digests and
health notices included. The library creates and migrates its own tables (`schema`) in its
host's database file, and stores times in one form (`times`).

It never imports the crawler: any program that hands it documents and a database can use it.
The names below are what its host (the crawler, its CLI and demo) and its tests use.
"""

from alerts import digest, health, outbox, schema, times
from alerts.channels import (
    ChannelConfig,
    DeliveryError,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
)
from alerts.concepts import AliasSpec, ConceptSpec
from alerts.delivery import DeliveryReport, RetryPolicy, deliver_due
from alerts.document import PARAGRAPH_SEPARATOR, Document
from alerts.health import HealthPolicy, SourceHealth
from alerts.matcher import Hit, Matcher, WatchlistMatch
from alerts.message import ARTICLE_KEYS, Alert, Message, Notice
from alerts.normalize import normalise
from alerts.presets import PRESET_LANGUAGES, country_codes, load_preset
from alerts.rules import RuleError, parse_rule, rule_concepts
from alerts.schema import open_outbox
from alerts.senders import send, sign
from alerts.snippets import HITS_SHOWN, ConceptWords, words_by_concept
from alerts.times import format_duration, parse_time, timestamp
from alerts.watchlists import Name, WatchlistConfig, Watchlists

__all__ = [
    "ARTICLE_KEYS",
    "HITS_SHOWN",
    "PARAGRAPH_SEPARATOR",
    "PRESET_LANGUAGES",
    "Alert",
    "AliasSpec",
    "ChannelConfig",
    "ConceptSpec",
    "ConceptWords",
    "DeliveryError",
    "DeliveryReport",
    "Document",
    "EmailChannel",
    "HealthPolicy",
    "Hit",
    "Matcher",
    "Message",
    "Name",
    "Notice",
    "RetryPolicy",
    "RuleError",
    "SlackChannel",
    "SourceHealth",
    "WatchlistConfig",
    "WatchlistMatch",
    "Watchlists",
    "WebhookChannel",
    "country_codes",
    "deliver_due",
    "digest",
    "format_duration",
    "health",
    "load_preset",
    "normalise",
    "open_outbox",
    "outbox",
    "parse_rule",
    "parse_time",
    "rule_concepts",
    "schema",
    "send",
    "sign",
    "times",
    "timestamp",
    "words_by_concept",
]
