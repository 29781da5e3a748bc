"""Runtime: the `proxyd serve` process: one trio tree that starts, supervises and stops everything."""
