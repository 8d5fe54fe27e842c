"""The HTTP plumbing the blueprints share (ARCHITECTURE.md: web/).

errors.py turns every failure into KATO's JSON error shapes; json_provider.py makes Flask's JSON
orjson-backed with keys in insertion order; compression.py is gzip both ways; gcpause.py holds the
cyclic garbage collector off while a large answer is built; heap.py gives freed heap back to the
OS once large answers stop; openapi.py assembles the OpenAPI document from the views'
descriptions and docs.py serves it with its readers (/openapi.json, /docs, /redoc).
``create_app`` (kato_web/__init__.py) wires them in.
"""
