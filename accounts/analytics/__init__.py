"""Myfxbook-grade trading statistics of an account (formulas in docs/analytics.md).

`tables`: deals and snapshots as columns, the MT5 codes, output formats; `trades`: closed trades (and the
reference formulas over a trades table); `running` and `running_trades`: the running state every figure is
read from and the fold that feeds it; `report`: the payload from a state; `series`: the profit distribution;
`curves`: the chart of a time range; `statistics`: `compute_statistics`, the whole result; `history`: the
one-query database read that feeds it (`statistics_for_account`); `summary`: the stored per-account state,
folded forward on each read.
"""
