"""``paperlab-dqn {train,eval,gif,bench,report} ...``: one entry point for the project's commands."""

from __future__ import annotations

import sys

COMMANDS = {
    "train": "paperlab.dqn.train",
    "eval": "paperlab.dqn.evaluate",
    "gif": "paperlab.dqn.render",
    "bench": "paperlab.dqn.bench",
    "report": "paperlab.dqn.report",
}


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: paperlab-dqn {" + ",".join(COMMANDS) + "} [args...]  (each takes --help)")
        raise SystemExit(2)
    import importlib

    importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    main()
