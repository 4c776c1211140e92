"""The online store contract: every backend passes every test here (see ``harness.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from headwater.errors import FencedError, ValidationError
from headwater.store.online import OnlineStore
from tests.store.online.harness import Harness

NS = "user"


def blobs(entity: str, features: int = 3, tag: str = "") -> dict[str, bytes]:
    return {f"f{j}": f"{entity}:{j}{tag}".encode() for j in range(features)}


# -- writing and reading -----------------------------------------------------------------


def test_write_then_read_the_whole_feature_set(store: OnlineStore) -> None:
    store.write(NS, [("u1", blobs("u1")), ("u2", blobs("u2"))])
    assert store.read(NS, "u1") == blobs("u1")
    assert store.read(NS, "u2") == blobs("u2")


def test_unknown_entity_and_namespace_read_empty(store: OnlineStore) -> None:
    assert store.read(NS, "nobody") == {}
    store.write(NS, [("u1", blobs("u1"))])
    assert store.read(NS, "nobody") == {}
    assert store.read("item", "u1") == {}
    assert store.read_many("item", ["u1", "u2"]) == [{}, {}]
    assert store.version("item") is None
    assert store.meta_get("item", "offsets") is None


def test_a_write_updates_only_the_features_it_names(store: OnlineStore) -> None:
    store.write(NS, [("u1", {"a": b"1", "b": b"2"})])
    store.write(NS, [("u1", {"b": b"3", "c": b"4"})])
    assert store.read(NS, "u1") == {"a": b"1", "b": b"3", "c": b"4"}


def test_rows_of_one_entity_in_a_batch_merge_the_later_winning(store: OnlineStore) -> None:
    store.write(NS, [("u1", {"a": b"1", "b": b"2"}), ("u2", {"a": b"x"}), ("u1", {"b": b"3"})])
    assert store.read(NS, "u1") == {"a": b"1", "b": b"3"}
    assert store.read(NS, "u2") == {"a": b"x"}


def test_a_row_without_features_changes_nothing(store: OnlineStore) -> None:
    store.write(NS, [("u1", {})])
    assert store.read(NS, "u1") == {}
    store.write(NS, [("u1", {"a": b"1"})])
    store.write(NS, [("u1", {})])
    assert store.read(NS, "u1") == {"a": b"1"}


def test_read_many_keeps_the_order_and_answers_unknowns(store: OnlineStore) -> None:
    store.write(NS, [(f"u{i}", blobs(f"u{i}")) for i in range(5)])
    got = store.read_many(NS, ["u3", "nobody", "u0", "u3"])
    assert got == [blobs("u3"), {}, blobs("u0"), blobs("u3")]
    assert store.read_many(NS, []) == []
    assert store.read_many(NS, ("u1",)) == [blobs("u1")]


def test_what_is_read_is_a_copy(store: OnlineStore) -> None:
    store.write(NS, [("u1", {"a": b"1"})])
    got = store.read(NS, "u1")
    got["a"] = b"changed"
    store.read_many(NS, ["u1"])[0]["b"] = b"added"
    assert store.read(NS, "u1") == {"a": b"1"}


def test_what_was_written_is_copied(store: OnlineStore) -> None:
    features = {"a": b"1"}
    store.write(NS, [("u1", features)])
    features["a"] = b"changed"
    assert store.read(NS, "u1") == {"a": b"1"}


def test_namespaces_are_separate(store: OnlineStore) -> None:
    store.write("user", [("k", {"a": b"user"})], version=5, meta={"m": b"user"})
    store.write("item", [("k", {"a": b"item"})], version=1, meta={"m": b"item"})
    assert store.read("user", "k") == {"a": b"user"}
    assert store.read("item", "k") == {"a": b"item"}
    assert (store.version("user"), store.version("item")) == (5, 1)
    assert (store.meta_get("user", "m"), store.meta_get("item", "m")) == (b"user", b"item")
    store.delete("item", ["k"])
    assert store.read("user", "k") == {"a": b"user"}


def test_many_features_come_back_in_one_read(store: OnlineStore) -> None:
    features = {f"feature_{j}": bytes([j % 256]) * (j % 50) for j in range(3000)}
    store.write(NS, [("wide", features), ("narrow", {"x": b"1"})])
    assert store.read(NS, "wide") == features
    assert store.read_many(NS, ["narrow", "wide"]) == [{"x": b"1"}, features]


@pytest.mark.parametrize(
    "entity",
    ["plain", "with:colons:e:x", "spaces and\ttabs", "ünïcødé ✓", "*?[glob]\\", "x" * 1000],
)
def test_keys_and_blobs_are_binary_safe(store: OnlineStore, entity: str) -> None:
    features = {
        "empty": b"",
        "nul": b"\x00\x00\xff\xfe",
        "crlf": b"\r\n*3\r\n$3\r\nSET\r\n",
        "all bytes": bytes(range(256)),
        "big": bytes(range(256)) * 4096,
        "näme:with:colons": b"ok",
    }
    store.write(NS, [(entity, features)])
    assert store.read(NS, entity) == features
    assert store.read_many(NS, [entity]) == [features]


# -- deleting ---------------------------------------------------------------------------


def test_delete_removes_whole_feature_sets(store: OnlineStore) -> None:
    store.write(NS, [(f"u{i}", blobs(f"u{i}")) for i in range(4)])
    store.delete(NS, ["u1", "u3", "nobody", "u1"])
    assert store.read_many(NS, ["u0", "u1", "u2", "u3"]) == [blobs("u0"), {}, blobs("u2"), {}]
    store.delete(NS, [])
    store.write(NS, [("u1", {"new": b"1"})])
    assert store.read(NS, "u1") == {"new": b"1"}


# -- versions and metadata ------------------------------------------------------------------


def test_version_and_meta_commit_with_the_rows(store: OnlineStore) -> None:
    assert store.version(NS) is None
    store.write(NS, [("u1", {"a": b"1"})], version=1, meta={"offsets": b"[10, 20]"})
    assert store.version(NS) == 1
    assert store.meta_get(NS, "offsets") == b"[10, 20]"
    store.write(NS, [("u1", {"a": b"2"})])  # no version: the last one stays
    assert store.version(NS) == 1
    store.write(NS, [], version=7, meta={"offsets": b"[11, 20]", "other": b"x"})
    assert store.version(NS) == 7
    assert store.meta_get(NS, "offsets") == b"[11, 20]"
    assert store.meta_get(NS, "other") == b"x"
    assert store.meta_get(NS, "never") is None


def test_meta_set_alone(store: OnlineStore) -> None:
    store.meta_set(NS, "owner", b"engine-1")
    assert store.meta_get(NS, "owner") == b"engine-1"
    store.meta_set(NS, "owner", b"")
    assert store.meta_get(NS, "owner") == b""
    assert store.version(NS) is None


def test_meta_key_version_does_not_clash_with_the_version(store: OnlineStore) -> None:
    store.write(NS, [], version=3, meta={"version": b"not a number"})
    assert store.version(NS) == 3
    assert store.meta_get(NS, "version") == b"not a number"


@pytest.mark.parametrize("stale", [5, 4, 0])
def test_a_stale_version_is_refused_and_nothing_of_it_applied(
    store: OnlineStore, stale: int
) -> None:
    store.write(NS, [("u1", {"a": b"1"})], version=5, meta={"offsets": b"5"})
    with pytest.raises(ValidationError, match="not greater") as raised:
        store.write(NS, [("u1", {"a": b"stale"}), ("u2", {"a": b"stale"})], version=stale,
                    meta={"offsets": b"stale"})
    assert raised.value.field == "version"
    assert store.read_many(NS, ["u1", "u2"]) == [{"a": b"1"}, {}]
    assert store.version(NS) == 5
    assert store.meta_get(NS, "offsets") == b"5"
    store.write(NS, [("u1", {"a": b"6"})], version=6)
    assert store.read(NS, "u1") == {"a": b"6"}


def test_huge_versions_compare_exactly(store: OnlineStore) -> None:
    store.write(NS, [], version=2**62 + 1)
    with pytest.raises(ValidationError):
        store.write(NS, [], version=2**62)
    store.write(NS, [], version=2**63 - 1)
    assert store.version(NS) == 2**63 - 1


# -- restart -------------------------------------------------------------------------


def test_everything_survives_a_reopen(harness: Harness) -> None:
    store = harness.open()
    store.write(NS, [(f"u{i}", blobs(f"u{i}", 20)) for i in range(100)], version=3,
                meta={"offsets": b"abc"})
    store.write(NS, [("u5", {"f0": b"changed"})])
    store.delete(NS, ["u7"])
    store.meta_set("item", "owner", b"me")
    store = harness.reopen(store)
    assert store.read(NS, "u5") == {**blobs("u5", 20), "f0": b"changed"}
    assert store.read(NS, "u7") == {}
    assert store.read_many(NS, ["u0", "u99"]) == [blobs("u0", 20), blobs("u99", 20)]
    assert store.version(NS) == 3
    assert store.meta_get(NS, "offsets") == b"abc"
    assert store.meta_get("item", "owner") == b"me"
    with pytest.raises(ValidationError):
        store.write(NS, [], version=3)
    store.write(NS, [("u7", {"back": b"1"})], version=4)
    assert harness.reopen(store).read(NS, "u7") == {"back": b"1"}


# -- bad input -----------------------------------------------------------------------

BAD_WRITES: list[tuple[str, dict[str, Any], str]] = [
    ("namespace int", {"namespace": 5}, "namespace"),
    ("namespace empty", {"namespace": ""}, "namespace"),
    ("namespace colon", {"namespace": "a:b"}, "namespace"),
    ("namespace slash", {"namespace": "a/b"}, "namespace"),
    ("rows dict", {"rows": {"u1": {"a": b"1"}}}, "rows"),
    ("rows str", {"rows": "u1"}, "rows"),
    ("rows none", {"rows": None}, "rows"),
    ("row not pair", {"rows": [("u1", {"a": b"1"}), "u2"]}, "rows[1]"),
    ("row triple", {"rows": [("u1", {"a": b"1"}, 3)]}, "rows[0]"),
    ("entity int", {"rows": [(7, {"a": b"1"})]}, "rows[0][0]"),
    ("entity empty", {"rows": [("", {"a": b"1"})]}, "rows[0][0]"),
    ("features list", {"rows": [("u1", [b"1"])]}, "rows[0][1]"),
    ("feature name int", {"rows": [("u1", {1: b"1"})]}, "rows[0][1]"),
    ("feature name empty", {"rows": [("u1", {"": b"1"})]}, "rows[0][1]"),
    ("blob str", {"rows": [("u1", {"a": "1"})]}, "rows[0][1]['a']"),
    ("blob int", {"rows": [("u0", {"a": b"1"}), ("u1", {"a": b"1", "b": 2})]}, "rows[1][1]['b']"),
    ("blob bytearray", {"rows": [("u1", {"a": bytearray(b"1")})]}, "rows[0][1]['a']"),
    ("blob none", {"rows": [("u1", {"a": None})]}, "rows[0][1]['a']"),
    ("version str", {"version": "3"}, "version"),
    ("version bool", {"version": True}, "version"),
    ("version negative", {"version": -1}, "version"),
    ("version float", {"version": 3.0}, "version"),
    ("version too big", {"version": 2**63}, "version"),
    ("meta list", {"meta": [b"1"]}, "meta"),
    ("meta value str", {"meta": {"offsets": "[1]"}}, "meta['offsets']"),
    ("meta key int", {"meta": {1: b"1"}}, "meta"),
]


@pytest.mark.parametrize(("args", "field"), [c[1:] for c in BAD_WRITES],
                         ids=[c[0] for c in BAD_WRITES])
def test_bad_writes_name_the_field_and_change_nothing(
    store: OnlineStore, args: dict[str, Any], field: str
) -> None:
    store.write(NS, [("u0", {"a": b"before"})], version=1, meta={"m": b"before"})
    call: dict[str, Any] = {"namespace": NS, "rows": [("u0", {"a": b"after"})], **args}
    with pytest.raises(ValidationError) as raised:
        store.write(call.pop("namespace"), call.pop("rows"), **call)
    assert raised.value.field == field
    assert store.read(NS, "u0") == {"a": b"before"}
    assert store.version(NS) == 1
    assert store.meta_get(NS, "m") == b"before"


BAD_CALLS: list[tuple[str, str, tuple[Any, ...], str]] = [
    ("read namespace", "read", (None, "u1"), "namespace"),
    ("read namespace list", "read", (["user"], "u1"), "namespace"),
    ("read entity int", "read", (NS, 1), "entity"),
    ("read entity bytes", "read", (NS, b"u0"), "entity"),
    ("read entity list", "read", (NS, ["u0"]), "entity"),
    ("read entity empty", "read", (NS, ""), "entity"),
    ("read_many str", "read_many", (NS, "u0"), "entities"),
    ("read_many int", "read_many", (NS, 5), "entities"),
    ("read_many item", "read_many", (NS, ["u0", 3]), "entities[1]"),
    ("read_many unhashable", "read_many", (NS, ["u0", ["x"]]), "entities[1]"),
    ("read_many namespace", "read_many", ("a b", ["u0"]), "namespace"),
    ("delete str", "delete", (NS, "u0"), "entities"),
    ("delete item", "delete", (NS, [None]), "entities[0]"),
    ("delete namespace", "delete", (3, ["u0"]), "namespace"),
    ("version namespace", "version", (":",), "namespace"),
    ("meta_get key", "meta_get", (NS, 3), "key"),
    ("meta_get namespace", "meta_get", (None, "k"), "namespace"),
    ("meta_set key", "meta_set", (NS, "", b"1"), "key"),
    ("meta_set value", "meta_set", (NS, "k", "1"), "value"),
    ("meta_set namespace", "meta_set", ("", "k", b"1"), "namespace"),
]


@pytest.mark.parametrize(("method", "args", "field"), [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_arguments_name_the_field(
    store: OnlineStore, method: str, args: tuple[Any, ...], field: str
) -> None:
    store.write(NS, [("u0", {"a": b"1"})])
    with pytest.raises(ValidationError) as raised:
        getattr(store, method)(*args)
    assert raised.value.field == field
    assert store.read(NS, "u0") == {"a": b"1"}


# -- writing in columns ------------------------------------------------------------------


def test_write_columns_equals_write(store: OnlineStore) -> None:
    store.write(NS, [("u1", {"a": b"old", "z": b"kept"})])
    store.write_columns(NS, ["u1", "u2", "u1"], {"a": [b"1", b"2", b"3"], "b": [b"4", b"5", b"6"]},
                        version=3, meta={"offsets": b"7"})
    assert store.read(NS, "u1") == {"a": b"3", "b": b"6", "z": b"kept"}
    assert store.read(NS, "u2") == {"a": b"2", "b": b"5"}
    assert store.version(NS) == 3
    assert store.meta_get(NS, "offsets") == b"7"
    store.write_columns(NS, [], {})  # nothing to do
    assert store.read(NS, "u2") == {"a": b"2", "b": b"5"}


def test_writes_in_columns_keep_what_they_do_not_name_and_survive_a_reopen(
    harness: Harness,
) -> None:
    store = harness.open()
    names = [f"u{i}" for i in range(50)]
    store.write_columns(NS, names, {"a": [b"a0"] * 50, "b": [b"b0"] * 50}, version=1)
    store.write_columns(NS, names[:10], {"a": [b"a1"] * 10, "b": [b"b1"] * 10}, version=2)
    store.write(NS, [("u3", {"z": b"row"})])  # a feature the columns do not name
    store.write_columns(NS, names[:5], {"a": [b"a2"] * 5, "b": [b"b2"] * 5}, version=3)
    entities, column = ["u60", "u4"], [b"a3", b"a3"]
    store.write_columns(NS, entities, {"a": column}, version=4)
    entities[0], column[0] = "u61", b"changed"  # what was written is copied
    expected = {"u0": {"a": b"a2", "b": b"b2"}, "u3": {"a": b"a2", "b": b"b2", "z": b"row"},
                "u4": {"a": b"a3", "b": b"b2"}, "u7": {"a": b"a1", "b": b"b1"},
                "u49": {"a": b"a0", "b": b"b0"}, "u60": {"a": b"a3"}, "u61": {}}
    for _ in range(2):
        assert {e: store.read(NS, e) for e in expected} == expected
        assert store.version(NS) == 4
        store = harness.reopen(store)


@pytest.mark.parametrize(
    ("entities", "columns", "field"),
    [
        (["u1", 7], {"a": [b"1", b"2"]}, "entities[1]"),
        (["u1", ""], {"a": [b"1", b"2"]}, "entities[1]"),
        ("u1", {"a": [b"1"]}, "entities"),
        (["u1", "u2"], {"a": [b"1"]}, "columns['a']"),
        (["u1", "u2"], {"a": [b"1", "no"]}, "columns['a'][1]"),
        (["u1"], [b"1"], "columns"),
    ],
)
def test_write_columns_names_bad_input(store: OnlineStore, entities: Any, columns: Any,
                                       field: str) -> None:
    with pytest.raises(ValidationError) as info:
        store.write_columns(NS, entities, columns)
    assert info.value.field == field
    assert store.read(NS, "u1") == {}


def test_write_columns_is_fenced_by_versions_too(store: OnlineStore) -> None:
    store.write_columns(NS, ["u1"], {"a": [b"1"]}, version=5)
    with pytest.raises(ValidationError) as info:
        store.write_columns(NS, ["u1"], {"a": [b"2"]}, version=5)
    assert info.value.field == "version"
    assert store.read(NS, "u1") == {"a": b"1"}


# -- fences ------------------------------------------------------------------------------


def test_a_claim_fences_off_the_writes_of_the_epoch_before(harness: Harness) -> None:
    store = harness.open()
    first = store.claim(NS, "epoch:events:0")
    store.write_columns(NS, ["u1"], {"a": [b"1"]}, fence=("epoch:events:0", first),
                        meta={"applied:events:0": b"10"})
    second = store.claim(NS, "epoch:events:0")
    assert second > first
    with pytest.raises(FencedError, match="epoch:events:0"):
        store.write_columns(NS, ["u1", "u2"], {"a": [b"stale", b"stale"]},
                            fence=("epoch:events:0", first), meta={"applied:events:0": b"11"})
    with pytest.raises(FencedError):
        store.write(NS, [("u1", {"a": b"stale"})], fence=("epoch:events:0", first))
    assert store.read_many(NS, ["u1", "u2"]) == [{"a": b"1"}, {}]
    assert store.meta_get(NS, "applied:events:0") == b"10"
    store.write(NS, [("u1", {"a": b"2"})], fence=("epoch:events:0", second))
    store.write(NS, [("u1", {"b": b"other"})])  # an unfenced write is not the fence's
    other = store.claim(NS, "epoch:events:1")
    store.write(NS, [("u9", {"a": b"9"})], fence=("epoch:events:1", other))
    store = harness.reopen(store)
    assert store.read(NS, "u1") == {"a": b"2", "b": b"other"}
    assert store.claim(NS, "epoch:events:0") == second + 1  # kept across a reopen
    with pytest.raises(FencedError):
        store.write(NS, [("u1", {"a": b"3"})], fence=("epoch:events:0", second))


def test_a_fence_never_claimed_refuses_writes(store: OnlineStore) -> None:
    with pytest.raises(FencedError):
        store.write(NS, [("u1", {"a": b"1"})], fence=("epoch:events:0", 0))
    assert store.read(NS, "u1") == {}


@pytest.mark.parametrize("fence", [("", 1), ("k", -1), ("k", True), ("k",), "k", ("k", 1.0)])
def test_a_bad_fence_names_the_field(store: OnlineStore, fence: Any) -> None:
    with pytest.raises(ValidationError) as info:
        store.write_columns(NS, ["u1"], {"a": [b"1"]}, fence=fence)
    assert info.value.field == "fence"
    assert store.read(NS, "u1") == {}
