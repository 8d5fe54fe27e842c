"""WSGI entry point: `gunicorn wsgi:app` (gunicorn.conf.py preloads it in the master).

The kernels are loaded (or compiled, once per install) here, before the app is built and
before gunicorn forks any worker: the workers share the compiled code copy-on-write and never
compile on a request. The nodes named in KATO_PRELOAD_NODES are loaded here too, on connections
closed before the fork, so the workers share their indexes' pages instead of each loading its own
copy (docs/scaling.md). Database connections, metrics files and threads start in each worker.
"""
import gc

from kato_web import create_app, preload_nodes, prepare_kernels
from kato_web.config import Config

config = Config.from_env()
prepare_kernels(config)
app = create_app(config)
preload_nodes(app)  # KATO_PRELOAD_NODES: indexes the workers share copy-on-write

# What the master built is shared with the workers copy-on-write; frozen objects are never
# scanned by the collector, whose bookkeeping writes would otherwise copy those pages into
# every worker.
gc.collect()
gc.freeze()
