"""The package's layout (issue 24): no import cycles, and the package's own imports at module top.

Read from the source with ``ast`` (nothing is imported): an edge A -> B is a module-level
``import``/``from ... import`` in A naming B, a module of this package (a name imported from a
package's ``__init__`` counts for that ``__init__``; a package's submodule imported through it counts
for the submodule). A module may import the package it sits in (a helper of that ``__init__``) as long
as that ``__init__`` does not import it back: the cycle test counts those edges too."""
import ast
import os

from conftest import REPO

PACKAGE = "chainer_dcgan"


def _modules():
    found = {}
    for folder, dirs, files in os.walk(os.path.join(REPO, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                found[dotted[:-len(".__init__")] if name == "__init__.py" else dotted] = path
    return found


MODULES = _modules()


def _targets(module, node, is_package):
    """The package's modules that ``node`` (an import statement in ``module``) names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")[:len(module.split(".")) - node.level + (1 if is_package else 0)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = []
        for alias in node.names:
            full = prefix + "." + alias.name
            names.append(full if full in MODULES else prefix)  # a submodule, or a name from `prefix`
    found = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def _imports():
    """``(module, line, target, at_top)`` for every import of one of the package's modules."""
    rows = []
    for module, path in MODULES.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        in_functions = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                        for n in ast.walk(f)}  # the rest runs when the module is imported
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, node, path.endswith("__init__.py")) - {module}:
                    rows.append((module, node.lineno, target, id(node) not in in_functions))
    return rows


IMPORTS = _imports()


def test_no_import_cycles():
    graph = {m: set() for m in MODULES}
    for module, _, target, at_top in IMPORTS:
        if at_top:
            graph[module].add(target)
    done, cycles = set(), []

    def visit(module, path):
        if module in path:
            cycles.append(path[path.index(module):] + [module])
            return
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, path + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_package_is_imported_at_module_top():
    inside = ["{}:{} imports {}".format(MODULES[m][len(REPO) + 1:], line, t) for m, line, t, at_top in IMPORTS
              if not at_top]
    assert not inside, "\n".join(inside)

