"""The reliability and security suite: stress, faults, fork, bad input and secrets, with figures.

Each case is a function taking a ``Profile`` (counts and durations) and returning a ``Row``
(what it did, how long it took, the promises it checked and the figures behind them). The
``test_*.py`` modules run the short profile under pytest and assert on the rows;
``benchmarks/reliability.py`` runs the long profile and prints every row as one table.

Example::

    from tests.reliability.pools import pool_stress_sync
    from tests.reliability.profile import SHORT

    row = pool_stress_sync(SHORT)
    assert row.failed() == []
"""
