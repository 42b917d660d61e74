"""The plain-text part derived from HTML: readable, links as `text (url)`."""

from postillon.templates.plaintext import html_to_text


def test_headings_lists_links_tables_and_hidden_elements() -> None:
    html = (
        "<html><head><style>p { color: red }</style><title>T</title></head><body>"
        '<div style="display: none">preheader</div><h2>Offers</h2>'
        '<ol><li>One</li><li>Two <a href="https://shop.example.com/2">here</a></li></ol>'
        "<ul><li>a</li></ul><table><tr><td>Teapot</td><td>30 EUR</td></tr></table>"
        '<p>Line<br>next &amp; more</p><img alt="Logo" src="x.png">'
        '<p><a href="https://example.com">https://example.com</a></p></body></html>'
    )
    assert html_to_text(html) == (
        "## Offers\n\n1. One\n2. Two here (https://shop.example.com/2)\n\n- a\n\n"
        "Teapot 30 EUR\n\nLine\nnext & more\n\nLogo\n\nhttps://example.com\n"
    )
