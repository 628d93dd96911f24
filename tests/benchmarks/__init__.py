"""Speed benchmarks: the training backward against its floor and torch,
the checker against its loss evaluations, executor= against serial. Plain ``pytest`` runs
each body once (--benchmark-disable in addopts); ``tox -e bench`` times them;
``python tests/benchmarks/bench_table.py`` prints the README tables from one run."""
