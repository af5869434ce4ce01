"""Canonical JSON and `sha256-…` hashes exactly as docs/contract.md defines them, pinned by golden vectors."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swoosh.workflows.canonical import _reject_floats, canonical_json, content_hash, is_hash, reject_floats

# Computed once from the contract's definition (json.dumps(sort_keys, compact, ensure_ascii=False),
# UTF-8, SHA-256) and hard-coded: a change in the hashing scheme must break these.
GOLDEN = [
    ({}, b"{}", "sha256-44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"),
    ([], b"[]", "sha256-4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"),
    (0, b"0", "sha256-5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9"),
    (
        {"b": 1, "a": [1, "é"]},
        b'{"a":[1,"\xc3\xa9"],"b":1}',
        "sha256-8717ac25ea6b88548fae92fcf938c6f0764f85913ba025812e1859bf0166f5d8",
    ),
    (
        {"z": {"y": [True, None, {"x": "ü"}]}, "a": -7},
        b'{"a":-7,"z":{"y":[true,null,{"x":"\xc3\xbc"}]}}',
        "sha256-8261588f4bdb7c977ef22132b3de0ea1f6ad518d4aeaddc9b782d601b6e269c6",
    ),
]


@pytest.mark.parametrize(("value", "expected_bytes", "_hash"), GOLDEN)
def test_canonical_json_golden_bytes(value: object, expected_bytes: bytes, _hash: str) -> None:
    assert canonical_json(value) == expected_bytes


@pytest.mark.parametrize(("value", "_bytes", "expected_hash"), GOLDEN)
def test_content_hash_golden_vectors(value: object, _bytes: bytes, expected_hash: str) -> None:
    assert content_hash(value) == expected_hash


def test_canonical_json_sorts_keys_at_every_depth() -> None:
    assert canonical_json({"b": {"d": 1, "c": 2}, "a": 0}) == b'{"a":0,"b":{"c":2,"d":1}}'


def test_canonical_json_has_no_whitespace() -> None:
    assert b" " not in canonical_json({"a": [1, 2, {"b": "c"}], "d": None})


def test_canonical_json_keeps_non_ascii_as_utf8() -> None:
    out = canonical_json({"name": "Zoë ☃"})
    assert out == '{"name":"Zoë ☃"}'.encode()
    assert b"\\u" not in out


def test_canonical_json_does_not_depend_on_insertion_order() -> None:
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})


def test_content_hash_has_prefix_and_64_lowercase_hex() -> None:
    value = content_hash({"x": 1})
    assert value.startswith("sha256-")
    digest = value.removeprefix("sha256-")
    assert len(digest) == 64 and digest == digest.lower()
    assert is_hash(value)


def test_is_hash_accepts_a_real_hash() -> None:
    assert is_hash("sha256-" + "0" * 64)


@pytest.mark.parametrize(
    "text",
    [
        "sha256-" + "A" * 64,  # uppercase
        "sha256-" + "0" * 63,  # short
        "sha256-" + "0" * 65,  # long
        "sha512-" + "0" * 64,  # wrong algorithm
        "0" * 71,  # no prefix
        "sha256-" + "g" * 64,  # not hex
        "",
        None,
        42,
    ],
)
def test_is_hash_rejects_malformed(text: object) -> None:
    assert not is_hash(text)


def test_reject_floats_accepts_plain_json() -> None:
    reject_floats({"a": [1, "x", True, None, {"b": -3}]})


@pytest.mark.parametrize("value", [1.0, {"a": 0.5}, [1, [2, 3.25]], {"a": {"b": [float("nan")]}}])
def test_reject_floats_rejects_float_anywhere(value: object) -> None:
    with pytest.raises(ValueError, match="floats are not allowed"):
        reject_floats(value)


def test_reject_floats_names_the_path() -> None:
    with pytest.raises(ValueError, match=r"\$\.a\[1\]\.b"):
        reject_floats({"a": [0, {"b": 1.5}]})


def test_reject_floats_rejects_non_string_keys() -> None:
    with pytest.raises(ValueError, match="keys must be strings"):
        reject_floats({1: "x"})


class _Flag(int):
    pass


_LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=3) | st.floats() | st.builds(_Flag)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner)  # not traversed, as JSON has no tuples
        | st.dictionaries(st.text(max_size=2) | st.integers(0, 3), inner, max_size=4)
        | st.dictionaries(st.text(max_size=2), inner, max_size=3).map(OrderedDict)
    ),
    max_leaves=12,
)


@given(_VALUES)
def test_reject_floats_agrees_with_the_plain_recursive_walk(value: Any) -> None:
    """The quick pre-check may only skip the slow walk when the walk would not raise."""
    try:
        _reject_floats(value, "$")
    except ValueError as err:
        with pytest.raises(ValueError) as got:
            reject_floats(value)
        assert str(got.value) == str(err)
    else:
        reject_floats(value)
