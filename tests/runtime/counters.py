"""Process-wide counters that counted tasks update (a module, so that task functions, which are
pickled by value, refer to it by reference and in-process workers share it)."""

from __future__ import annotations

import collections
import threading

CALLS: collections.Counter[str] = collections.Counter()
"""How often each counted task ran in this process (thread launcher only)."""

LOCK = threading.Lock()
