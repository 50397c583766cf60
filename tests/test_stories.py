"""One story, one alert: copies on other outlets, tracking parameters, corrections and restarts,
end to end through `newswatch run --once` against news sites served from tmp dirs on 127.0.0.1."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.dedup import (
    NUM_PERM,
    SEED,
    band_params,
    char_shingles,
    fingerprint,
    flat_text,
    signature_of_shingles,
    similarity,
)
from crawler.demo.site import DemoSite
from tests.support import newswatch, rows, run_once, value, write_config

CONCEPTS = """
concepts:
  morocco: {en: [Morocco, Moroccan, Rabat]}
  france: {en: [France, French, Paris]}
  extradition: {en: [{term: extradition, mode: stem}, {term: extradite, mode: stem}]}
"""

STORY = [
    "RABAT — Moroccan authorities on Friday extradited to France a 41-year-old French national"
    " wanted for his alleged role in an armed robbery of a jewellery store in Lyon, the justice"
    " ministry said in a statement.",
    "The man, whose name was not released, was arrested in August in the coastal city of Agadir,"
    " where he had rented a villa under a borrowed identity, according to the police.",
    "The Court of Cassation approved the extradition request last month, rejecting his lawyers'"
    " argument that he risked an unfair trial in France.",
    "He was handed over to French police officers at Rabat-Salé airport and flown to Paris on a"
    " scheduled flight, a person familiar with the case said.",
    "Two alleged accomplices are already in custody in France and are due to stand trial next"
    " spring, prosecutors in Lyon said.",
]
# Outlet B: a new title, a sentence added, the last one dropped.
COPY_B = [
    *STORY[:3],
    STORY[3] + " The French embassy in Rabat declined to comment.",
    "This story was provided by a wire service.",
]
# Outlet C: paragraphs reordered, a credit line, its own title.
COPY_C = [STORY[0], STORY[2], STORY[1], STORY[4], STORY[3], "Photo: AFP. All rights reserved."]


def page(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"{body}</article></body></html>"
    )


def rss(links: list[str]) -> str:
    items = "".join(
        f"<item><title>item {i}</title><link>{{{{BASE_URL}}}}{link}</link></item>"
        for i, link in enumerate(links)
    )
    return f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>"


def atom(link: str, updated: str) -> str:
    return (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>d</title><id>urn:d</id>"
        f"<updated>{updated}</updated><entry><title>entry</title><id>urn:d:1</id>"
        f"<link href='{{{{BASE_URL}}}}{link}'/><updated>{updated}</updated></entry></feed>"
    )


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def config(tmp: Path, site: DemoSite, sources: list[str], watchlists: str, channels: str) -> Path:
    listed = {
        name: {"url": f"{site.base_url}{url}", "kind": "feed", "language": "en"}
        for name, url in (s.split("=") for s in sources)
    }
    return write_config(
        tmp,
        listed,
        crawl="{download_timeout: 5s, obey_robots_txt: false}",
        more=f"dedup: {{update_interval: 1ms}}\n{CONCEPTS}\n"
        f"watchlists:\n{watchlists}\nchannels:\n{channels}",
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_three_outlets_one_story_one_alert_per_watchlist_and_channel(tmp_path, blank_site, hook):
    root = Path(blank_site.root)
    for outlet in "abc":
        write(root, f"/{outlet}/feed.xml", rss([]))
    path = config(
        tmp_path,
        blank_site,
        ["a=/a/feed.xml", "b=/b/feed.xml", "c=/c/feed.xml"],
        "  - {name: mfe, rule: 'morocco AND france AND extradition', notify: [hook, file]}\n"
        "  - {name: mf, rule: 'morocco AND france', notify: [hook, file]}\n"
        "  - {name: follow, rule: 'morocco AND extradition', notify: [file],"
        " notify_updates: true}",
        f"  hook: {{type: webhook, url: '{hook.url}'}}\n  file: {{type: file, path: alerts.jsonl}}",
    )
    copies = [
        ("a", "/a/2026/11/28/extradition-lyon.html", "Morocco extradites Lyon robbery suspect"),
        ("b", "/b/world/french-fugitive-sent-home.html", "French fugitive sent home from Morocco"),
        ("c", "/c/news/12345.html", "Lyon jewellery robbery suspect handed to France"),
    ]
    texts = {"a": STORY, "b": COPY_B, "c": COPY_C}
    for outlet, link, title in copies:  # a restart (a new process) between the copies
        write(root, link, page(title, texts[outlet]))
        write(root, f"/{outlet}/feed.xml", rss([link]))
        run_once(path)

    file_alerts = lines(tmp_path / "alerts.jsonl")
    first = sorted(a["watchlist"] for a in file_alerts if ":update:" not in a["id"])
    assert first == ["follow", "mf", "mfe"]
    assert sorted(r.json["watchlist"] for r in hook.requests) == ["mf", "mfe"]
    updates = [a for a in file_alerts if ":update:" in a["id"]]
    assert [(a["watchlist"], a["story"]["articles"]) for a in updates] == [
        ("follow", 2),
        ("follow", 3),
    ]
    assert [a["article"]["source"] for a in updates] == ["b", "c"]
    assert value(path, "SELECT count(*) FROM articles") == 3
    assert value(path, "SELECT count(DISTINCT story_id) FROM articles") == 1

    result = newswatch("stories", "--since", "1d", "--json", "--config", str(path))
    assert result.returncode == 0, result.stderr
    (story,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert story["articles"] == 3
    assert story["outlets"] == ["a", "b", "c"]
    assert story["title"] == "Morocco extradites Lyon robbery suspect"


def test_same_url_with_and_without_utm_source_is_one_article(tmp_path, blank_site, hook):
    root = Path(blank_site.root)
    link = "/news/extradition.html"
    write(root, link, page("Morocco extradites suspect to France", STORY))
    write(root, "/feed.xml", rss([f"{link}?utm_source=rss&utm_medium=feed", link, link + "#x"]))
    path = config(
        tmp_path,
        blank_site,
        ["s=/feed.xml"],
        "  - {name: mfe, rule: 'morocco AND france AND extradition', notify: [hook]}",
        f"  hook: {{type: webhook, url: '{hook.url}'}}",
    )

    run_once(path)
    run_once(path)

    assert value(path, "SELECT count(*) FROM articles") == 1
    assert len([r for r in blank_site.requests if r.path.startswith(link)]) == 1
    assert len(hook.requests) == 1


def test_a_correction_adding_the_missing_concept_alerts_once(tmp_path, blank_site, hook):
    root = Path(blank_site.root)
    link = "/news/agadir-arrest.html"
    without = [p.replace("extradited", "sent").replace("extradition", "transfer") for p in STORY]
    write(root, link, page("Suspect arrested in Agadir", without))
    write(root, "/atom.xml", atom(link, "2026-11-28T08:00:00Z"))
    path = config(
        tmp_path,
        blank_site,
        ["d=/atom.xml"],
        "  - {name: mfe, rule: 'morocco AND france AND extradition', notify: [hook]}",
        f"  hook: {{type: webhook, url: '{hook.url}'}}",
    )
    run_once(path)
    assert hook.requests == []

    write(root, link, page("Suspect arrested in Agadir to be extradited", STORY))
    # the correction is dated after the first fetch: an earlier date is a version already read
    corrected = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    write(root, "/atom.xml", atom(link, corrected))
    run_once(path)
    run_once(path)

    assert [r.json["watchlist"] for r in hook.requests] == ["mfe"]
    assert hook.requests[0].json["article"]["title"].endswith("to be extradited")
    assert rows(path, "SELECT count(*) AS articles, max(version) AS version FROM articles") == [
        {"articles": 1, "version": 2}
    ]
    assert rows(path, "SELECT title FROM article_versions") == [
        {"title": "Suspect arrested in Agadir"}
    ]
    assert len([r for r in blank_site.requests if r.path == link]) == 2


def later() -> str:
    """An atom `updated` after the first fetch: an earlier date is a version already read."""
    return (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def follow_config(tmp_path: Path, site: DemoSite, hook) -> Path:
    return config(
        tmp_path,
        site,
        ["d=/atom.xml"],
        "  - {name: follow, rule: 'morocco AND extradition', notify: [hook, file],"
        " notify_updates: true}",
        f"  hook: {{type: webhook, url: '{hook.url}'}}\n  file: {{type: file, path: alerts.jsonl}}",
    )


def alerted_story(tmp_path: Path, site: DemoSite, hook) -> tuple[Path, str, Path]:
    """A story on a watchlist with update notices, polled once: its site folder, its page's
    link and the config."""
    root = Path(site.root)
    link = "/news/extradition.html"
    write(root, link, page("Morocco extradites Lyon robbery suspect", STORY))
    write(root, "/atom.xml", atom(link, "2026-11-28T08:00:00Z"))
    path = follow_config(tmp_path, site, hook)
    run_once(path)
    return root, link, path


def test_a_material_correction_sends_one_update_notice_per_alerted_channel(
    tmp_path, blank_site, hook
):
    root, link, path = alerted_story(tmp_path, blank_site, hook)
    rewritten = [
        STORY[0],
        "His family lodged an appeal against the extradition in Rabat on Monday, saying he had"
        " been questioned for two days without an interpreter or a lawyer of his choosing.",
        "A Moroccan judge will hear the appeal next week; French prosecutors in Lyon said the"
        " trial date would not move whatever the outcome of the hearing in Morocco.",
    ]
    write(root, link, page("Extradited suspect's family appeals in Rabat", rewritten))
    write(root, "/atom.xml", atom(link, later()))
    run_once(path)

    ids = [r.json["id"] for r in hook.requests]
    assert len(ids) == 2 and ids[1] == f"{ids[0]}:update:1"
    assert (
        hook.requests[1].json["article"]["title"] == "Extradited suspect's family appeals in Rabat"
    )
    filed = [a["id"] for a in lines(tmp_path / "alerts.jsonl")]
    assert len(filed) == 2 and filed[1] == f"{filed[0]}:update:1" and filed[0] != ids[0]


def test_a_correction_whose_page_turned_to_garbage_keeps_the_text_and_sends_nothing(
    tmp_path, blank_site, hook
):
    root, link, path = alerted_story(tmp_path, blank_site, hook)
    (root / link.lstrip("/")).write_bytes(b"\x00\xff<p>\x1b[2J" * 20_000)
    write(root, "/atom.xml", atom(link, later()))
    run_once(path)

    assert len(hook.requests) == 1
    assert rows(path, "SELECT version, extraction, title FROM articles") == [
        {"version": 1, "extraction": "page", "title": "Morocco extradites Lyon robbery suspect"}
    ]
    assert len([r for r in blank_site.requests if r.path == link]) == 2


def signature(title: str, paragraphs: list[str]) -> bytes | None:
    return fingerprint(title, paragraphs).signature


def test_signatures_tell_edited_copies_from_other_stories():
    original = signature("Morocco extradites Lyon robbery suspect", STORY)
    other = signature(
        "Morocco and France sign a judicial cooperation plan",
        [
            "RABAT — Morocco and France signed on Monday a plan to train magistrates together,"
            " the justice ministry said in a statement, after talks in Paris last month.",
            "The plan covers exchanges of judges and prosecutors between Rabat and Paris.",
        ],
    )
    assert original and other
    for title, copy in (("French fugitive sent home", COPY_B), ("Suspect handed over", COPY_C)):
        edited = signature(title, copy)
        assert edited and similarity(original, edited) >= 0.5
    assert similarity(original, other) < 0.2
    arabic = ["سلمت السلطات المغربية يوم الجمعة إلى فرنسا مواطنا فرنسيا مطلوبا في قضية سطو مسلح."]
    harakat = ["سَلَّمَت السلطات المغربية يوم الجمعة إلى فرنسا مواطنا فرنسيا مطلوبا في قضية سطو مسلح."]
    assert similarity(signature("", arabic), signature("", harakat)) == 1.0


@pytest.mark.parametrize("threshold", [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
def test_band_parameters_are_the_ones_datasketch_would_choose(threshold):
    from datasketch.lsh import _optimal_param

    assert band_params(threshold) == _optimal_param(threshold, NUM_PERM, 0.5, 0.5)


def test_signatures_are_datasketch_minhashes_bit_for_bit():
    """Signatures stored by earlier versions, made with datasketch, stay comparable."""
    from datasketch import MinHash

    flat = flat_text("Morocco extradites Lyon robbery suspect", STORY)
    for shingles in (char_shingles(flat), char_shingles("المغرب وفرنسا " * 3 + flat[:40])):
        reference = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=zlib.crc32, scheme="affine32")
        reference.update_batch([s.encode("utf-8") for s in shingles])
        expected = reference.hashvalues.astype("<u4").tobytes()
        assert signature_of_shingles(shingles) == expected
