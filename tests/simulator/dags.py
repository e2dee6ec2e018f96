"""Small named DAG builders for simulator tests; each docstring draws the DAG and placement.

Task letters map to indices in alphabetical order (a=0, b=1, ...), which is the topological and
plan order. `wN` is worker N. Outputs are in bytes (toy platform: 100 bytes take 1 s).
"""

from __future__ import annotations

import numpy as np

from simulator import SimInput


def chain_one_worker(delayed_io: bool = True) -> SimInput:
    """
        a -> b -> c        all on w0; durations 1, 2, 3; outputs 100 bytes
    """
    return SimInput.build(
        [1, 2, 3], [(0, 1), (1, 2)], output_bytes=[100] * 3, worker=[0, 0, 0],
        delayed_io=[delayed_io] * 3,
    )


def fan_out() -> SimInput:
    """
            a            a, d on w0; b on w1; c on w2
           / \\          durations a=1 b=2 c=2.5 d=1
          b   c          outputs a=100 b=200 c=100
           \\ /
            d
    """
    return SimInput.build(
        [1, 2, 2.5, 1], [(0, 1), (0, 2), (1, 3), (2, 3)], output_bytes=[100, 200, 100, 0],
        worker=[0, 1, 2, 0],
    )


def fan_in() -> SimInput:
    """
        a   b   c        a, d on w0 (1 GB); b on w1 (2 GB); c on w2 (1 GB)
         \\  |  /        durations a=1 b=1 c=2 d=1; outputs a=100 b=100 c=300
            d            a uses delayed I/O (its only consumer is local)
    """
    return SimInput.build(
        [1, 1, 2, 1], [(0, 3), (1, 3), (2, 3)], output_bytes=[100, 100, 300, 0],
        worker=[0, 1, 2, 0], worker_config=[0, 1, 0], delayed_io=[True, False, False, False],
    )


def diamond_shared_worker() -> SimInput:
    """
             a           a, c, d on w0; b on w1; durations a=1 b=1 c=3 d=1
            / \\         outputs 100 bytes; delayed I/O everywhere, so a uploads (b is
           b   c         remote) but c does not (d is local)
            \\ /
             d
    """
    return SimInput.build(
        [1, 1, 3, 1], [(0, 1), (0, 2), (1, 3), (2, 3)], output_bytes=[100] * 4,
        worker=[0, 1, 0, 0], delayed_io=[True] * 4,
    )


def chain_three_workers(b_duration: float) -> SimInput:
    """
        a -> b -> c      a on w0 (1 GB), b on w1 (2 GB), c on w2 (1 GB): c may reuse
                         w0's container; durations a=1 b=? c=1; outputs 100 bytes
    """
    return SimInput.build(
        [1, b_duration, 1], [(0, 1), (1, 2)], output_bytes=[100] * 3, worker=[0, 1, 2],
        worker_config=[0, 1, 0],
    )


def preload_pair(preload: bool, storage_bytes: float = 0) -> SimInput:
    """
        a     b          a on w0 (duration 1); b, c on w1 (durations 4, 1)
         \\    |          outputs 100 bytes; b uses delayed I/O; c reads `storage_bytes`
          \\   |          w1 pre-loads a's output while b runs when `preload`
            c
    """
    return SimInput.build(
        [1, 4, 1], [(0, 2), (1, 2)], output_bytes=[100] * 3, worker=[0, 1, 1],
        worker_preload=[False, preload], delayed_io=[False, True, False],
        storage_bytes=[0, 0, storage_bytes],
    )


def preload_two_inputs() -> SimInput:
    """
        a     b     c        a on w0, b on w1 (durations 1, outputs 100 bytes);
         \\    |    /         c, d on w2, pre-loading; c takes 4.5 s, d 1 s.
          \\   |   c          a's and b's outputs reach w2 at the same time and share its link
           \\  |  /
              d
    """
    return SimInput.build(
        [1, 1, 4.5, 1], [(0, 3), (1, 3), (2, 3)], output_bytes=[100, 100, 0, 0],
        worker=[0, 1, 2, 2], worker_preload=[False, False, True],
        delayed_io=[False, False, True, False],
    )


def three_roots_join() -> SimInput:
    """
        a   b   c        each on its own worker (w0, w1, w2); d on w0
         \\  |  /         durations a=1 b=2 c=1 d=1; outputs 100 bytes; a uses delayed I/O
            d
    """
    return SimInput.build(
        [1, 2, 1, 1], [(0, 3), (1, 3), (2, 3)], output_bytes=[100] * 4, worker=[0, 1, 2, 0],
        delayed_io=[True, False, False, False],
    )


def prewarmed_pair(prewarm_at_s: float) -> SimInput:
    """
        a -> b           a on w0 (1 GB), b on w1 (2 GB) pre-warmed at `prewarm_at_s`
                         durations 1; outputs 100 bytes
    """
    return SimInput.build(
        [1, 1], [(0, 1)], output_bytes=[100, 100], worker=[0, 1], worker_config=[0, 1],
        worker_prewarm_at_s=[np.nan, prewarm_at_s],
    )
