"""Speed benchmarks (issue 5). Plain ``pytest`` runs each body once (--benchmark-disable in
addopts); ``tox -e bench`` times them; ``python tests/benchmarks/bench_table.py`` prints
the README table."""
