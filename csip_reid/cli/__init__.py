"""The ``reid`` command line (entry point ``csip_reid.cli:main``).

One module per command group (``index``, ``query``, ``gallery``, ``identities``, ``train``, ``data``,
``weights``, ``export``, ``serve``); ``root`` is the ``reid`` group that adds them all, ``common`` what
they share.
"""

from csip_reid.cli.root import main

__all__ = ["main"]
