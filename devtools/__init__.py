"""Development tools that never ship in a wheel or the image: the throwaway local PostgreSQL cluster.

Used by ``make run`` (``python -m devtools.local``), the tests and the benchmarks, from the checkout.
"""
