"""Chainer's own tests, run against the installed chainer (through our startup hook), file by file.

Chainer 7.8.1 is no longer maintained; its test suite is the best check that the startup hook
(``_chainer_dcgan_shims``) makes it whole on today's Python and numpy. This runs test files of a
Chainer v7.8.1 source tree with pytest under Chainer's own configuration (its ``setup.cfg``: every
warning an error, except the ones it lists) and the CPU markers, and prints per file how many tests
passed, failed, errored and were skipped. ::

    python bench/chainer_suite.py /tmp/chainer-v7.8.1 \\
        tests/chainer_tests/functions_tests/array_tests/test_resize_images.py \\
        tests/chainer_tests/distributions_tests/test_categorical.py

Each TEST is a path inside the checkout (``tests/...``, or relative to its ``tests/``), optionally
with a ``::node`` suffix. pytest runs in a scratch folder, never in the checkout, so the chainer
under test is the one ``--python`` imports (its location is printed first), not the checkout's
source. ``docs/chainer_suite.rst`` holds one run's result.

Exit status: 0 when no test failed, 1 when one did (or a file did not finish), 2 on a bad argument.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree

#: The tests Chainer's CPU CI leaves out: GPUs, cuDNN, iDeep, several GPUs, and the slow ones.
CPU_MARKERS = "not gpu and not cudnn and not ideep and not multi_gpu and not slow"
VERSION = "7.8.1"

#: What the chainer under test reports; printed before the table so a run says what it measured.
PROBE = """
import json, sys
import chainer, numpy
shims = sys.modules.get("_chainer_dcgan_shims")
try:
    import mock
    mock = mock.__version__
except ImportError:
    mock = None
print(json.dumps({"mock": mock, "chainer": chainer.__file__, "version": chainer.__version__, "numpy": numpy.__version__,
                  "python": sys.version.split()[0], "shims": getattr(shims, "__file__", None)}))
"""


class BadArgument(Exception):
    pass


def checkout_version(checkout):
    """``__version__`` of the Chainer source tree at ``checkout`` (read, not imported)."""
    path = os.path.join(checkout, "chainer", "_version.py")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(100000)
    except OSError as e:
        raise BadArgument("{}: not a Chainer checkout ({})".format(checkout, e.strerror or e)) from None
    found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    if found is None:
        raise BadArgument("{}: chainer/_version.py names no __version__".format(checkout))
    return found.group(1)


def resolve_test(checkout, test):
    """``(label, absolute path with any ::node suffix)`` of one TEST argument inside ``checkout``."""
    path, sep, node = test.partition("::")
    candidates = [path] if os.path.isabs(path) else [os.path.join(checkout, path),
                                                     os.path.join(checkout, "tests", path)]
    for candidate in candidates:
        candidate = os.path.realpath(candidate)
        if os.path.exists(candidate):
            if os.path.commonpath([candidate, os.path.realpath(checkout)]) != os.path.realpath(checkout):
                raise BadArgument("{}: outside the checkout {}".format(test, checkout))
            label = os.path.relpath(candidate, checkout) + sep + node
            return label, candidate + sep + node
    raise BadArgument("{}: no such test file in {}".format(test, checkout))


def counts_from_junit(path):
    """``{"passed", "failed", "errors", "skipped"}`` summed over the testsuites of a junit XML file
    that pytest wrote (our own scratch file)."""
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in total:
            total[key] += int(suite.get(key, 0))
    return {"passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
            "failed": total["failures"], "errors": total["errors"], "skipped": total["skipped"]}


def run_file(python, checkout, target, markers, keyword, timeout, scratch):
    """Run one test file (or node) under pytest; returns its counts, ``seconds`` and ``note``."""
    junit = os.path.join(scratch, "junit.xml")
    if os.path.exists(junit):
        os.remove(junit)
    command = [python, "-m", "pytest", target, "-c", os.path.join(checkout, "setup.cfg"),
               "--rootdir", checkout, "-o", "addopts=", "-m", markers, "-q", "-p", "no:cacheprovider",
               "--junitxml", junit]
    if keyword:
        command += ["-k", keyword]
    start = time.monotonic()
    try:
        proc = subprocess.run(command, cwd=scratch, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"passed": 0, "failed": 0, "errors": 1, "skipped": 0, "seconds": timeout,
                "note": "did not finish in {} s".format(timeout)}
    seconds = round(time.monotonic() - start, 1)
    if not os.path.exists(junit):
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        return {"passed": 0, "failed": 0, "errors": 1, "skipped": 0, "seconds": seconds,
                "note": "pytest exited {}: {}".format(proc.returncode, last)}
    result = counts_from_junit(junit)
    result.update(seconds=seconds, note=collection_error(proc.stdout) if result["errors"] else "")
    return result


def collection_error(output):
    """The first ``E   ...`` line after pytest's "ERROR collecting", or ""."""
    collecting = False
    for line in output.splitlines():
        collecting = collecting or "ERROR collecting" in line
        if collecting and line.startswith("E   "):
            return "collection: " + line[1:].strip()
    return ""


def probe(python, scratch):
    proc = subprocess.run([python, "-c", PROBE], cwd=scratch, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise BadArgument("{} cannot import chainer: {}".format(
            python, (proc.stderr.strip() or "exit {}".format(proc.returncode)).splitlines()[-1]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(rows):
    width = max([len("file")] + [len(r["file"]) for r in rows])
    lines = ["{:<{w}}  {:>6}  {:>6}  {:>6}  {:>7}  {:>6}".format(
        "file", "passed", "failed", "errors", "skipped", "s", w=width)]
    for r in rows:
        lines.append("{:<{w}}  {:>6}  {:>6}  {:>6}  {:>7}  {:>6}{}".format(
            r["file"], r["passed"], r["failed"], r["errors"], r["skipped"], r["seconds"],
            "  " + r["note"] if r["note"] else "", w=width))
    total = {k: sum(r[k] for r in rows) for k in ("passed", "failed", "errors", "skipped")}
    lines.append("{:<{w}}  {:>6}  {:>6}  {:>6}  {:>7}  {:>6}".format(
        "total", total["passed"], total["failed"], total["errors"], total["skipped"],
        round(sum(r["seconds"] for r in rows), 1), w=width))
    return "\n".join(lines), total


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Run test files of a Chainer v{} checkout against the installed chainer and print "
                    "passed/failed per file.".format(VERSION))
    parser.add_argument("checkout", help="a Chainer v{} source tree (git archive of the tag)".format(VERSION))
    parser.add_argument("tests", nargs="+", metavar="TEST",
                        help="test files in the checkout (tests/..., or relative to tests/), optionally FILE::NODE")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter whose chainer is tested (default: this one)")
    parser.add_argument("--markers", default=CPU_MARKERS, help="pytest -m expression (default: %(default)r)")
    parser.add_argument("-k", dest="keyword", default=None, help="pytest -k expression, for every file")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one file may take (default 1800)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows and totals as JSON to PATH")
    args = parser.parse_args(argv)
    try:
        if args.timeout <= 0:
            raise BadArgument("--timeout must be positive")
        checkout = os.path.abspath(args.checkout)
        version = checkout_version(checkout)
        if version != VERSION:
            raise BadArgument("{}: Chainer {}, not {}".format(checkout, version, VERSION))
        if not os.path.isfile(os.path.join(checkout, "setup.cfg")):
            raise BadArgument("{}: no setup.cfg (Chainer's pytest configuration)".format(checkout))
        targets = [resolve_test(checkout, t) for t in args.tests]
        with tempfile.TemporaryDirectory(prefix="chainer-suite-") as scratch:
            info = probe(args.python, scratch)
            if os.path.commonpath([os.path.realpath(info["chainer"]), checkout]) == checkout:
                raise BadArgument("{} imports chainer from the checkout itself ({})".format(
                    args.python, info["chainer"]))
            print("chainer {version} from {chainer}\npython {python}, numpy {numpy}, shims {shims}".format(**info))
            if info["mock"] is None:
                print("warning: no 'mock' here; Chainer's tests that import it fail to collect "
                      "(pip install '.[chainer-suite]')", file=sys.stderr)
            print("markers: {}{}\n".format(args.markers, ", -k " + args.keyword if args.keyword else ""),
                  flush=True)
            rows = []
            for label, target in targets:
                row = run_file(args.python, checkout, target, args.markers, args.keyword, args.timeout, scratch)
                row["file"] = label
                rows.append(row)
    except BadArgument as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2
    text, total = table(rows)
    print(text)
    if args.json:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from chainer_dcgan.utils.atomic import atomic_write

        with atomic_write(args.json, "w") as f:
            json.dump({"environment": info, "markers": args.markers, "keyword": args.keyword,
                       "rows": rows, "total": total}, f, indent=1)
    return 1 if total["failed"] or total["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
