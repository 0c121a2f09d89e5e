"""Aiken import/export: reading files, round trips of stems/options/answer, refusals with line numbers."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lessons.rendering import render_markdown
from quizzes.formats.aiken import ANSWER_LINE, OPTION_LINE, export_aiken, parse_aiken
from quizzes.formats.text import plain_to_markdown
from quizzes.formats.types import FormatError, OptionData, QuestionData

AIKEN_FILE = """\
What does a sidecar proxy do for its service?
A. It stores the service's data
B) It handles the service's network traffic
C. It compiles the service
ANSWER: B

Service A calls B three times before giving up.
Which mesh feature is that?
A. Retries
B. Mutual TLS
ANSWER: A
"""


def test_file_gives_stems_options_and_the_correct_one():
    first, second = parse_aiken(AIKEN_FILE)
    assert first.stem == "What does a sidecar proxy do for its service?"
    assert [o.text for o in first.options] == [
        "It stores the service's data",
        "It handles the service's network traffic",
        "It compiles the service",
    ]
    assert [o.correct for o in first.options] == [False, True, False]
    assert all(o.feedback == "" for o in first.options)
    assert first.key == "what-does-a-sidecar-proxy-do-for-its-service"
    assert second.stem == plain_to_markdown(
        "Service A calls B three times before giving up.\nWhich mesh feature is that?"
    )
    assert [o.correct for o in second.options] == [True, False]


def test_aiken_is_plain_text_so_markup_shows_as_written():
    (question,) = parse_aiken('Is <html class="cool"> & images **bold**?\nA. `<b>`\nB. 1. no list\nANSWER: A\n')
    assert render_markdown(question.stem) == '<p>Is &lt;html class="cool"&gt; &amp; images **bold**?</p>'
    assert render_markdown(question.options[0].text) == "<p>`&lt;b&gt;`</p>"
    assert render_markdown(question.options[1].text) == "<p>1. no list</p>"


def test_export_writes_letters_of_the_stored_order_and_no_feedback():
    question = QuestionData(
        key="k",
        stem="Which port?",
        options=[OptionData("80", False, "nope"), OptionData("443", True, "yes"), OptionData("22", False)],
    )
    assert export_aiken([question]) == "Which port?\nA. 80\nB. 443\nC. 22\nANSWER: B\n"


def test_export_refuses_a_stem_line_that_reads_as_an_option():
    question = QuestionData("k", "Pick one:\nA. is a trap", [OptionData("x", True), OptionData("y")])
    with pytest.raises(ValueError, match="would read as an Aiken option"):
        export_aiken([question])


LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30).map(str.strip)
OPTION_TEXT = LINE.filter(bool)
LATER_STEM_LINE = OPTION_TEXT.filter(lambda line: not OPTION_LINE.match(line) and not ANSWER_LINE.match(line))
FIRST_STEM_LINE = OPTION_TEXT.filter(lambda line: not ANSWER_LINE.match(line))


@st.composite
def aiken_questions(draw):
    result = []
    for _ in range(draw(st.integers(1, 4))):
        stem = "\n".join([draw(FIRST_STEM_LINE), *draw(st.lists(LATER_STEM_LINE, max_size=2))])
        count = draw(st.integers(2, 6))
        right = draw(st.integers(0, count - 1))
        options = [OptionData(draw(OPTION_TEXT), i == right) for i in range(count)]
        result.append(QuestionData(key="any", stem=stem, options=options))
    return result


def essentials(questions):
    return [(q.stem, [(o.text, o.correct) for o in q.options]) for q in questions]


@settings(max_examples=200, deadline=None)
@given(aiken_questions())
def test_export_then_import_keeps_stems_options_and_answer(generated):
    # Aiken is plain text: what comes back is the same text, escaped so that Markdown shows it as written.
    expected = [
        (plain_to_markdown(stem), [(plain_to_markdown(text), correct) for text, correct in options])
        for stem, options in essentials(generated)
    ]
    assert essentials(parse_aiken(export_aiken(generated))) == expected


def error_of(text: str) -> FormatError:
    with pytest.raises(FormatError) as caught:
        parse_aiken(text)
    return caught.value


GOOD = "Fine?\nA. yes\nB. no\nANSWER: A\n\n"  # five lines, so the bad question starts on line 6


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (GOOD + "Which?\nA. one\nB. two\n", 6, "question 'Which?' has no 'ANSWER: <letter>' line"),
        (GOOD + "Which?\nA. one\nB. two\nANSWER: D\n", 9, "ANSWER: D names no option; the options are A–B"),
        (GOOD + "Which?\nA. one\nANSWER: A\n", 6, "question 'Which?' has 1 option; at least 2 are needed"),
        (GOOD + "Which?\nA. one\nC. two\nANSWER: A\n", 8, "option letter C out of sequence; expected B"),
        (GOOD + "Which?\nA. one\nB. two\nANSWER: A\nNext?\n", 10, "text after the ANSWER line"),
        (GOOD + "Which?\nA. one\nB. two\nANSWER: AB\n", 9, "ANSWER must name one option letter"),
        (GOOD + "Which?\nA. one\nand more\nB. two\nANSWER: A\n", 8, "expected option 'B.' or 'ANSWER: <letter>'"),
        (GOOD + "ANSWER: A\n", 6, "ANSWER line with no question"),
    ],
)
def test_malformed_question_is_refused_with_line_and_reason(text, line, reason):
    error = error_of(text)
    assert (error.line, reason in error.reason) == (line, True), error.reason
