"""What a py-spy profile says, in two tables: ``python -m bench.stacks FILE [FILE...]``.

FILE holds collapsed stacks (``py-spy record --format raw``, what ``python -m bench --profile DIR``
writes; gzipped or not), one ``frame;frame;... count`` a line. A service's stacks come in pieces:
SQLAlchemy runs each statement in a greenlet and the loop resumes coroutines from C, so a sample
often starts below the request that caused it and a frame's inclusive time undercounts. Two views
that survive this are printed, each as the share of all samples:

- **by package**: the package of the innermost frame (where the CPU went: ``sqlalchemy``,
  ``asyncpg``, ``fastapi``...), the project's own code by module;
- **by project frame**: the innermost frame of the project's own code in the sample, where there
  is one (who asked for the CPU: ``_save_filing (intake/handlers.py)``...).
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

PROJECT = ("intake", "dispatch", "handling", "closure", "assessment", "shared", "services", "bench")
# "function (path/to/file.py:123)", the line number dropped so a function is one entry.
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def samples(lines: Iterable[str]) -> Iterable[tuple[list[str], int]]:
    """Each stack (outermost frame first) with its sample count."""
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if count.isdigit():  # an empty stack: a sample in native code, with no Python frame
            yield stack.split(";"), int(count)


def _file(frame: str) -> str:
    match = _FRAME.match(frame)
    return match["file"] if match else ""


def _named(frame: str) -> str:
    match = _FRAME.match(frame)
    return f"{match['function']} ({match['file']})" if match else frame


def package(frame: str) -> str:
    """The package of ``frame``'s file (its top folder), or for the project's code its module."""
    parts = _file(frame).split("/")
    if parts[0] in PROJECT:
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else (parts[0] or "(native)")


def summarise(stacks: Iterable[tuple[list[str], int]]) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, samples by package of the innermost frame, by innermost project frame."""
    total = 0
    by_package: Counter[str] = Counter()
    by_owner: Counter[str] = Counter()
    for frames, count in stacks:
        total += count
        by_package[package(frames[-1])] += count
        owner = next((_named(f) for f in reversed(frames) if _file(f).split("/")[0] in PROJECT), "(none)")
        by_owner[owner] += count
    return total, by_package, by_owner


def _read(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as text:
        return list(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stacks", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="collapsed stacks (py-spy --format raw), .gz or not")
    parser.add_argument("--top", type=int, default=15, help="rows of each table")
    args = parser.parse_args(argv)
    for path in args.files:
        total, by_package, by_owner = summarise(samples(_read(path)))
        print(f"## {path.name}: {total:,} samples\n")
        for title, counts in (("package", by_package), ("project frame", by_owner)):
            print(f"| by {title} | share |\n|---|---|")
            for name, count in counts.most_common(args.top):
                print(f"| {name} | {100 * count / max(total, 1):.1f} % |")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
