"""The command line: `python -m kato_web COMMAND` (see `python -m kato_web --help`).

Every command reads and checks the KATO_* configuration first; a bad value stops it with one
line naming the variable (exit status 2), like the server's own start.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from kato_web.config import PROJECT_ROOT, Config, ConfigError, in_source_checkout, project_file


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_migrate(config: Config, args) -> int:
    from kato_web.store.migrate import upgrade

    upgrade(config.database_url)
    print(f"database migrated to head: {_safe_url(config.database_url)}")
    return 0


def cmd_check(config: Config, args) -> int:
    """Configuration, database (reachable, migrations at head) and kernels; non-zero if any fails."""
    from kato_web.services import readiness

    from kato_web.config import unknown_variables

    print(f"configuration: ok ({_safe_url(config.database_url)}, {config.server.workers} workers x "
          f"{config.server.threads} threads)")
    for name in unknown_variables():
        print(f"configuration: warning: {name} is set but no setting reads it (a typo?)")
    report = readiness.check_all(config, compile_kernels=True)
    for name, (ok, detail) in report.items():
        print(f"{name}: {'ok' if ok else 'FAILED'} ({detail})")
    return 0 if all(ok for ok, _ in report.values()) else 1


def cmd_serve(config: Config, args) -> int:
    """Replace this process by gunicorn with the project's gunicorn.conf.py and wsgi:app.

    An installed kato-web (pip install .) uses the copies in its package (config.project_file)
    and stays in the current directory, where its default SQLite database lives.
    """
    if in_source_checkout():
        place = ["--chdir", str(PROJECT_ROOT)]
    else:
        place = ["--pythonpath", str(project_file("wsgi.py").parent)]
    argv = [sys.executable, "-m", "gunicorn", "-c", str(project_file("gunicorn.conf.py")), *place,
            *args.gunicorn_args, "wsgi:app"]
    sys.stdout.flush()
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - execv does not return


def cmd_stats(config: Config, args) -> int:
    """Print nodes, patterns and sessions (live and expired) as one JSON object."""
    from kato_web.store import repositories as repo

    db = _database(config)
    try:
        now = time.time()
        with db.transaction(write=False) as conn:
            counts = repo.pattern_counts_by_node(conn)
            live = repo.count_live_sessions(conn, now)
            total = repo.count_sessions(conn)
            nodes = repo.list_nodes(conn)
        report = {
            "database": _safe_url(config.database_url),
            "nodes": len(nodes),
            "patterns": sum(counts.values()),
            "sessions": {"live": live, "expired": total - live},
            "patterns_by_node": {n["kb_id"]: counts.get(n["kb_id"], 0) for n in nodes},
        }
    finally:
        db.dispose()
    print(json.dumps(report, indent=2))
    return 0


def _database(config: Config):
    from kato_web.store.db import Database

    return Database(config.database_url, 1, 0)


def cmd_sweep_sessions(config: Config, args) -> int:
    """Delete every expired session now (the service also does this every KATO_SESSION_SWEEP_SECONDS)."""
    from kato_web.services import sweep

    db = _database(config)
    try:
        result = sweep.sweep_expired_sessions(db, batch=args.batch or config.session_sweep_batch)
    finally:
        db.dispose()
    print(f"deleted {result.deleted} expired sessions in {result.seconds:.2f} s ({result.batches} batches)")
    return 0


def cmd_export(config: Config, args) -> int:
    from kato_web.services import transfer

    db = _database(config)
    try:
        kb_id = transfer.resolve_node(db, args.node, config.service_name)
        if kb_id is None:
            print(f"kato-web: no node {args.node!r} (nor {args.node}_{config.service_name})", file=sys.stderr)
            return 1
        if args.output and args.output != "-":
            with open(args.output, "w", encoding="utf-8") as out:
                header = transfer.export_node(db, kb_id, out)
        else:
            header = transfer.export_node(db, kb_id, sys.stdout)
    finally:
        db.dispose()
    print(f"exported node {kb_id}: {header['patterns']} patterns, {header['symbols']} symbols",
          file=sys.stderr)
    return 0


def cmd_import(config: Config, args) -> int:
    from kato_web.services import transfer

    db = _database(config)
    try:
        result = transfer.import_file(db, args.file, kb_id=args.node)
    except transfer.MalformedExport as err:
        print(f"kato-web: {args.file}: {err}; nothing imported", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"kato-web: {err}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(f"imported node {result['node']}: {result['patterns']} patterns, {result['symbols']} symbols "
          "(its previous content replaced)")
    return 0


def cmd_keys(config: Config, args) -> int:
    """List, create or revoke API keys (the admin page's Keys, from a shell; audited alike)."""
    from kato_web.services import security
    from kato_web.services.context import Context

    ctx = Context(config=config, db=_database(config))
    token = security.current_actor.set(security.Actor("command line", None))
    try:
        if args.keys_command == "create":
            name, prefix = args.name.strip(), (args.node_prefix or "").strip()
            if not name or len(name) > 100:
                print("kato-web: give the key a name of 1 to 100 characters", file=sys.stderr)
                return 1
            if len(prefix) > 200:
                print("kato-web: a node prefix has at most 200 characters", file=sys.stderr)
                return 1
            key, row = security.create_key(ctx, name, prefix or None, args.read_only)
            # The key itself goes to standard output alone (for scripts); it is not stored.
            print(key)
            print(f"created key {row['id']} {row['key_prefix']}… ({name}); it is shown only now",
                  file=sys.stderr)
            return 0
        if args.keys_command == "revoke":
            row = security.revoke_key(ctx, args.key_id)
            if row is None:
                print(f"kato-web: no live key with id {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked key {row['id']} {row['key_prefix']}… ({row['name']}); running workers stop "
                  "accepting it within seconds")
            return 0
        rows = security.list_keys(ctx)
        if args.json:
            print(json.dumps([{k: r[k] for k in ("id", "name", "key_prefix", "node_prefix", "read_only",
                                                 "created_at", "revoked_at")} for r in rows]))
            return 0
        print(f"{'id':>4}  {'prefix':<15} {'scope':<24} {'state':<8} name")
        for r in rows:
            scope = (r["node_prefix"] or "all nodes") + (", read-only" if r["read_only"] else "")
            state = "revoked" if r["revoked_at"] else "live"
            print(f"{r['id']:>4}  {r['key_prefix'] + '…':<15} {scope[:24]:<24} {state:<8} {r['name']}")
        return 0
    finally:
        security.current_actor.reset(token)
        ctx.db.dispose()


def cmd_evaluate(config: Config, args) -> int:
    """Run one queued admin evaluation (the admin page starts this in a process of its own)."""
    from kato_web.services import evaluation_jobs

    return evaluation_jobs.run(config, args.job_id)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kato-web" if os.path.basename(sys.argv[0]) == "kato-web" else "python -m kato_web",
        description="kato-web's command line. Settings come from KATO_* environment variables "
                    "(README.md, Configuration); every command checks them first.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("migrate", help="upgrade the configured database to the latest schema")
    sub.add_parser("check", help="check the configuration, the database (reachable, migrations at "
                                 "head) and the compiled kernels; exit 1 if anything fails")
    sub.add_parser("serve", help="serve with gunicorn (gunicorn.conf.py, wsgi:app); any further "
                                 "options are gunicorn's, passed through (e.g. --timeout 60)")
    sub.add_parser("stats", help="print counts of nodes, patterns and sessions as JSON")
    sweep = sub.add_parser("sweep-sessions", help="delete every expired session now")
    sweep.add_argument("--batch", type=int, default=None, help="rows per delete (KATO_SESSION_SWEEP_BATCH)")
    export = sub.add_parser("export", help="write one node's patterns, symbol statistics and counters "
                                           "as JSON Lines (docs/operations.md)")
    export.add_argument("node", metavar="NODE", help="the node's kb_id, or its node_id")
    export.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    imp = sub.add_parser("import", help="replace a node's content with an export file, in one "
                                        "transaction (a malformed line: nothing imported)")
    imp.add_argument("file", metavar="FILE", help="a file written by export")
    imp.add_argument("--node", default=None, help="import into this kb_id instead of the file's node")
    keys = sub.add_parser("keys", help="list, create or revoke API keys (as the admin page's Keys "
                                       "does; each change is in the audit log)")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    listing = keys_sub.add_parser("list", help="every key made here or on the admin page (default)")
    listing.add_argument("--json", action="store_true", help="as a JSON array")
    create = keys_sub.add_parser("create", help="make a key and print it (once) on standard output")
    create.add_argument("name", metavar="NAME", help="what the key is for (1-100 characters)")
    create.add_argument("--node-prefix", default=None, help="only nodes whose id starts with this")
    create.add_argument("--read-only", action="store_true", help="reads only (no observe, learn, …)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id (see list)")
    revoke.add_argument("key_id", metavar="ID", type=int)
    keys.set_defaults(keys_command="list", json=False)
    evaluate = sub.add_parser("evaluate", help="run one queued accuracy evaluation (the admin page's "
                                               "evaluate mode starts this; docs/admin.md)")
    evaluate.add_argument("job_id", metavar="JOB_ID", help="the evaluation's id")
    return parser


COMMANDS = {"migrate": cmd_migrate, "check": cmd_check, "serve": cmd_serve, "stats": cmd_stats,
            "sweep-sessions": cmd_sweep_sessions, "export": cmd_export, "import": cmd_import,
            "keys": cmd_keys, "evaluate": cmd_evaluate}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "serve":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.gunicorn_args = extra
    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"kato-web: configuration error: {err}", file=sys.stderr)
        return 2
    from sqlalchemy import exc as sa_exc

    try:
        return COMMANDS[args.command](config, args)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as err:
        first = str(err.orig if getattr(err, "orig", None) else err).strip().splitlines()
        print(f"kato-web: database error ({_safe_url(config.database_url)}): "
              f"{first[0] if first else type(err).__name__}", file=sys.stderr)
        return 1
