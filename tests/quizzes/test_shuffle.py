"""Option order per attempt and the letters derived from it (property-based)."""

from hypothesis import given
from hypothesis import strategies as st

from quizzes.shuffle import shuffled_order

option_ids = st.lists(st.integers(min_value=1, max_value=10**6), min_size=2, max_size=8, unique=True)
seeds = st.text(alphabet="0123456789abcdef", min_size=8, max_size=32)


@given(option_ids, seeds, st.integers(min_value=1, max_value=10**6))
def test_a_shuffle_is_a_permutation_and_repeatable(ids, seed, question_id):
    first = shuffled_order(ids, seed=seed, question_id=question_id)
    assert sorted(first) == sorted(ids)
    # the input order does not matter: a reload shows the same order
    assert shuffled_order(list(reversed(ids)), seed=seed, question_id=question_id) == first


def test_different_attempts_see_different_orders():
    ids = [1, 2, 3, 4]
    orders = {tuple(shuffled_order(ids, seed=f"seed{n}", question_id=7)) for n in range(50)}
    assert len(orders) > 10  # 24 permutations exist; 50 seeds hit many of them
