#!/usr/bin/env python3
"""Ratchet on code size (issue #13): no function over 80 lines and no file over 600 lines in src/,
except those listed in scripts/size_exceptions.txt (each with the reason); an exception that no longer
applies must be removed, so the list only shrinks.

Function length: from the first line of its signature (a line at column 0) to its closing brace at
column 0, inclusive — the house style (clang-format, no indentation inside namespaces) puts every
definition's signature and closing brace there. Usage: check_sizes.py [ROOT] [--self-test]"""
import pathlib
import re
import sys

MAX_FUNCTION = 80
MAX_FILE = 600
NOT_A_FUNCTION = re.compile(r"^(namespace|struct|class|enum|union|extern|using|#|//|/\*|\*|template\s*<[^>]*>\s*(struct|class))")


def functions(text):
    """Yield (name, first_line, length) for each definition whose signature starts at column 0."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line or line[0].isspace() or line.startswith("}") or NOT_A_FUNCTION.match(line) or line.startswith("template"):
            i += 1
            continue
        # The signature may run over several lines; it ends at a line ending with "{" (a body) or ";".
        j = i
        while j < len(lines) and not lines[j].rstrip().endswith(("{", ";")) and j - i < 8:
            j += 1
        if j >= len(lines) or not lines[j].rstrip().endswith("{") or "=" in lines[i].split("(")[0]:
            i = j + 1
            continue
        k = j + 1
        if lines[j].rstrip().endswith("{") and lines[j].strip().endswith("}"):
            i = k
            continue
        while k < len(lines) and not (lines[k].startswith("}") and not lines[k].startswith("};")):
            k += 1
        m = re.search(r"([A-Za-z_][A-Za-z0-9_:~<>]*)\s*\(", " ".join(lines[i:j + 1]))
        name = m.group(1) if m else lines[i][:40]
        yield name, i + 1, k - i + 1
        i = k + 1


def check(root):
    root = pathlib.Path(root)
    exceptions_file = root / "scripts" / "size_exceptions.txt"
    allowed = {}
    if exceptions_file.exists():
        for raw in exceptions_file.read_text().splitlines():
            entry = raw.split("#", 1)[0].strip()
            if entry:
                allowed[entry] = raw
    found = set()
    problems = []
    for path in sorted((root / "src").rglob("*.cpp")) + sorted((root / "src").rglob("*.hpp")):
        rel = path.relative_to(root).as_posix()
        text = path.read_text(errors="replace")
        n = text.count("\n")
        if n > MAX_FILE:
            key = f"{rel}"
            found.add(key)
            if key not in allowed:
                problems.append(f"{rel}: {n} lines (at most {MAX_FILE}): split it by job")
        for name, line, length in functions(text):
            if length > MAX_FUNCTION:
                key = f"{rel}:{name}"
                found.add(key)
                if key not in allowed:
                    problems.append(f"{rel}:{line}: function {name} has {length} lines (at most {MAX_FUNCTION})")
    for key in sorted(set(allowed) - found):
        problems.append(f"scripts/size_exceptions.txt: '{key}' is within the limits now: remove it")
    return problems


def self_test():
    long_fn = "int f(int x) {\n" + "  x += 1;\n" * 90 + "  return x;\n}\n"
    short_fn = "namespace a {\nvoid g() {\n  h();\n}\n}  // namespace a\n"
    multi = "double ControlCore::k(int a,\n                      int b) noexcept {\n" + "  a++;\n" * 85 + "}\n"
    got = [(n, l) for n, _, l in functions(long_fn + short_fn + multi)]
    assert ("f", 93) in got, got
    assert ("g", 3) in got, got
    assert ("ControlCore::k", 88) in got, got
    # The ratchet on a temporary tree: a new violation fails, a listed one passes, a stale entry fails.
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        root = pathlib.Path(d)
        (root / "src").mkdir()
        (root / "scripts").mkdir()
        (root / "src" / "a.cpp").write_text(long_fn + short_fn)
        assert any("function f has 93 lines" in p for p in check(root)), check(root)
        (root / "scripts" / "size_exceptions.txt").write_text("src/a.cpp:f  # why\n")
        assert check(root) == [], check(root)
        (root / "src" / "a.cpp").write_text(short_fn)
        assert any("within the limits now" in p for p in check(root)), check(root)
        (root / "src" / "b.cpp").write_text("// x\n" * 601)
        assert any("src/b.cpp: 601 lines" in p for p in check(root)), check(root)
    print("check_sizes: self-test passed")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--self-test" in sys.argv:
        self_test()
        sys.exit(0)
    problems = check(args[0] if args else pathlib.Path(__file__).resolve().parent.parent)
    for p in problems:
        print("check_sizes:", p)
    if problems:
        sys.exit(1)
    print(f"check_sizes: every function <= {MAX_FUNCTION} lines and every file <= {MAX_FILE} lines, but the listed exceptions")
