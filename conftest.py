"""Puts the checkout on sys.path as ansible_collections.c5c3.gitops for every test, and tests/lib."""
import os
import subprocess
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
_COLLECTIONS = os.path.join(_ROOT, ".collections")
if not os.path.islink(os.path.join(_COLLECTIONS, "ansible_collections", "c5c3", "gitops")):
    subprocess.run([os.path.join(_ROOT, "hack", "collection-link")], check=True, stdout=subprocess.DEVNULL)
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
# Helpers shared by the unit and integration tests (tests/lib/*.py).
_TEST_LIB = os.path.join(_ROOT, "tests", "lib")
if _TEST_LIB not in sys.path:
    sys.path.insert(0, _TEST_LIB)
