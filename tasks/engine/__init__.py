"""The execution engine: stage keys and store, the run loop, workers, locks, the timing ledger."""
