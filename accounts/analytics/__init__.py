"""Myfxbook-grade trading statistics of an account (formulas in docs/analytics.md).

`tables`: deals and snapshots as columns, the MT5 codes, output formats; `trades`: closed trades and their
statistics; `series`: drawdowns and chart series; `statistics`: `compute_statistics`, the whole result;
`history`: the one-query database read that feeds it (`statistics_for_account`).
"""
