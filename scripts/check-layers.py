#!/usr/bin/env python3
"""Check that the crate's modules import only downwards (ARCHITECTURE.md).

Reads every `crate::<module>` path in src/ as text (comments left out) and
fails, naming the file and line, when a module names one in a higher layer,
a front end names another front end, or a service names another service.
A top-level module missing from the table below is an error too, so a new
module gets its layer when it is added.
"""
import pathlib
import re
import sys

# Lowest first. Within a layer, a module may use another only where the
# layer allows it.
LAYERS = [
    ("values", ["config", "template", "names", "assets"], True),
    ("hub", ["hub"], True),
    ("services", ["store", "cluster", "tls", "update", "logging", "jwt", "outbound"], False),
    ("node", ["node"], True),
    ("front ends", ["control", "subscriber", "api", "admin"], False),
    ("process", ["server", "app", "tray", "service", "main", "lib"], True),
]
RANK = {m: (i, name, same_ok) for i, (name, mods, same_ok) in enumerate(LAYERS) for m in mods}


def module_of(path: pathlib.Path, src: pathlib.Path) -> str:
    rel = path.relative_to(src)
    return rel.parts[0].removesuffix(".rs")


def code_lines(text: str):
    """Each line without its `//` comment (a `://` in a URL is kept)."""
    for number, line in enumerate(text.splitlines(), 1):
        yield number, re.sub(r"(?<!:)//.*", "", line)


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    problems = []
    for path in sorted(src.rglob("*.rs")):
        here = module_of(path, src)
        if here not in RANK:
            problems.append(f"{path}: module '{here}' has no layer in scripts/check-layers.py")
            continue
        rank, layer, same_ok = RANK[here]
        for number, line in code_lines(path.read_text()):
            names = set(re.findall(r"crate::([a-z_][a-z0-9_]*)", line))
            for group in re.findall(r"crate::\{([^}]*)\}", line):
                names.update(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
            for name in sorted(names):
                if name == here or name not in RANK:
                    continue
                other_rank, other_layer, _ = RANK[name]
                if other_rank > rank:
                    problems.append(
                        f"{path}:{number}: {here} ({layer}) imports {name} ({other_layer}), a higher layer"
                    )
                elif other_rank == rank and not same_ok:
                    problems.append(
                        f"{path}:{number}: {here} imports {name}: {layer} never import each other"
                    )
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} layering problem(s); see ARCHITECTURE.md")
        return 1
    print(f"layers: every import points down ({sum(1 for _ in src.rglob('*.rs'))} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
