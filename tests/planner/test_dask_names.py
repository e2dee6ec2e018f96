"""Task ids of Dask keys: name prefix without tokens, block index, layers that share a prefix
counting on, float indices shortened unless two would collide, and an order that follows the
program, not the dict or the hash seed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from planner.dask_names import MAX_PREFIX_CHARS, canonical_order, index_of, prefix_of, task_ids

TOKEN = "9f2c41d0b5a8e7f6a1b2c3d4e5f60718"


def test_prefixes_drop_tokens_and_internal_words() -> None:
    assert prefix_of((f"add-{TOKEN}", 1, 2)) == "add"
    assert prefix_of(f"sum-aggregate-{TOKEN}") == "sum-aggregate"
    assert prefix_of(f"finalize-hlgfinalizecompute-{TOKEN}") == "finalize"
    assert prefix_of("inc-c5629275-5e78-4855-91c2-b6272f5dd555") == "inc"  # a delayed uuid
    assert prefix_of(f"my data!-{TOKEN}") == "my_data"


def test_long_fused_names_keep_their_last_words() -> None:
    fused = "-".join(["getitem", "rechunk", "split", "concatenate", "overlap", "trim",
                      "sum", "partial", "aggregate", TOKEN])
    prefix = prefix_of(fused)
    assert len(prefix) <= MAX_PREFIX_CHARS and prefix.endswith("sum-partial-aggregate")


def test_indices_read_like_the_block_and_never_hold_a_dash() -> None:
    assert index_of(("x", 1, 2)) == "1,2"
    assert index_of(("x", 0.09999999999999998, 3)) == "0.1,3"
    assert index_of(("x", -1)) == "_1"
    assert index_of("x") is None and index_of(("x",)) is None


def test_layers_sharing_a_prefix_count_on_and_string_keys_are_numbered() -> None:
    a, b, c = (f"add-{TOKEN}", f"add-{TOKEN[::-1]}", f"add_2-{TOKEN}")
    keys = [(a, 0), (b, 0), (a, 1), f"inc-{TOKEN}", f"inc-{TOKEN[::-1]}", (c, 0)]
    assert task_ids(keys) == {
        (a, 0): "add-0", (b, 0): "add_2-0", (a, 1): "add-1",
        f"inc-{TOKEN}": "inc-0", f"inc-{TOKEN[::-1]}": "inc-1", (c, 0): "add_2_2-0"}


def test_float_indices_that_shorten_alike_are_written_exactly() -> None:
    ids = task_ids([("x", 0.1000001), ("x", 0.1000002)])
    assert ids[("x", 0.1000001)] == "x-0.1"
    assert ids[("x", 0.1000002)] == "x-0.1000002"


def tree(order_of_kids: list[int]) -> dict[str, list[str]]:
    """      out
           /  |  \\
         a-0 a-1 a-2      (children listed in `order_of_kids`)"""
    return {"out": [f"a-{i}" for i in order_of_kids], "a-0": [], "a-1": [], "a-2": []}


def test_argument_order_is_kept_unless_dask_chose_it_by_hash() -> None:
    dag = tree([2, 0, 1])
    assert canonical_order(["out"], dag.__getitem__, lambda k: False) == \
        ["a-2", "a-0", "a-1", "out"]
    dag = {"out": [("a-tok", 2), ("a-tok", 0), ("a-tok", 1)],
           ("a-tok", 0): [], ("a-tok", 1): [], ("a-tok", 2): []}
    assert canonical_order(["out"], dag.__getitem__, lambda k: k == "out") == \
        [("a-tok", 0), ("a-tok", 1), ("a-tok", 2), "out"]


@given(st.permutations(list(range(6))))
def test_hash_ordered_children_give_one_order_whatever_dask_listed(perm: list[int]) -> None:
    """Two diamonds under one fused task, listed in any order: the same canonical order."""
    base = {("x-t", i): [("src-t", i % 2)] for i in range(6)}
    dag: dict[object, list[object]] = {**base, ("src-t", 0): [], ("src-t", 1): []}
    dag["fused"] = [("x-t", i) for i in perm]
    order = canonical_order(["fused"], dag.__getitem__, lambda k: k == "fused")
    assert order[-1] == "fused"
    assert order == canonical_order(["fused"], {**dag, "fused": sorted(dag["fused"])}.__getitem__,
                                    lambda k: k == "fused")
