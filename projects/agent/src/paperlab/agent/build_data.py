"""Write the bundled SQLite database of the task suite (fictional companies) from the tables below.

    python -m paperlab.agent.build_data [--out PATH]

The committed ``data/companies.sqlite`` is this script's output; ``tests/test_tools.py`` checks that
the two agree, so an edit here without a rebuild fails the tests.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from paperlab.shared.checkpoint import atomic_path
from paperlab.shared.cli import run_command

DB_PATH = Path(__file__).with_name("data") / "companies.sqlite"

COMPANIES = [  # ticker, name, sector, hq_city, ceo, founded
    ("NWR", "Northwind Robotics", "industrial robots", "Trondheim", "Ingrid Solberg", 2009),
    ("BFE", "Bluefin Energy", "utilities", "Aberdeen", "Tomas Okafor", 1987),
    ("QLB", "Quillon Biotech", "biotechnology", "Uppsala", "Amara Lindqvist", 2012),
]
YEARS = list(range(2018, 2025))
CLOSES = {  # year-end closing price per share, 2018..2024
    "NWR": [31.20, 40.00, 38.50, 52.75, 49.10, 66.30, 82.50],
    "BFE": [18.40, 19.10, 17.25, 20.80, 22.35, 21.90, 23.60],
    "QLB": [12.00, 15.50, 27.80, 22.10, 19.40, 25.25, 24.10],
}
REVENUE = {  # revenue in millions of dollars, 2021..2024
    "NWR": [210.0, 248.0, 305.0, 371.0],
    "BFE": [1480.0, 1725.0, 1690.0, 1702.0],
    "QLB": [64.0, 71.0, 98.0, 103.0],
}


def build(path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.unlink()
        con = sqlite3.connect(tmp)
        con.executescript("""
            CREATE TABLE companies (ticker TEXT PRIMARY KEY, name TEXT, sector TEXT, hq_city TEXT, ceo TEXT,
                                    founded INTEGER);
            CREATE TABLE prices (ticker TEXT, year INTEGER, close REAL, PRIMARY KEY (ticker, year));
            CREATE TABLE financials (ticker TEXT, year INTEGER, revenue_musd REAL, PRIMARY KEY (ticker, year));
        """)
        con.executemany("INSERT INTO companies VALUES (?,?,?,?,?,?)", COMPANIES)
        con.executemany(
            "INSERT INTO prices VALUES (?,?,?)",
            [(t, y, c) for t, cs in CLOSES.items() for y, c in zip(YEARS, cs, strict=True)],
        )
        con.executemany(
            "INSERT INTO financials VALUES (?,?,?)",
            [(t, 2021 + i, r) for t, rs in REVENUE.items() for i, r in enumerate(rs)],
        )
        con.commit()
        con.close()


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DB_PATH))
    args = parser.parse_args(argv)
    build(Path(args.out))
    print(f"wrote {args.out}")


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
