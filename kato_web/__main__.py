"""Command line: `kato-web migrate` (or `python -m kato_web migrate`) and `kato-web serve`.

migrate  upgrade the configured database (KATO_DATABASE_URL) to the latest schema
serve    run gunicorn with kato-web's settings (KATO_BIND, KATO_WORKERS, …; README)
"""
import os
import sys

from kato_web.config import Config
from kato_web.store.migrate import upgrade

USAGE = "usage: kato-web {migrate|serve} (python -m kato_web … works the same)"


def serve(extra: list[str]) -> int:
    """Replace this process with gunicorn serving kato-web (extra arguments go to gunicorn)."""
    from kato_web.config import project_file

    conf = str(project_file("gunicorn.conf.py"))
    argv = [sys.executable, "-m", "gunicorn", "-c", conf, *extra, "kato_web:create_app()"]
    os.execv(sys.executable, argv)
    return 0  # not reached


def main(argv: list[str]) -> int:
    if argv[:1] == ["migrate"]:
        url = Config.from_env().database_url
        upgrade(url)
        print(f"database migrated to head: {url.split('@')[-1]}")
        return 0
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    print(USAGE, file=sys.stderr)
    return 2


def cli() -> None:
    """Entry point of the `kato-web` console script."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    cli()
