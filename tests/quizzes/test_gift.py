"""GIFT import/export: what Moodle files give, round trips, and the refusals with their line numbers."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quizzes.formats.gift import export_gift, parse_gift
from quizzes.formats.types import FormatError, OptionData, QuestionData, StepData

# --- reading what instructors write ---------------------------------------------------

MOODLE_FILE = """\
// A file as an instructor would write it by hand.
$CATEGORY: $course$/top/why-service-mesh

::mesh-purpose::[markdown]Why add a **service mesh**
to a set of microservices? {
  =To secure, retry and observe traffic between services #Right: those are its three jobs.
  ~To replace the database #A mesh moves requests; it stores nothing.
  ~%-33.3%To compile the services faster
  ####A mesh works on the traffic between services.
}

// no title: the key comes from the stem
What does a sidecar proxy sit next to?{~%100%One service instance ~%0%The whole cluster ~The load balancer}

$CATEGORY: retries

Grant is {~buried =entombed ~living} in Grant's tomb.
"""


def test_moodle_file_gives_stem_options_feedback_and_category():
    first, second, third = parse_gift(MOODLE_FILE)

    assert first.key == "mesh-purpose"
    assert first.category == "why-service-mesh"
    assert first.stem == "Why add a **service mesh**\nto a set of microservices?"
    assert [o.text for o in first.options] == [
        "To secure, retry and observe traffic between services",
        "To replace the database",
        "To compile the services faster",
    ]
    assert [o.correct for o in first.options] == [True, False, False]
    assert first.options[0].feedback == "Right: those are its three jobs."
    assert first.options[1].feedback == "A mesh moves requests; it stores nothing."
    assert first.general_feedback == "A mesh works on the traffic between services."
    assert first.steps == [] and first.quick_check == "" and first.common_mistakes == []

    # ~%100% is the right answer; ~%0% and a plain ~ are wrong.
    assert second.key == "what-does-a-sidecar-proxy-sit-next-to"
    assert [o.correct for o in second.options] == [True, False, False]
    assert second.category == "why-service-mesh"

    # Missing-word form: the blank stays where the answers were.
    assert third.stem == "Grant is _____ in Grant's tomb."
    assert third.category == "retries"


def test_escapes_are_read_as_literal_characters():
    text = r"::a\:b:: 1 \= 2 \{really\} \~ \# \\ done\nnext line {=yes \# no #fb \: \= ~no}"
    (question,) = parse_gift(text)
    assert question.key == "a:b"
    assert question.stem == "1 = 2 {really} ~ # \\ done\nnext line"
    assert question.options[0] == OptionData(text="yes # no", correct=True, feedback="fb : =")


def test_windows_line_endings_and_byte_order_mark_are_read():
    (question,) = parse_gift("\ufeff// c\r\n::q:: Which?\r\n{\r\n=a\r\n~b\r\n}\r\n")
    assert (question.key, question.stem, [o.text for o in question.options]) == ("q", "Which?", ["a", "b"])


def test_generated_keys_are_stable_and_distinct():
    text = "Same stem? {=a ~b}\n\nSame stem? {=c ~d}\n"
    assert [q.key for q in parse_gift(text)] == ["same-stem", "same-stem-2"]
    assert [q.key for q in parse_gift(text)] == ["same-stem", "same-stem-2"]


def test_external_general_feedback_without_markers_stays_whole():
    text = "::q:: Stem {\n=a\n~b\n####First line of a long explanation.\nStep by step is how we work.\n}"
    (question,) = parse_gift(text)
    assert question.general_feedback == "First line of a long explanation.\nStep by step is how we work."
    assert question.steps == []


def test_structured_feedback_and_metadata_comment_are_read():
    text = """\
// tags: retries, timeouts; difficulty: easy
::retry-storm:: Three hops each retry 3 times. How many calls can one request cause? {
=27 #Right.
~9 #Counts only two hops.
####Step 1: Count the tries per hop
Each hop makes up to 3 tries.
Step 2: Multiply across hops
Quick Check: 3 × 3 × 3 = 27
Common mistake: Adding the retries instead of multiplying them.
}
"""
    (question,) = parse_gift(text)
    assert question.tags == ["retries", "timeouts"]
    assert question.difficulty == "easy"
    assert question.steps == [
        StepData("Count the tries per hop", "Each hop makes up to 3 tries."),
        StepData("Multiply across hops", ""),
    ]
    assert question.quick_check == "3 × 3 × 3 = 27"
    assert question.common_mistakes == ["Adding the retries instead of multiplying them."]
    assert question.general_feedback == ""


# --- round trips ----------------------------------------------------------------------

SEED_LIKE = QuestionData(
    key="retry-storm",
    stem="Service A calls B, B calls C; each hop retries {3} times: how many calls reach C?",
    options=[
        OptionData("27", True, "Right: 3 × 3 × 3."),
        OptionData("9", False, "Counts one hop too few."),
        OptionData("%50 more than 3", False, "Not a weight, just text."),
        OptionData("[html] <b>3</b>", False, "Looks like a format prefix."),
    ],
    category="retries",
    steps=[StepData("Count: tries per hop", "// three tries each"), StepData("Multiply", "3 × 3 × 3 = 27")],
    quick_check="3³ = 27",
    common_mistakes=["Adding instead of multiplying", "Forgetting the first try"],
    general_feedback="Quick check: this line is free text, not a marker.\nSecond line.",
    tags=["retries", "load"],
    difficulty="hard",
)


def test_export_is_readable_gift():
    text = export_gift([SEED_LIKE])
    assert "$CATEGORY: $course$/top/retries" in text
    assert "// tags: retries, load; difficulty: hard" in text
    assert "::retry-storm:: [markdown]Service A calls B, B calls C; each hop retries \\{3\\} times\\: how many" in text
    assert "Step 1: Count\\: tries per hop" in text
    assert "Quick check: 3³ \\= 27" in text
    assert "Common mistake: Forgetting the first try" in text


def test_export_then_import_keeps_awkward_question():
    assert parse_gift(export_gift([SEED_LIKE])) == [SEED_LIKE]


AWKWARD = st.sampled_from([*"~=#{}:\\%[]/$-—>_ \t\n", "::", "####", "//", "\\n", "[html]", "Step 1:", "é", "漢", "🙂"])
# Fragments rather than single characters, so markers like '####' and 'Step 1:' turn up often.
TEXT = st.lists(
    st.one_of(AWKWARD, st.characters(blacklist_categories=("Cs",), blacklist_characters="\r")), max_size=12
).map(lambda parts: "".join(parts).strip())
NONEMPTY = TEXT.filter(bool)
TAG = st.from_regex(r"[a-z0-9][a-z0-9 -]{0,8}[a-z0-9]", fullmatch=True)


@st.composite
def questions(draw):
    count = draw(st.integers(1, 4))
    keys = draw(st.lists(NONEMPTY, min_size=count, max_size=count, unique=True))
    result = []
    for key in keys:
        option_count = draw(st.integers(2, 5))
        right = draw(st.integers(0, option_count - 1))
        options = [OptionData(draw(NONEMPTY), i == right, draw(TEXT)) for i in range(option_count)]
        result.append(
            QuestionData(
                key=key,
                stem=draw(NONEMPTY),
                options=options,
                category=draw(st.sampled_from(["", "why-service-mesh", "retries"])),
                steps=draw(st.lists(st.builds(StepData, TEXT, TEXT), max_size=3)),
                quick_check=draw(TEXT),
                common_mistakes=draw(st.lists(TEXT, max_size=3)),
                general_feedback=draw(TEXT),
                tags=draw(st.lists(TAG, max_size=3)),
                difficulty=draw(st.sampled_from(["easy", "medium", "hard"])),
            )
        )
    return result


@settings(max_examples=200, deadline=None)
@given(questions())
def test_export_then_import_gives_equal_questions(generated):
    assert parse_gift(export_gift(generated)) == generated


def test_export_refuses_question_it_cannot_write():
    two_right = QuestionData("k", "Stem", [OptionData("a", True), OptionData("b", True)])
    with pytest.raises(ValueError, match="exactly one correct"):
        export_gift([two_right])


# --- refusals -------------------------------------------------------------------------


def error_of(text: str) -> FormatError:
    with pytest.raises(FormatError) as caught:
        parse_gift(text)
    return caught.value


GOOD = "::good:: Fine? {=yes ~no}\n\n"  # two lines, so a bad question after it starts on line 3


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (GOOD + "::retry-storm:: Which? {\n~a\n~b\n}", 3, "question 'retry-storm' has no correct option"),
        (GOOD + "::q:: Which? {\n=a\n~b\n", 3, "unclosed '{' — every question needs a closing '}'"),
        (GOOD + "::q:: Which? {~a}", 3, "question 'q' has 1 option; at least 2 are needed"),
        (GOOD + "::q:: Which? {\n=a\n~b\n=c\n}", 6, "more than one correct option ('=') in a single-answer question"),
        (GOOD + "::q:: Which? }=a ~b{", 3, "'}' without an opening '{'"),
        (GOOD + "::q:: Which? {=a ~b}\n::r:: Next {=c ~d}", 4, "separate questions with a blank line"),
        (GOOD + "::q Which? {=a ~b}", 3, "no closing '::'"),
        (GOOD + "::q:: {=a ~b}", 3, "no text before '{'"),
        (GOOD + "::q:: Which? {stray =a ~b}", 3, "text before the first option"),
        (GOOD + "::good:: Again? {=a ~b}", 3, "question key 'good' is used twice (first at line 1)"),
    ],
)
def test_malformed_question_is_refused_with_line_and_reason(text, line, reason):
    error = error_of(text)
    assert error.line == line
    assert reason in error.reason
    assert str(error).startswith(f"line {line}: ")


def test_first_problem_is_reported_and_nothing_is_returned():
    text = GOOD + "::bad1:: A? {=a ~b =c}\n\n::bad2:: B? {~a ~b}"
    assert error_of(text).line == 3
