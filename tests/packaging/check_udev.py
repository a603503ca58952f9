"""Syntax check for udev rules files (udevadm verify arrived only in systemd 253).

Each rule line is comma-separated KEY[{ATTR}] OP "VALUE" pairs. Match keys take == or !=;
assignment keys take = += -= :=. Exits non-zero with the line number on the first problem.
"""

import re
import sys

MATCH_KEYS = {
    "ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM", "SUBSYSTEMS",
    "DRIVER", "DRIVERS", "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TAG", "TAGS", "TEST",
    "PROGRAM", "RESULT",
}
ASSIGN_KEYS = {
    "NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV", "TAG",
    "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS",
}
PAIR = re.compile(r'\s*([A-Z]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def check(path):
    labels, gotos = set(), []
    for n, raw in enumerate(open(path, encoding="utf-8"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pos = 0
        while pos < len(line):
            m = PAIR.match(line, pos)
            if not m:
                sys.exit(f"{path}:{n}: cannot parse at column {pos + 1}: {line[pos:]!r}")
            key, attr, op, value, _ = m.groups()
            if op in ("==", "!="):
                if key not in MATCH_KEYS:
                    sys.exit(f"{path}:{n}: {key} is not a match key")
            elif key not in ASSIGN_KEYS:
                sys.exit(f"{path}:{n}: {key} cannot be assigned")
            if key in ("ATTR", "ATTRS", "ENV", "SYSCTL") and attr is None:
                sys.exit(f"{path}:{n}: {key} needs {{name}}")
            if key == "LABEL":
                labels.add(value)
            if key == "GOTO":
                gotos.append((n, value))
            pos = m.end()
    for n, target in gotos:
        if target not in labels:
            sys.exit(f"{path}:{n}: GOTO to a missing LABEL {target!r}")
    print(f"{path}: ok")


for p in sys.argv[1:]:
    check(p)
