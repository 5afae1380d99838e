"""Write a pip constraints file that pins every declared floor to exactly that version.

Reads pyproject.toml's [project].dependencies and the extras named on the command line
(default: test) and turns each ``name>=X`` (or ``~=X``) into ``name==X``, so that
``pip install -c <file> -e '.[test]'`` installs the oldest versions the project claims to
support (.ci/run runs the test suite on them). Requirements without a ``>=`` floor (torch's
``==`` pin) are left to the requirement itself; transitive packages are whatever pip resolves.

    python scripts/min_versions.py [--extra test ...] [-o constraints.txt]
    python scripts/min_versions.py --check   # in the installed environment: each floor and
                                             # the version there; fails unless they are equal
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name[extras] then the specifier list, up to an environment marker
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)")


def floors(pyproject: Path, extras: list[str]) -> dict[str, str]:
    """{package name: floor} for every requirement with a ``>=`` specifier."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"no extra {extra!r} in {pyproject}")
        requirements += optional[extra]
    found: dict[str, str] = {}
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"cannot read requirement {requirement!r}")
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        for spec in match.group(2).split(","):
            spec = spec.strip()
            if spec.startswith((">=", "~=")):  # ~=X.Y means >=X.Y too
                floor = spec[2:].strip()
                if found.get(name, floor) != floor:
                    raise SystemExit(f"{name} has two floors: {found[name]} and {floor}")
                found[name] = floor
    return found


def check(pins: dict[str, str]) -> int:
    """Print each pinned package's floor and installed version; 1 if any differs or is missing."""
    from packaging.version import Version  # installed with pytest (the test extra)

    bad = 0
    for name, floor in sorted(pins.items()):
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "(not installed)"
        same = installed != "(not installed)" and Version(installed) == Version(floor)
        bad += not same
        print(f"{name:24} {floor:12} {installed}{'' if same else '   <- not the floor'}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="append", help="extra whose floors to pin too (default: test)")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.add_argument("--check", action="store_true", help="compare the floors with the versions installed here")
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)
    pins = floors(args.pyproject, args.extra or ["test"])
    if args.check:
        return check(pins)
    text = "".join(f"{name}=={floor}\n" for name, floor in sorted(pins.items()))
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
