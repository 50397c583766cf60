"""A listing or a redirect must not make newswatch reach an internal host. 127.0.0.2 (the whole of
127/8 is loopback on Linux) stands in for one: a server there must receive no request, while the
configured source on 127.0.0.1 is read as usual."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.addresses import AddressPolicy, address_kind
from tests.hostile_site import HostileSite, Reply
from tests.support import rows, run_once, write_config

INTERNAL = "127.0.0.2"
HTML = {"Content-Type": "text/html"}
XML = {"Content-Type": "application/xml"}
PARAGRAPHS = (
    "The court of appeal in Rabat approved the extradition of a French national on Tuesday.",
    "The request had been sent by the French judicial authorities several months earlier.",
    "The decision follows the judicial cooperation agreement signed by the two countries.",
)


def page(title: str) -> bytes:
    body = "".join(f"<p>{p} {title}</p>" for p in PARAGRAPHS)
    return (
        f"<html><head><title>{title}</title></head>"
        f"<body><article><h1>{title}</h1>{body}</article></body></html>"
    ).encode()


def rss(links: list[str]) -> bytes:
    items = "".join(f"<item><title>{link}</title><link>{link}</link></item>" for link in links)
    return f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode()


def urlset(links: list[str]) -> bytes:
    urls = "".join(f"<url><loc>{link}</loc></url>" for link in links)
    return f"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{urls}</urlset>".encode()


def sitemap_index(links: list[str]) -> bytes:
    children = "".join(f"<sitemap><loc>{link}</loc></sitemap>" for link in links)
    return (
        f"<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{children}"
        "</sitemapindex>"
    ).encode()


@pytest.fixture(scope="module")
def internal():
    routes = {
        "/latest/meta-data/iam": Reply(page("instance credentials"), headers=HTML),
        "/admin/delete": Reply(page("everything deleted"), headers=HTML),
        "/sitemap.xml": Reply(urlset(["{BASE}/internal-page.html"]), headers=XML),
        "/internal-page.html": Reply(page("internal page"), headers=HTML),
    }
    with HostileSite(routes, host=INTERNAL) as site:
        yield site


def public_routes(inside: str) -> dict[str, Reply]:
    return {
        "/feed.xml": Reply(
            rss(
                [
                    "{BASE}/good.html",
                    f"{inside}/latest/meta-data/iam",
                    "{BASE}/moved.html",
                ]
            ),
            headers={"Content-Type": "application/rss+xml"},
        ),
        "/good.html": Reply(page("good feed article"), headers=HTML),
        "/moved.html": Reply(status=302, headers={"Location": f"{inside}/admin/delete?all=1"}),
        "/index.xml": Reply(sitemap_index(["{BASE}/s1.xml", f"{inside}/sitemap.xml"]), headers=XML),
        "/s1.xml": Reply(urlset(["{BASE}/good2.html"]), headers=XML),
        "/good2.html": Reply(page("good sitemap article"), headers=HTML),
    }


def poll(folder: Path, site: str, crawl: str = "") -> tuple[str, list[str]]:
    """`run --once` of a feed and a sitemap index on `site`: its log and the stored URLs."""
    sources = {
        "feed": {"url": f"{site}/feed.xml", "kind": "feed"},
        "index": {"url": f"{site}/index.xml", "kind": "sitemap"},
    }
    config = write_config(folder, sources, crawl=f"{{download_timeout: 3s{crawl}}}")
    log = run_once(config).stderr
    return log, [row["url"] for row in rows(config, "SELECT url FROM articles")]


def test_listings_and_redirects_cannot_reach_an_internal_host(tmp_path, internal):
    with HostileSite(public_routes(internal.url)) as site:
        log, urls = poll(tmp_path, site.url)
        public_paths = site.paths()
    assert internal.paths() == []
    assert not [url for url in urls if INTERNAL in url]
    assert sorted(url.rsplit("/", 1)[-1] for url in urls) == ["good.html", "good2.html"]
    assert "/moved.html" in public_paths
    refusal = f"refused: {INTERNAL} is a loopback address; set crawl.allow_private_networks"
    assert f"url={internal.url}/latest/meta-data/iam: {refusal}" in log
    assert f"url={internal.url}/admin/delete?all=1: {refusal}" in log
    assert refusal in log.split("source=index", 1)[1]


def test_allow_private_networks_lets_an_internal_link_through(tmp_path, internal):
    with HostileSite(public_routes(internal.url)) as site:
        _, urls = poll(tmp_path, site.url, ", allow_private_networks: true")
    assert "/latest/meta-data/iam" in internal.paths()
    assert any(url.endswith("/latest/meta-data/iam") for url in urls)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.5", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("::ffff:10.0.0.5", "a private address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("64:ff9b::a9fe:a9fe", "a link-local address"),
        ("2002:c0a8:0101::1", "a private address"),
        ("fe80::1%eth0", "a link-local address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("0.0.0.0", "an unspecified address"),
    ],
)
def test_addresses_hidden_in_other_forms_are_not_public(address, kind):
    assert address_kind(address) == kind


def test_public_addresses_and_source_hosts_are_allowed():
    policy = AddressPolicy.for_sources(["https://intranet.example/feed.xml"], False)
    assert policy.refusal("news.example", "93.184.216.34") is None
    assert policy.refusal("news.example", "2606:2800:220:1::1") is None
    assert policy.refusal("INTRANET.example.", "10.1.2.3") is None
    assert "10.1.2.3 is a private address" in (policy.refusal("other.example", "10.1.2.3") or "")
