"""Request counter for bench/gate.py: on PYTHONPATH only while the benchmark runs a tool.

Every Python process started with GATE_BENCH_COUNT_FILE set appends one line per HTTP request
that goes through urllib3 (the transport of the kubernetes client used by kubernetes.core and
by c5c3.gitops) to that file. Nothing happens without the variable.
"""
import os

_FILE = os.environ.get("GATE_BENCH_COUNT_FILE")
if _FILE:
    try:
        from urllib3 import connectionpool as _cp

        _orig = _cp.HTTPConnectionPool.urlopen

        def _counting_urlopen(self, method, url, *args, **kwargs):
            with open(_FILE, "a") as handle:
                handle.write("%s %s\n" % (method, url))
            return _orig(self, method, url, *args, **kwargs)

        _cp.HTTPConnectionPool.urlopen = _counting_urlopen
    except ImportError:
        pass
