"""Reports of ``grm eval``: one benchmark's tables and files (``benchmark``), the cross-benchmark table and the
headline-vs-k plot (``cross_table``)."""
