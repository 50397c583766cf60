"""Article extraction on realistic Arabic, French and English news pages.

The fixtures under tests/data/extract/ are pages as news sites serve them: navigation, "read
also" teasers inside and beside the body, related-article lists, tags, share buttons, comments.
seed_article.html renders seed_article.txt (a real article, teasers and all) as such a page.
"""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from crawler.extract import ExtractedArticle, extract_article
from crawler.language import detect_language

DATA = Path(__file__).parent / "data" / "extract"

AR_URL = (
    "https://www.akhbar-maghrib.example/politique/2026/11/24/extradition-francais-tanger-58213.html"
)
FR_CANONICAL = (
    "https://www.lejournal.example/afrique/article/2026/11/20/"
    "extraditions-paris-et-rabat-accelerent_6401.html"
)
FR_URL = FR_CANONICAL + "?utm_source=rss&utm_medium=feed"
EN_URL = "https://northafricapost.example/2026/11/morocco-extradites-french-drug-suspect/"
SEED_URL = "https://www.maghreb-voices.example/maghreb/2026/03/17/paris-rabat-security.html"

AR_PARAGRAPHS = (
    "أعلنت وزارة العدل المغربية، اليوم الاثنين، أن السلطات القضائية وافقت على تسليم مواطن فرنسي"
    " موقوف بمدينة طنجة إلى باريس، بعد استكمال الإجراءات القانونية المنصوص عليها في اتفاقية"
    " التعاون القضائي الموقعة بين البلدين.",
    "وأوضح بلاغ للوزارة أن الموقوف، البالغ من العمر 41 عاما، كان موضوع مذكرة بحث دولية صادرة عن"
    " محكمة الاستئناف بمرسيليا بتهم تتعلق بالاتجار الدولي في المخدرات وتبييض الأموال.",
    "وأكد المصدر ذاته أن الغرفة الجنائية بمحكمة النقض أصدرت رأيا بالموافقة على طلب التسليم، بعد"
    " التأكد من توفر الضمانات المتعلقة بالمحاكمة العادلة واحترام حقوق الدفاع.",
    "تعاون أمني متصاعد",
    "ويأتي هذا القرار في سياق تعاون أمني وقضائي متصاعد بين الرباط وباريس، توج خلال الأشهر الأخيرة"
    " بتوقيع إعلان مشترك لمكافحة الإرهاب والجريمة المنظمة وتسريع معالجة طلبات التسليم والإنابات"
    " القضائية.",
    "وكانت المصالح الأمنية المغربية قد أوقفت المعني بالأمر في شهر شتنبر الماضي بناء على معلومات"
    " دقيقة وفرتها المديرية العامة لمراقبة التراب الوطني، في عملية نسقت مع نظيرتها الفرنسية.",
    "ويرتقب أن يتم ترحيل المواطن الفرنسي خلال الأيام المقبلة تحت حراسة أمنية مشددة، على أن يمثل"
    " أمام قاضي التحقيق المختص فور وصوله إلى التراب الفرنسي.",
)


def _page(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _extract(name: str, url: str, language_hint: str | None = None) -> ExtractedArticle:
    article = extract_article(_page(name), url, language_hint)
    assert article is not None, f"no article found in {name}"
    return article


def _in_order(expected: list[str] | tuple[str, ...], paragraphs: tuple[str, ...]) -> bool:
    """Whether every expected paragraph is there, in this order (others may come between)."""
    remaining = iter(paragraphs)
    return all(any(wanted == got for got in remaining) for wanted in expected)


def _seed() -> tuple[str, list[str], list[str]]:
    """Title, body paragraphs and teaser headlines of the seed article: in the text, a line
    holding only "-" is followed by a teaser headline."""
    lines = [line.strip() for line in (DATA / "seed_article.txt").read_text("utf-8").splitlines()]
    title, body = lines[0], [line for line in lines[1:] if line]
    teasers = [body[i + 1] for i, line in enumerate(body) if line == "-"]
    paragraphs = [line for i, line in enumerate(body) if line != "-" and body[i - 1] != "-"]
    return title, paragraphs, teasers


# --- Arabic ------------------------------------------------------------------------------------


def test_arabic_page_gives_the_body_paragraphs_in_order_and_nothing_else() -> None:
    article = _extract("ar_extradition.html", AR_URL)

    assert article.paragraphs == AR_PARAGRAPHS


def test_arabic_read_also_teasers_comments_and_chrome_are_gone() -> None:
    text = "\n".join(_extract("ar_extradition.html", AR_URL).paragraphs)

    # every teaser (inline, in the aside, in the related card) is about Algeria; the story is not
    assert "الجزائر" not in text
    assert "اقرأ" not in text and "إقرأ" not in text
    assert "خطوة مهمة في مسار التعاون" not in text  # a reader's comment
    assert "تسليم المطلوبين" not in text  # tag list
    assert "واتساب" not in text  # share buttons
    assert "جميع الحقوق محفوظة" not in text  # footer
    assert "الرئيسية" not in text  # navigation


def test_arabic_page_metadata() -> None:
    article = _extract("ar_extradition.html", AR_URL)

    assert article.title == "المغرب يوافق على تسليم مواطن فرنسي مطلوب في قضايا تهريب المخدرات"
    assert article.published_at == "2026-11-24T00:00:00Z"  # <time datetime="2026-11-24">
    assert article.language == "ar"
    assert article.canonical_url == AR_URL


def test_language_hint_from_the_source_wins_over_detection() -> None:
    assert _extract("ar_extradition.html", AR_URL, language_hint="fr-FR").language == "fr"


# --- French ------------------------------------------------------------------------------------


def test_french_page_keeps_the_body_and_drops_lire_aussi_teasers() -> None:
    article = _extract("fr_extraditions.html", FR_URL)
    text = "\n".join(article.paragraphs)

    assert _in_order(
        [
            "Le garde des sceaux et son homologue marocain ont signé, lundi à Rabat, une"
            " déclaration commune destinée à accélérer le traitement des demandes d’extradition"
            " et d’entraide pénale entre les deux pays, selon un communiqué publié par la"
            " chancellerie.",
            "Plusieurs narcotrafiquants recherchés par la justice française ont été interpellés"
            " au Maroc ces derniers mois. Leur remise aux autorités françaises a parfois pris plus"
            " d’un an, un délai que les deux gouvernements disent vouloir réduire.",
            "« Nous avons désormais un interlocuteur identifié pour chaque dossier », a souligné"
            " une source diplomatique française, qui estime que le dispositif pourrait servir de"
            " modèle à d’autres partenaires du Maghreb.",
        ],
        article.paragraphs,
    )
    # the teasers (label + link, label box with an excerpt, "Sur le même sujet") are about Algiers
    assert "Alger" not in text and "algérien" not in text
    assert "lire aussi" not in text.lower()
    assert "Sur le même sujet" not in text
    assert "espérons que les moyens suivront" not in text  # a reader's reaction


def test_french_page_metadata() -> None:
    article = _extract("fr_extraditions.html", FR_URL)

    assert article.title == "Extraditions : Paris et Rabat accélèrent leur coopération judiciaire"
    assert article.published_at == "2026-11-20T08:30:00Z"  # 09:30 at +01:00
    assert article.language == "fr"
    # <link rel=canonical> is relative and the page was fetched with tracking parameters
    assert article.canonical_url == FR_CANONICAL


def test_og_url_is_the_canonical_url_when_there_is_no_canonical_link() -> None:
    page = _page("fr_extraditions.html").decode("utf-8")
    without_link = "\n".join(line for line in page.splitlines() if 'rel="canonical"' not in line)

    article = extract_article(without_link, FR_URL)

    assert article is not None
    assert article.canonical_url == FR_CANONICAL


def test_page_in_a_legacy_encoding_is_decoded_from_its_bytes() -> None:
    page = _page("fr_extraditions.html").decode("utf-8")
    legacy = page.replace('<meta charset="utf-8">', '<meta charset="windows-1252">')
    legacy = legacy.replace("’", "'").replace("–", "-")

    article = extract_article(legacy.encode("cp1252"), FR_URL)

    assert article is not None
    assert any("désignation de magistrats de liaison" in p for p in article.paragraphs)


# --- English -----------------------------------------------------------------------------------


def test_english_page_drops_related_posts_but_keeps_a_sentence_starting_with_related() -> None:
    article = _extract("en_extradition.html", EN_URL)
    text = "\n".join(article.paragraphs)

    assert article.paragraphs[0].startswith("Moroccan authorities on Tuesday handed over")
    assert _in_order(
        [
            "Related charges were filed against two accomplices who remain in Moroccan custody"
            " and are expected to be tried in Tangier early next year, prosecutors said.",
            "France has in turn pledged to examine more quickly the requests filed by Rabat for"
            " people wanted in Morocco, a long-standing grievance of Moroccan magistrates.",
        ],
        article.paragraphs,
    )
    assert len(article.paragraphs) == 5
    # teasers ("Read more:", Jetpack related posts, promo aside, related-posts list) are about
    # Algeria; <body class="comments-open"> and <article class="tag-…"> must not be taken for them
    assert "Algeria" not in text and "Algiers" not in text
    assert "Read more" not in text
    assert "organised crime cases" not in text  # a comment


def test_english_page_metadata_from_json_ld() -> None:
    article = _extract("en_extradition.html", EN_URL)

    assert article.title == "Morocco extradites French drug suspect as justice ties deepen"
    assert article.published_at == "2026-11-18T19:05:00Z"  # 14:05 at -05:00
    assert article.language == "en"
    assert article.canonical_url == EN_URL


# --- the seed article --------------------------------------------------------------------------


def test_seed_article_keeps_every_paragraph_and_no_teaser_headline() -> None:
    title, paragraphs, teasers = _seed()
    assert len(teasers) == 16

    article = _extract("seed_article.html", SEED_URL)

    assert article.title == title
    assert _in_order(paragraphs, article.paragraphs)
    assert len(article.paragraphs) == len(paragraphs)
    leaked = [teaser for teaser in teasers if any(teaser in p for p in article.paragraphs)]
    assert leaked == []
    assert article.language == "ar"
    assert article.published_at == "2026-03-17T14:20:00Z"


# --- pages without an article ------------------------------------------------------------------


def test_login_page_has_no_article() -> None:
    assert extract_article(_page("login.html"), "https://www.lejournal.example/connexion/") is None


@pytest.mark.parametrize(
    "html",
    [
        "",
        b"",
        "<html><head><title>Accueil</title></head><body></body></html>",
        "<html><body><nav><a href='/a'>Politique</a> <a href='/b'>Sport</a></nav></body></html>",
    ],
)
def test_empty_pages_have_no_article(html: str | bytes) -> None:
    assert extract_article(html, "https://news.example/") is None


# --- the daemon's process pool -----------------------------------------------------------------


def test_extraction_runs_in_a_process_pool() -> None:
    page = _page("fr_extraditions.html")
    with ProcessPoolExecutor(max_workers=1) as pool:
        remote = pool.submit(extract_article, page, FR_URL).result(timeout=60)

    assert remote == extract_article(page, FR_URL)
    assert pickle.loads(pickle.dumps(remote)) == remote


# --- language detection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("وزير العدل الفرنسي في الرباط لبحث تسليم المطلوبين", "ar"),
        ("تسليم المطلوبين", "ar"),
        ("Le Maroc extrade un baron de la drogue vers la France", "fr"),
        ("Darmanin au Maroc", "fr"),
        ("Morocco extradites drug lord to France", "en"),
        ("Darmanin in Morocco", "en"),
        ("El Gobierno español ha aprobado hoy una nueva ley sobre la extradición de presos.", "es"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize("text", ["", "   ", "2026-11-24 10:00", "—"])
def test_detect_language_gives_none_without_words(text: str) -> None:
    assert detect_language(text) is None
