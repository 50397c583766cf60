"""Teaser pruning: related-article blocks, "read also" teasers and inline teaser links dropped
from the page tree before trafilatura reads it.

A teaser headline left in the body makes a story match watchlists it is not about. Three passes,
each linear in the page: blocks whose class or id names them (and every <aside>), label headings
with the teaser box or link list they open, and paragraphs that are only links to other articles
of the site. The rules that recognise labels and names are in `crawler.teaser_rules`. Element
text sizes are counted once (`_Sizes`) and kept right as subtrees are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

from lxml import etree
from lxml.html import HtmlElement

from crawler.teaser_rules import (
    LABEL_MAX_CHARS,
    WORD,
    is_boilerplate_name,
    is_label_heading,
    split_label,
    starts_with_label,
)

_INLINE_TAGS = frozenset({"a", "b", "strong", "em", "i", "span", "font", "small", "u", "mark"})
_TOP_TAGS = frozenset({"body", "html", "main", "article"})
_PARAGRAPH_TAGS = frozenset({"p", "li", "h2", "h3", "h4", "h5", "h6", "dt", "dd"})
_TEXTLESS_TAGS = frozenset({"script", "style", "noscript", "template", "title", "h1"})
# A box opened by a label, holding at most this much text outside links, is a teaser card.
_TEASER_BOX_MAX_PROSE = 400
# "اقرأ أيضا: <a>…</a>": beyond the label, at least this share of the text is link text.
_TEASER_LINK_SHARE = 0.6
_PRUNABLE_TAGS = ("div", "section", "ul", "ol", "nav", "footer", "p", "li", "dl", "figure")
_PRUNABLE_TAGS += ("form", "header", "table", "article")
_VISIBLE_TEXT = etree.XPath(
    "descendant-or-self::text()[not(parent::script or parent::style)]", smart_strings=False
)
_LINK_TEXT = etree.XPath("descendant-or-self::a//text()", smart_strings=False)
# A candidate holding more than this share of the page's prose is the article, not a teaser box.
_MAX_PRUNED_SHARE = 0.5


# Enough of an element's text to read a label and tell a heading (60 characters at most) from a
# longer text: `split_label` reads the first 80.
_HEAD_CHARS = 100
_NO_TEXT = frozenset({"script", "style"})


def _nonspace(text: str | None) -> int:
    """Characters other than white space: markup indentation must not weigh as text."""
    return len("".join(text.split())) if text else 0


def _text_head(element: HtmlElement) -> str:
    """The element's text with white space collapsed, cut once it holds `_HEAD_CHARS`
    characters: the label rules read only the start of a text, and reading a whole container's
    text for each of its headings is quadratic."""
    pieces: list[str] = []
    seen = 0
    for piece in element.itertext():
        pieces.append(piece)
        seen += _nonspace(piece)
        if seen > _HEAD_CHARS:
            break
    return " ".join("".join(pieces).split())


class _Sizes:
    """Characters of text under each element (outside script and style), of all text, and of
    link text: counted once, bottom-up, and kept right as subtrees are dropped. The pruning rules
    ask for the prose of a box once per label heading: counted afresh each time, a page of 4,000
    headings took 35 s."""

    def __init__(self, root: HtmlElement) -> None:
        self._of: dict[HtmlElement, list[int]] = {}
        for element in reversed(list(root.iter())):
            self._of[element] = self._count(element)

    def _count(self, element: HtmlElement) -> list[int]:
        """[visible, all, link] characters; the children are counted already. The tails of an
        element's children are its text; its own tail is its parent's."""
        own = _nonspace(element.text) if isinstance(element.tag, str) else 0
        hidden = element.tag in _NO_TEXT
        visible, every, link = (0 if hidden else own), own, 0
        for child in element:
            tail = _nonspace(child.tail)
            child_visible, child_every, child_link = self._of[child]
            visible += child_visible + (0 if hidden else tail)
            every += child_every + tail
            link += child_link
        return [visible, every, every if element.tag == "a" else link]

    def text(self, element: HtmlElement) -> int:
        return self._of[element][0]

    def every(self, element: HtmlElement) -> int:
        """All text, script included, as `text_content` reads it."""
        return self._of[element][1]

    def link(self, element: HtmlElement) -> int:
        return self._of[element][2]

    def prose(self, element: HtmlElement) -> int:
        """Text outside links: what a teaser box lacks and an article body has."""
        return max(0, self.text(element) - self.link(element))

    def is_link_heavy(self, element: HtmlElement) -> bool:
        text = self.text(element)
        return text > 0 and self.link(element) >= _TEASER_LINK_SHARE * text

    def drop(self, element: HtmlElement) -> None:
        """Drop a subtree (its tail stays, in the same parent) and take its text off every
        ancestor; above an <a>, what the link loses is all the text dropped."""
        visible, every, link = self._of[element]
        for ancestor in element.iterancestors():
            if ancestor.tag == "a":
                link = every
            counts = self._of[ancestor]
            counts[0] -= visible
            counts[1] -= every
            counts[2] -= link
        _drop(element)


def _drop(element: HtmlElement) -> None:
    if element.getparent() is not None:
        element.drop_tree()


def _is_named_boilerplate(element: HtmlElement) -> bool:
    return is_boilerplate_name(f"{element.get('class') or ''} {element.get('id') or ''}")


def _prune_named_blocks(root: HtmlElement, sizes: _Sizes) -> None:
    candidates = [
        element
        for element in root.iter("aside", *_PRUNABLE_TAGS)
        if element.tag == "aside" or _is_named_boilerplate(element)
    ]
    page_prose = sizes.prose(root) or 1
    for element in candidates:
        if _in_tree(element, root) and sizes.prose(element) <= _MAX_PRUNED_SHARE * page_prose:
            sizes.drop(element)


def _in_tree(element: HtmlElement, root: HtmlElement) -> bool:
    """Whether an element is still part of the page, not of a subtree dropped earlier."""
    return element.getroottree().getroot() is root


def _drop_following_links(element: HtmlElement, sizes: _Sizes) -> None:
    """Drop the link list after a label, up to the next sibling that holds prose."""
    sibling = element.getnext()
    while sibling is not None:
        following = sibling.getnext()
        if sizes.text(sibling):
            if not sizes.is_link_heavy(sibling):
                return
            sizes.drop(sibling)
        sibling = following


def _is_inline_teaser(element: HtmlElement, text: str, sizes: _Sizes) -> bool:
    """`<p>اقرأ أيضا: <a>headline</a></p>`: a label, then mostly link text."""
    label = split_label(text)
    if label is None or element.find(".//a") is None:
        return False
    if not label.opens_teaser:
        return False
    return sizes.link(element) >= _TEASER_LINK_SHARE * (sizes.text(element) - label.length)


def _label_owners(root: HtmlElement) -> list[HtmlElement]:
    """Elements with a text of their own that starts with a label, in document order."""
    owners: dict[HtmlElement, None] = {}
    body = root.find("body")
    for element in (body if body is not None else root).iter(etree.Element):
        if element.text and split_label(element.text) and element.tag not in _TEXTLESS_TAGS:
            owners[element] = None
        if element.tail and split_label(element.tail):
            parent = element.getparent()
            if parent is not None:
                owners[parent] = None
    return list(owners)


def _teaser_box(heading: HtmlElement, page_prose: int, sizes: _Sizes) -> HtmlElement | None:
    """The small box a label heading opens (`<div><p>À lire aussi</p><h3><a>…</a></h3><p>excerpt
    </p></div>`): its excerpt is prose, which the link-list rule would leave behind."""
    box = heading.getparent()
    if box is None or box.tag in _TOP_TAGS or (box.text or "").strip():
        return None
    if any(sizes.text(sibling) for sibling in heading.itersiblings(preceding=True)):
        return None
    prose = sizes.prose(box)
    if prose > _TEASER_BOX_MAX_PROSE or prose > _MAX_PRUNED_SHARE * page_prose:
        return None
    # one excerpt at most: a short article body opened by a label has several paragraphs
    excerpts = (child for child in box if child is not heading and sizes.prose(child))
    if next(excerpts, None) is not None and next(excerpts, None) is not None:
        return None
    return box if box.find(".//a") is not None else None


def _label_block(owner: HtmlElement) -> HtmlElement:
    """The block a label's text belongs to (`<p><strong>اقرأ أيضا:</strong> …</p>` → the <p>)."""
    block = owner
    while block.tag in _INLINE_TAGS:
        parent = block.getparent()
        if parent is None or parent.tag in _TOP_TAGS:
            break
        block = parent
    return block


def _is_label_element(element: HtmlElement, sizes: _Sizes) -> bool:
    """`is_label_heading` of the element's text, without reading a long text: a heading's text
    is short."""
    return sizes.every(element) <= LABEL_MAX_CHARS and is_label_heading(_text_head(element))


def _prune_label(block: HtmlElement, page_prose: int, sizes: _Sizes) -> None:
    """Drop a label heading with the teasers after it, or the teaser paragraph it opens."""
    text = _text_head(block)
    if is_label_heading(text):
        heading = block
        while (parent := heading.getparent()) is not None and parent.tag not in _TOP_TAGS:
            if not _is_label_element(parent, sizes):
                break
            heading = parent
        box = _teaser_box(heading, page_prose, sizes)
        if box is not None:
            sizes.drop(box)
            return
        _drop_following_links(heading, sizes)
        sizes.drop(heading)
    elif _is_inline_teaser(block, text, sizes) or (
        block.tag in _PARAGRAPH_TAGS and starts_with_label(text)
    ):
        _drop_following_links(block, sizes)
        sizes.drop(block)


def _prune_labelled_teasers(root: HtmlElement, sizes: _Sizes) -> None:
    """Each block once, however many labels it holds: a block left in place stays so."""
    page_prose = sizes.prose(root)
    seen: set[HtmlElement] = set()
    for owner in _label_owners(root):
        if not _in_tree(owner, root):
            continue
        block = _label_block(owner)
        if block not in seen:
            seen.add(block)
            _prune_label(block, page_prose, sizes)


def _site_host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def _is_site_article_link(href: str | None, page_url: str) -> bool:
    """A link to another page of the same site that is not its home page."""
    if not href or href.startswith("#"):
        return False
    target = urljoin(page_url, href)
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or _site_host(target) != _site_host(page_url):
        return False
    return parts.path.strip("/") != "" and target.split("#")[0] != page_url.split("#")[0]


def _words(texts: Iterable[str]) -> str:
    return "".join(WORD.findall(" ".join(texts)))


def _is_site_link_block(element: HtmlElement, page_url: str) -> bool:
    """Whether every word of the element is link text and every link goes to another article of
    the site: a teaser headline, or a list of them, dropped between body paragraphs."""
    links = element.findall(".//a")
    if not links or not all(_is_site_article_link(link.get("href"), page_url) for link in links):
        return False
    words = _words(_VISIBLE_TEXT(element))
    return bool(words) and words == _words(_LINK_TEXT(element))


def _prune_site_link_blocks(root: HtmlElement, page_url: str) -> None:
    for element in list(root.iter("p", "ul", "ol")):
        if _is_site_link_block(element, page_url) and _in_tree(element, root):
            _drop(element)


def prune(root: HtmlElement, page_url: str) -> None:
    """Drop the page's teasers in place. Named blocks go first: the label passes then see fewer
    elements, and a label inside a dropped block is not looked at again."""
    sizes = _Sizes(root)
    _prune_named_blocks(root, sizes)
    _prune_labelled_teasers(root, sizes)
    _prune_site_link_blocks(root, page_url)
