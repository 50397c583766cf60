"""Feeds are fetched over verified TLS, as webhook, Slack and SMTP deliveries already are: a
self-signed certificate is refused unless the source opts out with `verify_tls: false`."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.hostile_site import HostileSite, Reply
from tests.support import newswatch, rows, write_config

ARTICLE = (
    "<html><head><title>Extradition approved</title></head><body><article>"
    "<h1>Extradition approved</h1>"
    + "".join(
        f"<p>The court of appeal in Rabat approved the extradition request, part {n}, after a "
        "long hearing in which both parties presented their arguments to the judges.</p>"
        for n in range(3)
    )
    + "</article></body></html>"
).encode()


def self_signed(folder: Path) -> ssl.SSLContext:
    """A certificate for 127.0.0.1 that no authority signed: what a hostile or misconfigured
    server presents."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture
def https_site(tmp_path):
    routes = {
        "/feed.xml": Reply(
            b"<rss version='2.0'><channel><title>t</title><item><title>Extradition approved"
            b"</title><link>{BASE}/a.html</link></item></channel></rss>",
            headers={"Content-Type": "application/rss+xml"},
        ),
        "/a.html": Reply(ARTICLE, headers={"Content-Type": "text/html"}),
    }
    with HostileSite(routes, tls=self_signed(tmp_path)) as site:
        yield site


def poll(folder: Path, url: str, **options: bool) -> tuple[str, list[str], dict]:
    source = {"url": f"{url}/feed.xml", "kind": "feed", **options}
    config = write_config(folder, {"tls": source}, crawl="{download_timeout: 3s}")
    result = newswatch("run", "--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    urls = [row["url"] for row in rows(config, "SELECT url FROM articles")]
    [health] = rows(config, "SELECT * FROM sources")
    return result.stderr, urls, health


def test_a_self_signed_https_source_is_refused(tmp_path, https_site):
    log, urls, health = poll(tmp_path, https_site.url)
    assert urls == []
    assert "certificate" in health["last_error"]
    assert "verify_tls: false" in health["last_error"]
    assert "source=tls" in log and "certificate" in log
    assert https_site.paths() == []


def test_verify_tls_false_reads_that_source(tmp_path, https_site):
    log, urls, health = poll(tmp_path, https_site.url, verify_tls=False)
    assert urls == [f"{https_site.url}/a.html"], log
    assert health["last_error"] is None
