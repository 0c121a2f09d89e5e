"""Item analysis against a small quiz worked out by hand."""

import math

import pytest

from quizzes.statistics import ItemResponse, QuestionOptions, QuestionStats, item_analysis

# Six attempts at a five-question quiz; option "a" is right everywhere (score 1), others score 0.
#
#          Q1  Q2  Q3  Q4  Q5   total
#   A1     a   a   a   a   a    5
#   A2     a   a   b   a   a    4
#   A3     a   b   a   c   a    3
#   A4     b   a   a   c   a    3
#   A5     c   b   a   b   a    2
#   A6     b   c   c   b   a    1
#
# Ranked by total: top third (6 // 3 = 2 attempts) = A1, A2; bottom third = A5, A6.
CHOICES = ["aaaaa", "aabaa", "abaca", "baaca", "cbaba", "bccba"]
QUESTIONS = {
    "Q1": QuestionOptions(option_ids=["a", "b", "c"], correct_option_id="a"),
    "Q2": QuestionOptions(option_ids=["a", "b", "c"], correct_option_id="a"),
    "Q3": QuestionOptions(option_ids=["a", "b", "c"], correct_option_id="a"),
    "Q4": QuestionOptions(option_ids=["a", "b", "c", "d"], correct_option_id="a"),
    "Q5": QuestionOptions(option_ids=["a", "b", "c"], correct_option_id="a"),
}
ATTEMPTS = [
    {f"Q{i + 1}": ItemResponse(score=1.0 if choice == "a" else 0.0, option_id=choice) for i, choice in enumerate(row)}
    for row in CHOICES
]


@pytest.fixture(scope="module")
def stats():
    return {s.question_id: s for s in item_analysis(ATTEMPTS, QUESTIONS)}


def test_q1_facility_sd_and_discrimination(stats):
    # x = 1,1,1,0,0,0: F = 3/6 = 50 %.
    # Deviations ±0.5, Σ(x−x̄)² = 6 · 0.25 = 1.5; sample variance 1.5 / 5 = 0.3; SD = √0.3 = 54.77 %.
    # Rest of test y = total − x = 4,3,2,3,2,1; ȳ = 15/6 = 2.5; y − ȳ = 1.5, .5, −.5, .5, −.5, −1.5.
    # Σ(x−x̄)(y−ȳ) = .75 + .25 − .25 − .25 + .25 + .75 = 1.5; Σ(y−ȳ)² = 2.25·2 + .25·4 = 5.5.
    # r = 1.5 / √(1.5 · 5.5) = 1.5 / 2.8723 = 0.52223  ->  D = 52.22.
    q1 = stats["Q1"]
    assert q1.attempts == 6
    assert q1.facility_index == pytest.approx(50.0)
    assert q1.standard_deviation == pytest.approx(100 * math.sqrt(0.3))
    assert q1.standard_deviation == pytest.approx(54.772, abs=1e-3)
    assert q1.discrimination_index == pytest.approx(52.223, abs=1e-3)
    assert q1.discrimination_flag is None  # 52 ≥ 30: adequate or better
    assert [(o.option_id, o.count) for o in q1.options] == [("a", 3), ("b", 2), ("c", 1)]
    assert q1.unpicked_option_ids == []
    assert q1.distractors_favoured_by_strong_learners == []


def test_q3_negative_discrimination_and_distractor_chosen_by_strong_learners(stats):
    # x = 1,0,1,1,1,0: F = 4/6 = 66.67 %; x̄ = 2/3.
    # Σ(x−x̄)² = 4·(1/3)² + 2·(2/3)² = 4/3; variance (4/3)/5 = 4/15; SD = √(4/15) = 51.64 %.
    # y = 4,4,2,2,1,1; ȳ = 7/3; y − ȳ = 5/3, 5/3, −1/3, −1/3, −4/3, −4/3.
    # Σ(x−x̄)(y−ȳ) = (5 − 10 − 1 − 1 − 4 + 8)/9 = −1/3; Σ(y−ȳ)² = (25+25+1+1+16+16)/9 = 28/3.
    # r = (−1/3) / √(4/3 · 28/3) = −1/√112 = −0.09449  ->  D = −9.45, flagged negative.
    q3 = stats["Q3"]
    assert q3.facility_index == pytest.approx(200 / 3)
    assert q3.standard_deviation == pytest.approx(100 * math.sqrt(4 / 15))
    assert q3.discrimination_index == pytest.approx(-100 / math.sqrt(112))
    assert q3.discrimination_flag == "negative"
    # Distractor b: picked by A2 (top third) and nobody in the bottom third -> flagged.
    # Distractor c: picked by A6 (bottom third) only -> not flagged.
    b, c = q3.options[1], q3.options[2]
    assert (b.count, b.top_third_count, b.bottom_third_count) == (1, 1, 0)
    assert (c.count, c.top_third_count, c.bottom_third_count) == (1, 0, 1)
    assert q3.distractors_favoured_by_strong_learners == ["b"]


def test_q4_option_nobody_picked(stats):
    # x = 1,1,0,0,0,0: F = 2/6 = 33.33 %; x̄ = 1/3; Σ(x−x̄)² = 2·(2/3)² + 4·(1/3)² = 4/3.
    # y = 4,3,3,3,2,1; ȳ = 8/3; y − ȳ = 4/3, 1/3, 1/3, 1/3, −2/3, −5/3.
    # Σ(x−x̄)(y−ȳ) = (8 + 2 − 1 − 1 + 2 + 5)/9 = 5/3; Σ(y−ȳ)² = (16+1+1+1+4+25)/9 = 16/3.
    # r = (5/3) / √(4/3 · 16/3) = (5/3) / (8/3) = 0.625  ->  D = 62.5.
    q4 = stats["Q4"]
    assert q4.facility_index == pytest.approx(100 / 3)
    assert q4.discrimination_index == pytest.approx(62.5)
    assert [(o.option_id, o.count) for o in q4.options] == [("a", 2), ("b", 2), ("c", 2), ("d", 0)]
    assert q4.unpicked_option_ids == ["d"]
    # b is picked only by A5 and A6, the bottom third: a distractor doing its job.
    assert q4.distractors_favoured_by_strong_learners == []


def test_q5_everyone_right_has_no_discrimination_index(stats):
    # x = 1 for everyone: F = 100 %, SD = 0, and r is undefined (x has no variance: 0/0).
    q5 = stats["Q5"]
    assert q5.facility_index == pytest.approx(100.0)
    assert q5.standard_deviation == pytest.approx(0.0)
    assert q5.discrimination_index is None
    assert q5.discrimination_flag is None
    assert q5.unpicked_option_ids == ["b", "c"]


def test_results_follow_the_order_of_the_questions_given():
    reordered = {key: QUESTIONS[key] for key in ["Q5", "Q1"]}
    assert [s.question_id for s in item_analysis(ATTEMPTS, reordered)] == ["Q5", "Q1"]


@pytest.mark.parametrize(
    ("index", "flag"), [(-9.45, "negative"), (0.0, "weak"), (29.9, "weak"), (30.0, None), (75.0, None), (None, None)]
)
def test_discrimination_flag_follows_moodle_guidance(index, flag):
    stats = QuestionStats("q", 10, 50.0, 50.0, index, [])
    assert stats.discrimination_flag == flag


def test_unanswered_counts_as_an_attempt_with_no_option_and_missing_questions_are_skipped():
    options = {"Q": QuestionOptions(["a", "b"], "a")}
    attempts = [
        {"Q": ItemResponse(1.0, "a")},
        {"Q": ItemResponse(0.0, None)},  # seen, not answered
        {"other": ItemResponse(1.0, "x")},  # never saw Q
    ]
    (q,) = item_analysis(attempts, options)
    assert q.attempts == 2
    assert q.facility_index == pytest.approx(50.0)
    assert [o.count for o in q.options] == [1, 0]
    assert q.unpicked_option_ids == ["b"]


def test_single_attempt_has_no_spread_or_correlation():
    (q,) = item_analysis([{"Q": ItemResponse(1.0, "a")}], {"Q": QuestionOptions(["a", "b"], "a")})
    assert (q.facility_index, q.standard_deviation, q.discrimination_index) == (100.0, None, None)


def test_no_attempts_gives_no_numbers_and_no_flags():
    (q,) = item_analysis([], {"Q": QuestionOptions(["a", "b"], "a")})
    assert (q.attempts, q.facility_index, q.standard_deviation, q.discrimination_index) == (0, None, None, None)
    assert q.unpicked_option_ids == []


def test_foreign_option_or_score_out_of_range_is_refused():
    options = {"Q": QuestionOptions(["a", "b"], "a")}
    with pytest.raises(ValueError, match="does not have"):
        item_analysis([{"Q": ItemResponse(1.0, "z")}], options)
    with pytest.raises(ValueError, match="outside 0..1"):
        item_analysis([{"Q": ItemResponse(1.5, "a")}], options)
