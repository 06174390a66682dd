"""Benchmarks of the orders ETL platform (issue 9): `make bench` runs them all and
regenerates docs/benchmarks.md. Each module is a script (`python -m bench.<name>`)
that prints a table and writes its figures to a JSON file that bench.report reads."""
