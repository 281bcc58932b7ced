"""A directory as {relative path: bytes}: what the tests compare before and after a run."""
import os


def snapshot(root):
    """{relative path: bytes} of every file under ``root``; None when ``root`` does not exist."""
    if not os.path.exists(root):
        return None
    out = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = handle.read()
    return out
