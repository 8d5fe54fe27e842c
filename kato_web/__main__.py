"""Command line: `python -m kato_web migrate` upgrades the configured database to head;
`python -m kato_web evaluate JOB_ID` runs one queued admin evaluation (the admin page starts it)."""
import sys

from kato_web.config import Config
from kato_web.store.migrate import upgrade


def main(argv: list[str]) -> int:
    if argv[:1] == ["migrate"]:
        url = Config.from_env().database_url
        upgrade(url)
        print(f"database migrated to head: {url.split('@')[-1]}")
        return 0
    if argv[:1] == ["evaluate"] and len(argv) == 2:
        from kato_web.services import evaluation_jobs
        return evaluation_jobs.run(Config.from_env(), argv[1])
    print("usage: python -m kato_web migrate | evaluate JOB_ID", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
