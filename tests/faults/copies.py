"""What the fault suite asserts about a burst of copies, read from the system's database with plain SQL."""

from __future__ import annotations

from dataclasses import dataclass, field

from mt5bridge.ea.protocol import order_comment
from tests.faults.harness import System


@dataclass
class CopyLedger:
    """The copies of one burst: what the master opened and what reached each slave."""

    master_positions: int
    slaves: int
    executed: int  # (master position, slave) pairs whose open command was executed
    not_executed: list[tuple] = field(default_factory=list)  # (slave, master ticket, copy status, command status)
    executed_twice: list[str] = field(default_factory=list)  # command comments with more than one slave deal

    @property
    def expected(self) -> int:
        return self.master_positions * self.slaves

    @property
    def complete(self) -> bool:
        return self.executed == self.expected


def copy_ledger(system: System, *, master: int, slaves: list[int], tag: str) -> CopyLedger:
    tickets = [
        row[0]
        for row in system.query(
            "SELECT ticket FROM mt5bridge_simposition WHERE login = %s AND comment LIKE %s", (master, f"{tag}:%")
        )
    ]
    rows = system.query(
        "SELECT a.login, cp.master_ticket, cp.status, c.status, c.id FROM copytrading_copiedposition cp "
        "JOIN accounts_tradingaccount a ON a.id = cp.slave_account_id "
        "LEFT JOIN mt5bridge_command c ON c.id = cp.open_command_id "
        "WHERE cp.master_ticket = ANY(%s) AND a.login = ANY(%s)",
        (tickets, slaves),
    )
    executed = [r for r in rows if r[3] == "executed"]
    comments = [order_comment(r[4]) for r in executed]
    twice = [
        row[0]
        for row in system.query(
            "SELECT comment FROM mt5bridge_simdeal WHERE login = ANY(%s) AND comment = ANY(%s) AND entry = 0 "
            "GROUP BY comment HAVING count(*) > 1",
            (slaves, comments),
        )
    ]
    pairs = {(r[0], r[1]) for r in executed}
    return CopyLedger(
        master_positions=len(tickets),
        slaves=len(slaves),
        executed=len(pairs),
        not_executed=[r[:4] for r in rows if r[3] != "executed"],
        executed_twice=twice + [f"{r[0]}/{r[1]}" for r in executed if sum(1 for x in executed if x[:2] == r[:2]) > 1],
    )
