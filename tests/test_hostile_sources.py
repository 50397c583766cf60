"""Every kind of source a real crawl meets, served by one loopback site and polled by the real
`newswatch run --once`: odd encodings, limits, loops, broken and hostile XML, gzip bombs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile_site import HostileSite, Reply, gzip_bomb
from tests.support import newswatch, rows, write_config

ARABIC = (
    "قضت محكمة الاستئناف بالرباط بتسليم مواطن فرنسي مطلوب لدى القضاء الفرنسي في قضية تهريب",
    "وأوضح المصدر أن السلطات المغربية تلقت طلبا رسميا من نظيرتها الفرنسية قبل عدة أشهر",
    "ويأتي هذا القرار في إطار اتفاقية التعاون القضائي الموقعة بين البلدين منذ سنوات طويلة",
)
SECRET = "newswatch-local-secret-file"
MAX_PAGE = 1024**2


def article(title: str, charset_meta: str = "") -> str:
    meta = f"<meta charset='{charset_meta}'>" if charset_meta else ""
    paragraphs = "".join(f"<p>{p}</p>" for p in ARABIC)
    return (
        f"<html lang='ar'><head>{meta}<title>{title}</title></head><body><article>"
        f"<h1>{title}</h1>{paragraphs}</article></body></html>"
    )


def rss(items: list[tuple[str, str]], doctype: str = "") -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><link>{{BASE}}{path}</link>"
        f"<description>ملخص {title}</description></item>"
        for path, title in items
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?>{doctype}<rss version='2.0'><channel>"
        f"<title>t</title>{entries}</channel></rss>"
    ).encode()


def urlset(paths: list[str], lastmod: str = "2026-11-28") -> bytes:
    urls = "".join(f"<url><loc>{{BASE}}{p}</loc><lastmod>{lastmod}</lastmod></url>" for p in paths)
    return (f"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{urls}</urlset>").encode()


def sitemap_index(children: list[tuple[str, str]]) -> bytes:
    entries = "".join(
        f"<sitemap><loc>{{BASE}}{path}</loc><lastmod>{lastmod}</lastmod></sitemap>"
        for path, lastmod in children
    )
    return (
        f"<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{entries}"
        "</sitemapindex>"
    ).encode()


HTML = {"Content-Type": "text/html"}
XML = {"Content-Type": "application/xml"}
GZ = {"Content-Type": "application/x-gzip"}
LAUGHS = (
    "<!DOCTYPE rss [<!ENTITY a 'ha'>"
    + "".join(f"<!ENTITY {chr(98 + i)} '{('&' + chr(97 + i) + ';') * 10}'>" for i in range(9))
    + "]>"
)


def routes(secret_path: Path) -> dict[str, Reply]:
    site = {
        "/robots.txt": Reply(b"User-agent: *\nDisallow: /private/\n", headers={}),
        "/feed.xml": Reply(
            rss(
                [
                    ("/ar/cp1256.html", "cp1256"),
                    ("/ar/iso.html", "iso"),
                    ("/ar/misdeclared.html", "misdeclared"),
                    ("/big.html", "big"),
                    ("/slow.html", "slow"),
                    ("/loop-a", "loop"),
                    ("/to-file", "file"),
                    ("/doc.pdf", "pdf"),
                    ("/bomb.html", "bomb"),
                ]
            ),
            headers={"Content-Type": "application/rss+xml"},
        ),
        "/ar/cp1256.html": Reply(
            article("cp1256").encode("cp1256"),
            headers={"Content-Type": "text/html; charset=windows-1256"},
        ),
        "/ar/iso.html": Reply(
            article("iso", charset_meta="iso-8859-6").encode("iso-8859-6"), headers=HTML
        ),
        "/ar/misdeclared.html": Reply(
            article("misdeclared").encode("cp1256"),
            headers={"Content-Type": "text/html; charset=utf-8"},
        ),
        "/big.html": Reply(b"<p>" + b"x" * 65533, headers=HTML, stream=12 * 1024**2),
        "/slow.html": Reply(article("slow").encode(), headers=HTML, delay=3),
        "/loop-a": Reply(status=302, headers={"Location": "/loop-b"}),
        "/loop-b": Reply(status=302, headers={"Location": "/loop-a"}),
        "/to-file": Reply(status=302, headers={"Location": secret_path.as_uri()}),
        "/doc.pdf": Reply(
            b"%PDF-1.4 " + SECRET.encode(), headers={"Content-Type": "application/pdf"}
        ),
        "/bomb.html": Reply(gzip_bomb(50 * MAX_PAGE), headers={**HTML, "Content-Encoding": "gzip"}),
        "/broken.xml": Reply(
            rss([("/ar/cp1256.html", "again")]).replace(b"</channel></rss>", b"<item><title>a & b")
            + b"<link>{BASE}/ar/broken-item.html</link>",
            headers={"Content-Type": "application/rss+xml"},
        ),
        "/laughs.xml": Reply(rss([("/ar/lol.html", "&j;")], LAUGHS), headers=XML),
        "/xxe.xml": Reply(
            rss(
                [("/ar/xxe.html", "&x;")],
                f"<!DOCTYPE rss [<!ENTITY x SYSTEM '{secret_path.as_uri()}'>]>",
            ),
            headers=XML,
        ),
        "/bomb-sitemap.xml.gz": Reply(gzip_bomb(50 * MAX_PAGE), headers=GZ),
        "/index.xml": Reply(
            sitemap_index(
                [(f"/s{n}.xml.gz", f"2026-11-2{n}") for n in range(1, 8)]
                + [("/archive-2019.xml.gz", "2019-01-01")]
            ),
            headers=XML,
        ),
        "/section/": Reply(
            b"<html><body><nav><a href='/tag/maroc'>Maroc</a><a href='/category/monde/'>Monde"
            b"</a><a href='/author/x'>X</a></nav><main>"
            b"<a href='/2026/11/28/extradition-suspect'>Extradition</a>"
            b"<a href='/private/2026/secret-draft.html'>Draft</a></main></body></html>",
            headers=HTML,
        ),
        "/2026/11/28/extradition-suspect": Reply(article("section article").encode(), headers=HTML),
    }
    for n in range(1, 8):
        site[f"/s{n}.xml.gz"] = Reply(urlset([f"/sm/{n}.html"]), headers=GZ, compress=True)
        site[f"/sm/{n}.html"] = Reply(article(f"sitemap {n}").encode(), headers=HTML)
    site["/archive-2019.xml.gz"] = Reply(urlset(["/sm/old.html"], "2019-01-01"), compress=True)
    return site


SOURCES = {
    "ar": "/feed.xml",
    "broken": "/broken.xml",
    "laughs": "/laughs.xml",
    "xxe": "/xxe.xml",
    "gzbomb": "/bomb-sitemap.xml.gz",
    "index": "/index.xml",
    "section": "/section/",
}


@pytest.fixture(scope="module")
def polled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    secret = folder / "secret.txt"
    secret.write_text(SECRET)
    with HostileSite(routes(secret)) as site:
        sources = {
            name: {"url": f"{site.url}{path}", **({"kind": "sitemap"} if name == "index" else {})}
            for name, path in SOURCES.items()
        }
        crawl = "{download_timeout: 1s, max_page_size: 1MB, max_child_sitemaps: 2}"
        config = write_config(folder, sources, crawl=crawl)
        result = newswatch("run", "--once", "--config", str(config))
        listing = newswatch("sources", "--config", str(config))
    articles = {r["url"].split("/", 3)[-1]: r for r in rows(config, "SELECT * FROM articles")}
    health = {r["name"]: r for r in rows(config, "SELECT * FROM sources")}
    return {
        "result": result,
        "log": result.stderr,
        "articles": articles,
        "health": health,
        "paths": site.paths(),
        "hits": site.hits,
        "sources": listing,
    }


def test_the_daemon_carries_on_and_exits_0(polled):
    assert polled["result"].returncode == 0, polled["log"]
    assert "Traceback" not in polled["log"]


@pytest.mark.parametrize("page", ["ar/cp1256.html", "ar/iso.html", "ar/misdeclared.html"])
def test_arabic_legacy_encodings_are_decoded(polled, page):
    stored = polled["articles"][page]
    assert stored["extraction"] == "page"
    assert "بتسليم مواطن فرنسي" in stored["text"]


def test_page_over_the_size_limit_is_cut_off_while_downloading(polled):
    big = [hit for hit in polled["hits"] if hit.path == "/big.html"]
    assert big and all(hit.bytes_sent < 12 * 1024**2 for hit in big)
    assert polled["articles"]["big.html"]["extraction"] == "feed-summary"
    assert "url=" in polled["log"] and "big.html" in polled["log"]


def test_slow_page_times_out_and_falls_back_to_the_feed_entry(polled):
    assert polled["articles"]["slow.html"]["extraction"] == "feed-summary"
    assert any("slow.html" in line and "timed out" in line for line in polled["log"].splitlines())


def test_redirect_loop_is_abandoned(polled):
    assert polled["paths"].count("/loop-a") <= 6
    assert polled["articles"]["loop-a"]["extraction"] == "feed-summary"


def test_redirect_to_a_local_file_is_refused(polled):
    assert SECRET not in str(polled["articles"])
    assert any("to-file" in line and "refused" in line for line in polled["log"].splitlines())


def test_non_html_response_is_not_extracted(polled):
    assert polled["articles"]["doc.pdf"]["extraction"] == "feed-summary"
    assert "not an HTML page" in polled["log"]


def test_gzip_bomb_page_is_capped_on_decompressed_bytes(polled):
    assert polled["articles"]["bomb.html"]["extraction"] == "feed-summary"
    assert any(
        "bomb.html" in line and "DOWNLOAD_MAXSIZE" in line for line in polled["log"].splitlines()
    )


def test_malformed_feed_is_read_as_far_as_possible(polled):
    assert polled["health"]["broken"]["consecutive_failures"] == 0
    assert "/ar/cp1256.html" in polled["paths"]


@pytest.mark.parametrize("source", ["laughs", "xxe"])
def test_feeds_declaring_entities_are_refused(polled, source):
    health = polled["health"][source]
    assert health["consecutive_failures"] == 1
    assert "declares XML entities" in health["last_error"]
    assert SECRET not in str(polled["articles"])
    assert not any(p.startswith(("/ar/lol", "/ar/xxe")) for p in polled["paths"])


def test_gzip_bomb_sitemap_is_refused_at_the_size_limit(polled):
    assert "gzip bomb" in polled["health"]["gzbomb"]["last_error"]


def test_sitemap_index_reads_only_the_newest_gzipped_children_up_to_the_cap(polled):
    children = [p for p in polled["paths"] if p.endswith(".xml.gz") and p != "/bomb-sitemap.xml.gz"]
    assert sorted(children) == ["/s6.xml.gz", "/s7.xml.gz"]
    assert {"sm/6.html", "sm/7.html"} <= polled["articles"].keys()
    assert polled["articles"]["sm/7.html"]["extraction"] == "page"


def test_section_page_follows_articles_not_navigation_and_obeys_robots(polled):
    assert "/2026/11/28/extradition-suspect" in polled["paths"]
    assert not any(
        p.startswith(("/tag/", "/category/", "/author/", "/private/")) for p in polled["paths"]
    )
    assert "2026/11/28/extradition-suspect" in polled["articles"]


def test_sources_command_shows_health(polled):
    out = polled["sources"]
    assert polled["sources"].returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert set(lines) == set(SOURCES)
    assert "declares XML entities" in lines["xxe"]
    assert lines["ar"].split()[4] == "0"
