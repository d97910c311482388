"""``paperlab-vae {train,prior,eval,report} ...``: one entry point for the project's commands."""

from __future__ import annotations

import sys

COMMANDS = {
    "train": "paperlab.vae.train",
    "prior": "paperlab.vae.prior",
    "eval": "paperlab.vae.evaluate",
    "report": "paperlab.vae.report",
}


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: paperlab-vae {" + ",".join(COMMANDS) + "} [args...]  (each takes --help)")
        raise SystemExit(2)
    import importlib

    importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    main()
