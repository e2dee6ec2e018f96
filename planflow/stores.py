"""Where Redis is: `--redis URL`, else `PLANFLOW_REDIS_URL`, else the embedded store.

The embedded store is a private redis-server whose data lives in the persistent data directory
(`$PLANFLOW_HOME`, default `~/.planflow`), the same one `planflow run` uses, so a user who never
names a server still gets the learning loop: runs write metrics there, compiles read them.
Reading metrics from an embedded store that has never been written does not start a server.
Opening the store also reclaims the runs of clients that were killed (`runtime.registry`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from metadata.errors import MetadataError
from planner.errors import UsageError
from runtime.defaults import REDIS_URL_ENV
from runtime.errors import StoreError

if TYPE_CHECKING:
    from metadata.store import MetricsStore

DEFAULT_NAMESPACE = "planflow"


def configured_url(redis_url: str | None) -> str | None:
    """The Redis URL the user named (option, then environment), or None for the embedded one."""
    return redis_url or os.environ.get(REDIS_URL_ENV) or None


@contextlib.contextmanager
def redis_for_metrics(redis_url: str | None, *, create: bool = False) -> Iterator[str | None]:
    """A Redis URL holding the metrics: the named one, or the embedded store (started for the
    duration of the block). Yields None when there is no store yet and `create` is False."""
    url = configured_url(redis_url)
    if url:
        yield url
        return
    from runtime.client import embedded_store
    from runtime.embedded import default_data_dir, has_history

    data_dir = default_data_dir()
    if not create and not has_history(data_dir):
        yield None
        return
    with embedded_store(data_dir) as server:
        yield server.url


@contextlib.contextmanager
def metrics_store(redis_url: str | None, namespace: str = DEFAULT_NAMESPACE, *,
                  create: bool = False) -> Iterator[MetricsStore | None]:
    """An open MetricsStore (or None: no metrics recorded yet), closed after the block."""
    from metadata.store import MetricsStore

    with redis_for_metrics(redis_url, create=create) as url:
        if url is None:
            yield None
            return
        try:
            store = MetricsStore(url, namespace)
            store.ping()
        except MetadataError as err:
            raise StoreError(str(err), condition=getattr(err, "condition", "")) from err
        except ValueError as err:
            raise UsageError(f"bad namespace {namespace!r}: {err}") from err
        from runtime.client import reclaim

        reclaim(url, namespace)  # runs whose client was killed: their keys and workers
        try:
            yield store
        finally:
            store.close()
