"""Response flags as a type: Envoy's text form both ways, and every flag the engine writes is declared."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from labs import decoder
from sandbox.mesh.config.flags import FLAG_EXPLANATIONS, Flag, Flags

ENGINE = Path(__file__).resolve().parents[3] / "sandbox" / "mesh"


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        (set(), "-"),
        ({"UT"}, "UT"),
        ({"URX", "UF"}, "UF,URX"),
        ({"DI", "FI"}, "FI,DI"),
        ({"RBAC", "DPE", "UO"}, "UO,RBAC,DPE"),
        (set(Flag), ",".join(Flag)),
    ],
)
def test_text_form_is_envoys_and_parses_back(flags, text):
    assert Flags(flags).text == text
    assert str(Flags(flags)) == text
    assert Flags.parse(text) == Flags(flags)


def test_an_empty_text_is_no_flag_and_an_undeclared_word_is_refused():
    assert Flags.parse("") == Flags()
    with pytest.raises(ValueError):
        Flags.parse("UF,BOGUS")
    with pytest.raises(ValueError):
        Flags({"LH"})  # an Envoy flag this mesh never produces


def test_flags_cannot_change_in_place_and_adding_gives_a_new_set():
    flags = Flags({Flag.FI})
    assert not hasattr(flags, "add")
    more = flags.added(Flag.DI)
    assert isinstance(more, Flags) and more.text == "FI,DI"
    assert flags.text == "FI"
    assert isinstance(flags | {"UT"}, Flags)


def test_every_flag_has_one_plain_explanation():
    assert set(FLAG_EXPLANATIONS) == set(Flag)
    assert all(flag.explanation.rstrip(")").endswith(".") and len(flag.explanation) > 20 for flag in Flag)


def test_the_decoder_explains_the_engines_flags_from_the_engines_table():
    for flag in Flag:
        assert decoder.decode(flag.value).meanings[0].meaning == flag.explanation
    # Its own list is only for Envoy flags this mesh never produces, so no flag is explained twice.
    assert set(decoder._ENVOY_ONLY_FLAGS).isdisjoint(Flag)


def _flag_words_written_as_text(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals in a flag position: `flags=` arguments, the flag of an UpstreamError, `"X" in x.flags`."""
    found: list[tuple[int, str]] = []

    def literals(node: ast.AST) -> None:
        for part in ast.walk(node):
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                found.append((part.lineno, part.value))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "flags" and isinstance(keyword.value, ast.Set | ast.List | ast.Tuple):
                    literals(keyword.value)
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "UpstreamError" and node.args:
                literals(node.args[0])
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            if any(isinstance(c, ast.Attribute) and c.attr == "flags" for c in node.comparators):
                literals(node.left)
    return found


def _flag_members_named(tree: ast.AST) -> list[tuple[int, str]]:
    return [
        (node.lineno, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Flag"
    ]


def test_the_engine_writes_every_flag_through_the_declared_type():
    as_text, undeclared = [], []
    for path in sorted(ENGINE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(ENGINE)
        as_text += [f"{where}:{line} {word!r}" for line, word in _flag_words_written_as_text(tree)]
        undeclared += [
            f"{where}:{line} Flag.{name}"
            for line, name in _flag_members_named(tree)
            if name not in Flag.__members__ and not hasattr(Flag, name)
        ]
    assert as_text == [], "write these flags as Flag members"
    assert undeclared == []
