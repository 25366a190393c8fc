"""The performance benchmark: ``make bench`` (``python -m bench.run``); results land in ``bench/RESULTS.md``.

Not part of ``make test``: it needs ``wrk`` and ``nginx``, pins processes to cores and takes minutes.
"""
