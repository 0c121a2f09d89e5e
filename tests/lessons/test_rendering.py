"""Authored Markdown is rendered and sanitised: no script reaches a page, diagrams and tables do."""

from lessons.rendering import render_markdown


def test_script_tags_are_removed():
    html = render_markdown("Hello <script>alert('x')</script> world")
    assert "<script" not in html and "alert" not in html


def test_event_handlers_are_removed():
    html = render_markdown('<img src="x" onerror="alert(1)"> <p onclick="steal()">hi</p>')
    assert "onerror" not in html and "onclick" not in html and "steal" not in html


def test_javascript_links_lose_their_target():
    html = render_markdown("[click](javascript:alert(1)) and <a href='JaVaScRiPt:alert(2)'>x</a>")
    assert "javascript" not in html.lower()
    assert "click" in html


def test_https_links_are_kept_and_marked_noopener():
    html = render_markdown("[Envoy](https://www.envoyproxy.io/)")
    assert 'href="https://www.envoyproxy.io/"' in html and "noopener" in html


def test_tables_admonitions_and_inline_svg_survive():
    html = render_markdown(
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        '<figure><svg viewBox="0 0 10 10" role="img" aria-label="diagram"><rect class="node" x="1" y="1" '
        'width="5" height="5" onload="bad()"/></svg><figcaption>Caption</figcaption></figure>\n\n'
        '!!! note "Expert note"\n    Careful here.\n'
    )
    assert "<table>" in html and "<td>2</td>" in html
    assert '<svg viewBox="0 0 10 10" role="img" aria-label="diagram">' in html
    assert "onload" not in html
    assert '<div class="admonition note">' in html and "Expert note" in html


def test_style_attributes_and_iframes_are_removed():
    html = render_markdown('<p style="background:url(http://evil)">x</p><iframe src="http://evil"></iframe>')
    assert "style=" not in html and "iframe" not in html


def test_heading_ids_cannot_collide_with_the_pages_own_ids():
    html = render_markdown("## Main\n\n## Completion\n")
    assert 'id="main"' not in html and 'id="completion"' not in html
    assert '<h2 id="s-main">Main</h2>' in html


def test_authored_ids_cannot_take_the_pages_own_targets():
    # id="answer-error" would capture where htmx shows an answer's error; id="main" duplicates the skip link's target.
    html = render_markdown('<div id="answer-error">x</div>\n\n<p id="main">y</p>\n\n# Main\n')
    assert 'id="answer-error"' not in html and 'id="main"' not in html
    assert 'id="s-answer-error"' in html and 'id="s-main"' in html


def test_in_page_links_and_diagram_markers_follow_their_prefixed_ids():
    html = render_markdown(
        '[see the table](#totals)\n\n<div id="totals">t</div>\n\n'
        '<svg viewBox="0 0 9 9"><defs><marker id="arrow"><path d="M0 0"/></marker></defs>'
        '<line x1="0" y1="0" x2="9" y2="9" marker-end="url(#arrow)"/></svg>\n'
    )
    assert 'href="#s-totals"' in html and 'id="s-totals"' in html
    assert 'id="s-arrow"' in html and 'marker-end="url(#s-arrow)"' in html
