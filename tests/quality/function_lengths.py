#!/usr/bin/env python3
"""Lists every function defined in the engine and model sources that is longer than a limit.

Function extents come from clang's own parser (libclang, Debian package python3-clang-14), so
lambdas, templates and members are measured as the compiler sees them, not by counting braces.
A function's length is the number of lines from its first to its last line, signature included;
a lambda is measured on its own and also counts in the function that holds it.

Each source file is parsed once (in --jobs processes); the functions of the project's headers are
measured where a source includes them, and a header no source includes is parsed on its own.

Usage: function_lengths.py --root REPO [--max-lines 80] [--build BUILD_DIR] [--list] [--jobs 2]
       function_lengths.py --self-test
Exit status: 0 every function within the limit; 1 a function over it (each one is printed with
file:line and length); 2 the check could not run (clang cannot parse a file, no source found,
libclang missing). --self-test measures generated files with known lengths and exits 0 only if
the check reports exactly what it must.
"""
import argparse
import concurrent.futures
import pathlib
import sys
import tempfile

try:
    import clang.cindex as ci
except ImportError:
    print("function_lengths: the Python bindings of libclang are missing (Debian: python3-clang-14, "
          "see scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(2)

KINDS = {
    ci.CursorKind.FUNCTION_DECL, ci.CursorKind.CXX_METHOD, ci.CursorKind.CONSTRUCTOR,
    ci.CursorKind.DESTRUCTOR, ci.CursorKind.FUNCTION_TEMPLATE, ci.CursorKind.LAMBDA_EXPR,
    ci.CursorKind.CONVERSION_FUNCTION,
}
MEASURED_DIRS = ("engine", "models")

_index = None  # one libclang index per worker process


def find_libclang():
    for candidate in sorted(pathlib.Path("/usr/lib").glob("llvm-*/lib/libclang*.so*"), reverse=True):
        return str(candidate)
    return None


def init_worker():
    global _index
    lib = find_libclang()
    if lib and not ci.Config.loaded:
        ci.Config.set_library_file(lib)
    _index = ci.Index.create()


def parse_flags(root, build):
    includes = [root / "engine" / "include", root / "models" / "include", root / "engine" / "src"]
    if build:
        includes.append(pathlib.Path(build).resolve() / "generated")
    flags = ["-x", "c++", "-std=c++17", "-I/usr/include/eigen3", "-I/usr/include/hdf5/serial"]
    return flags + [f"-I{p}" for p in includes]


def in_project(path, root):
    """True for a file under one of the measured folders of root."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    return rel.parts[:1] in [(d,) for d in MEASURED_DIRS]


def measure_file(src, root, flags):
    """Parses one file. Returns (error or None, functions, project files it includes), functions
    as (file, name, first line, last line) of every definition written in a project file."""
    # PARSE_INCOMPLETE: clang skips the work of a translation unit's end, chiefly the implicit
    # instantiation of every function template the file uses (Eigen, odeint). The definitions and
    # their extents are parsed as before (same functions and lines found in every file, checked
    # when this was introduced); the parse takes about half the time (compartment.cpp 18 -> 7.5 s).
    tu = _index.parse(src, args=flags, options=ci.TranslationUnit.PARSE_INCOMPLETE)
    errors = [d for d in tu.diagnostics if d.severity >= ci.Diagnostic.Error]
    if errors:
        return f"{src}: clang could not parse it: {errors[0]}", [], []
    root = pathlib.Path(root)
    found = []
    known = {}  # file name -> resolved path if in the project, else None
    stack = [(tu.cursor, pathlib.Path(src).resolve())]
    while stack:
        cursor, parent_file = stack.pop()
        for child in cursor.get_children():
            loc = child.location
            path = parent_file
            if loc.file is not None:
                name = loc.file.name
                if name not in known:
                    resolved = pathlib.Path(name).resolve()
                    known[name] = resolved if in_project(resolved, root) else None
                path = known[name]
                if path is None:
                    continue  # system and library headers are not measured (nor descended into)
            if child.kind in KINDS and (child.is_definition() or child.kind == ci.CursorKind.LAMBDA_EXPR):
                extent = child.extent
                found.append((str(path), child.spelling or "<lambda>", extent.start.line, extent.end.line))
            stack.append((child, path))
    included = []
    for inc in tu.get_includes():
        p = pathlib.Path(inc.include.name).resolve()
        if in_project(p, root):
            included.append(str(p))
    return None, found, included


def measure(root, build, max_lines, list_long=False, jobs=2, out=sys.stdout, err=sys.stderr):
    """Measures every function of root's engine/ and models/. Returns the exit status."""
    root = pathlib.Path(root).resolve()
    flags = parse_flags(root, build)
    files = []
    for d in MEASURED_DIRS:
        files += list((root / d).rglob("*.cpp")) + list((root / d).rglob("*.h"))
    files = sorted(str(f.resolve()) for f in files)
    sources = [f for f in files if f.endswith(".cpp")]
    headers = [f for f in files if f.endswith(".h")]
    if not files:
        print(f"function_lengths: no .cpp or .h file under {root}/{{{','.join(MEASURED_DIRS)}}}", file=err)
        return 2
    functions = {}  # (file, first line, name) -> last line
    covered = set()
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, jobs), initializer=init_worker) as pool:
        for batch in (sources, None):
            if batch is None:  # headers no source includes are parsed on their own
                batch = [h for h in headers if h not in covered]
            results = pool.map(measure_file, batch, [str(root)] * len(batch), [flags] * len(batch))
            for src, (error, found, included) in zip(batch, results):
                if error:
                    print(error, file=err)
                    return 2
                covered.add(src)
                covered.update(included)
                for path, name, first, last in found:
                    functions[(path, first, name)] = last
    over = []
    for (path, first, name), last in functions.items():
        length = last - first + 1
        rel = pathlib.Path(path).relative_to(root)
        if length > max_lines:
            over.append((length, f"{rel}:{first}", name))
        elif list_long and length > 40:
            print(f"  {length:4d} lines  {rel}:{first}  {name}", file=out)
    for length, where, name in sorted(over, reverse=True):
        print(f"{length:4d} lines  {where}  {name}  (limit {max_lines})", file=out)
    print(f"function_lengths: {len(files)} files, {len(functions)} functions, {len(over)} over {max_lines} lines",
          file=out)
    return 1 if over else 0


def function_of(name, lines):
    """C++ text of a function `name` that spans exactly `lines` lines."""
    body = [f"  x += {i};" for i in range(lines - 3)]
    return "\n".join([f"int {name}(int x) {{"] + body + ["  return x;", "}"]) + "\n"


def self_test():
    """Measures generated files of known lengths: the check must report exactly the long ones,
    and fail (status 2) on a file clang cannot parse."""
    import io
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "engine" / "src").mkdir(parents=True)
        (root / "models" / "include").mkdir(parents=True)
        lambda_fn = ("int with_lambda() {\n  auto f = [](int x) {\n" + "    x += 1;\n" * 79
                     + "    return x;\n  };\n  return f(1);\n}\n")  # 85 lines, its lambda 82
        (root / "engine" / "src" / "a.cpp").write_text(
            '#include "b.h"\n' + function_of("at_limit", 80) + function_of("over_limit", 81) + lambda_fn)
        (root / "models" / "include" / "b.h").write_text("#pragma once\ninline " + function_of("in_header", 82))
        text = io.StringIO()
        status = measure(root, None, 80, out=text)
        report = text.getvalue()
        expected = ["  81 lines  engine/src/a.cpp:82  over_limit  ", "  82 lines  models/include/b.h:2  in_header  ",
                    "  82 lines  engine/src/a.cpp:164  <lambda>  ", "  85 lines  engine/src/a.cpp:163  with_lambda  "]
        if status != 1:
            problems.append(f"status {status} for functions over the limit; expected 1")
        for line in expected:
            if line not in report:
                problems.append(f"not reported: {line}")
        if "at_limit" in report:
            problems.append("an 80-line function was reported over the limit of 80")
        if "function_lengths: 2 files, 5 functions, 4 over 80 lines" not in report:
            problems.append("expected 2 files, 5 functions, 4 over the limit")
        (root / "engine" / "src" / "broken.cpp").write_text("int broken( {\n")
        status = measure(root, None, 80, out=io.StringIO(), err=io.StringIO())
        if status != 2:
            problems.append(f"status {status} for a file clang cannot parse; expected 2")
    for p in problems:
        print(f"function_lengths --self-test: {p}", file=sys.stderr)
    if problems:
        print(f"--- the report on the generated files:\n{report}", file=sys.stderr)
    if not problems:
        print("function_lengths --self-test: ok (reports functions over the limit, fails on unparsable files)")
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root")
    parser.add_argument("--build", default=None, help="build directory (generated headers)")
    parser.add_argument("--max-lines", type=int, default=80)
    parser.add_argument("--list", action="store_true", help="print every function longer than 40 lines")
    parser.add_argument("--jobs", type=int, default=2, help="parser processes")
    parser.add_argument("--self-test", action="store_true", help="check the checker on generated files")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not args.root:
        parser.error("--root is required (or --self-test)")
    return measure(args.root, args.build, args.max_lines, args.list, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
