"""Fill an empty node with N synthetic patterns fast: the rows real learning would write, in bulk.

The patterns are those of bench/load_node.py (same generator, seed and vocabulary), and the rows
are exactly what learning them one by one through `services.operations.store_learn` produces
(engine.md §4.5; tests/integration/test_bulk_load.py compares the two):

- patterns: name, events (sorted within each event, as a session with sort_symbols on learns
  them), length, frequency 1, emotives [], metadata {}, and created_seq = updated_seq = the
  node's change sequence of that learn (every learn bumps it by one);
- symbols: frequency = occurrences over all patterns, pattern_member_frequency = patterns holding
  the symbol, updated_seq = the last learn that touched it;
- the node: change_seq + N, total_unique_patterns and total_pattern_frequencies + N,
  total_symbols_in_patterns_frequencies + Σ length, symbol_count = distinct symbols.

Only `created_at` differs (one timestamp for the whole load). PostgreSQL gets COPY; SQLite gets
executemany in large batches. The node must hold no patterns yet.

    python -m bench.bulk_load --database-url postgresql+psycopg://postgres@127.0.0.1/kato_bench \\
        --node bench -n 1000000 --migrate
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_node import DEFAULT_VOCABULARY, DEFAULT_ZIPF, Vocabulary, synthetic_sequences  # noqa: E402
from kato_web.engine.pattern import make_learn_request  # noqa: E402

BATCH = 50_000


def learned_events(n: int, seed: int, vocabulary: Vocabulary | None = None):
    """Yield (bare name, events, length) of the n patterns load_node would learn, in learn order."""
    for events in synthetic_sequences(n, seed, vocabulary):
        # A session with sort_symbols (the default) stores each observed event sorted.
        request = make_learn_request([sorted(e) for e in events], [], [])
        yield request.hash, request.events, request.length


def _copy_rows(raw, table: str, columns: tuple[str, ...], rows) -> None:
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def bulk_load(database_url: str, node_id: str, n: int, seed: int = 0,
              vocabulary: Vocabulary | None = None, service_name: str = "kato",
              now: float | None = None) -> dict:
    """Write n synthetic patterns into the (empty) node; return what was written."""
    from sqlalchemy import insert, select, update

    from kato_web.services.sessions import kb_id_for
    from kato_web.store import repositories as repo
    from kato_web.store.db import Database
    from kato_web.store.models import Node, Pattern, Symbol

    now = time.time() if now is None else now
    kb_id = kb_id_for(node_id, service_name)
    db = Database(database_url, 1, 1)
    patterns_t, symbols_t, nodes_t = Pattern.__table__, Symbol.__table__, Node.__table__
    started = time.perf_counter()
    try:
        with db.transaction() as conn:
            repo.ensure_node(conn, kb_id, now)
            node = conn.execute(select(nodes_t).where(nodes_t.c.kb_id == kb_id)
                                .with_for_update()).mappings().one()
            if repo.count_patterns(conn, kb_id):
                raise RuntimeError(f"node {node_id!r} already holds patterns; bulk_load needs an empty one")
            seq = int(node["change_seq"])
            freq: Counter = Counter()
            pmf: Counter = Counter()
            last_seq: dict[str, int] = {}
            total_length = 0
            learned = 0
            generator = learned_events(n, seed, vocabulary)
            postgres = conn.dialect.name == "postgresql"
            raw = conn.connection.driver_connection if postgres else None
            columns = ("kb_id", "name", "events", "length", "frequency", "emotives", "metadata",
                       "created_at", "created_seq", "updated_seq")
            while True:
                chunk = list(itertools.islice(generator, BATCH))
                if not chunk:
                    break
                rows = []
                for name, events, length in chunk:
                    seq += 1
                    counts = Counter(x for e in events for x in e)
                    for symbol, count in counts.items():
                        freq[symbol] += count
                        pmf[symbol] += 1
                        last_seq[symbol] = seq
                    total_length += length
                    rows.append((kb_id, name, events, length, 1, [], {}, now, seq, seq))
                if postgres:
                    _copy_rows(raw, "patterns", columns, (
                        (r[0], r[1], json.dumps(r[2]), r[3], r[4], "[]", "{}", r[7], r[8], r[9])
                        for r in rows))
                else:
                    conn.execute(insert(patterns_t), [dict(zip(columns, r)) for r in rows])
                learned += len(chunk)
            symbol_rows = [(kb_id, s, freq[s], pmf[s], last_seq[s]) for s in sorted(freq)]
            symbol_columns = ("kb_id", "symbol", "frequency", "pattern_member_frequency", "updated_seq")
            if postgres:
                _copy_rows(raw, "symbols", symbol_columns, symbol_rows)
            else:
                conn.execute(insert(symbols_t), [dict(zip(symbol_columns, r)) for r in symbol_rows])
            conn.execute(update(nodes_t).where(nodes_t.c.kb_id == kb_id).values(
                change_seq=seq,
                total_unique_patterns=nodes_t.c.total_unique_patterns + learned,
                total_pattern_frequencies=nodes_t.c.total_pattern_frequencies + learned,
                total_symbols_in_patterns_frequencies=nodes_t.c.total_symbols_in_patterns_frequencies
                + total_length,
                symbol_count=len(freq),
            ))
        if postgres:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE patterns")
                conn.exec_driver_sql("ANALYZE symbols")
                conn.commit()
    finally:
        db.dispose()
    return {"node_id": node_id, "kb_id": kb_id, "patterns_learned": learned, "symbols": len(freq),
            "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--node", default="bench")
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocabulary", type=int, default=DEFAULT_VOCABULARY)
    parser.add_argument("--zipf", type=float, default=DEFAULT_ZIPF)
    parser.add_argument("--migrate", action="store_true", help="upgrade the database schema first")
    args = parser.parse_args(argv)
    if args.migrate:
        from kato_web.store.migrate import upgrade

        upgrade(args.database_url)
    result = bulk_load(args.database_url, args.node, args.n, args.seed,
                       Vocabulary(args.vocabulary, args.zipf))
    print(f"wrote {result['patterns_learned']} patterns ({result['symbols']} symbols) into node "
          f"{args.node!r} in {result['seconds']:.1f} s "
          f"({result['patterns_learned'] / max(result['seconds'], 1e-9):.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
