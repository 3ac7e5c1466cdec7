#!/usr/bin/env python3
"""Lists every function defined in the engine and model sources that is longer than a limit.

Function extents come from clang's own parser (libclang, Debian package python3-clang-14), so
lambdas, templates and members are measured as the compiler sees them, not by counting braces.
A function's length is the number of lines from its first to its last line, signature included.

Usage: function_lengths.py --root REPO [--max-lines 80] [--build BUILD_DIR] [--list]
Exit status 1 when a function is over the limit (each one is printed with file:line and length).
"""
import argparse
import pathlib
import sys

import clang.cindex as ci

KINDS = {
    ci.CursorKind.FUNCTION_DECL, ci.CursorKind.CXX_METHOD, ci.CursorKind.CONSTRUCTOR,
    ci.CursorKind.DESTRUCTOR, ci.CursorKind.FUNCTION_TEMPLATE, ci.CursorKind.LAMBDA_EXPR,
    ci.CursorKind.CONVERSION_FUNCTION,
}


def find_libclang():
    for candidate in sorted(pathlib.Path("/usr/lib").glob("llvm-*/lib/libclang*.so*"), reverse=True):
        return str(candidate)
    return None


def functions(tu, path):
    """Yields (name, first line, last line) of every function body written in `path`."""
    stack = [tu.cursor]
    while stack:
        cursor = stack.pop()
        for child in cursor.get_children():
            loc = child.location
            if loc.file is not None and pathlib.Path(loc.file.name).resolve() != path:
                continue
            if child.kind in KINDS and (child.is_definition() or child.kind == ci.CursorKind.LAMBDA_EXPR):
                extent = child.extent
                yield child.spelling or "<lambda>", extent.start.line, extent.end.line
            stack.append(child)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--build", default=None, help="build directory (generated headers)")
    parser.add_argument("--max-lines", type=int, default=80)
    parser.add_argument("--list", action="store_true", help="print every function longer than 40 lines")
    args = parser.parse_args()
    lib = find_libclang()
    if lib:
        ci.Config.set_library_file(lib)
    root = pathlib.Path(args.root).resolve()
    includes = [root / "engine" / "include", root / "models" / "include", root / "engine" / "src"]
    if args.build:
        includes.append(pathlib.Path(args.build).resolve() / "generated")
    flags = ["-x", "c++", "-std=c++17", "-I/usr/include/eigen3", "-I/usr/include/hdf5/serial"]
    flags += [f"-I{p}" for p in includes]
    sources = sorted(list((root / "engine").rglob("*.cpp")) + list((root / "models").rglob("*.cpp"))
                     + list((root / "engine").rglob("*.h")) + list((root / "models").rglob("*.h")))
    index = ci.Index.create()
    over = []
    seen = set()
    for src in sources:
        tu = index.parse(str(src), args=flags)
        errors = [d for d in tu.diagnostics if d.severity >= ci.Diagnostic.Error]
        if errors:
            print(f"{src}: clang could not parse it: {errors[0]}", file=sys.stderr)
            return 2
        for name, first, last in functions(tu, src.resolve()):
            key = (src, first)
            if key in seen:
                continue
            seen.add(key)
            length = last - first + 1
            rel = src.relative_to(root)
            if length > args.max_lines:
                over.append((length, f"{rel}:{first}", name))
            elif args.list and length > 40:
                print(f"  {length:4d} lines  {rel}:{first}  {name}")
    for length, where, name in sorted(over, reverse=True):
        print(f"{length:4d} lines  {where}  {name}  (limit {args.max_lines})")
    print(f"function_lengths: {len(sources)} files, {len(seen)} functions, {len(over)} over {args.max_lines} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
