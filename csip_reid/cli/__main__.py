"""``python -m csip_reid.cli``: the ``reid`` command."""

from csip_reid.cli.root import main

main()
