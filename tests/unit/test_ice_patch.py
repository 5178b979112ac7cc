"""Unit tests for files/ice/patch_zeroc_ice.py (no compiling, no network).

A tiny fake zeroc-ice-3.6.5 tree is built in tmp_path from the exact lines of
the real sdist that the script looks for.  Set ICE_SDIST=/path/to/
zeroc-ice-3.6.5.tar.gz to also patch a real, already downloaded sdist.
"""

import ast
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "files" / "ice" / "patch_zeroc_ice.py"

PATCH_NAMES = [
    "eval-h",
    "thread-state-frame",
    "py313-compat",
    "mcpp-readlink",
    "ice-py-imp-import",
    "ice-py-new-module",
    "setup-extension",
    "setup-parallel-compile",
    "setup-no-debug-info",
    "setup-sysconfig",
    "setup-is-not",
]

# Verbatim excerpts of zeroc-ice-3.6.5 (sdist from PyPI), with some
# surrounding context so we can check that context survives.
ORIG_SETUP_PY = """\
# Always prefer setuptools over distutils
try:
    from setuptools import setup
except ImportError:
    from distutils.core import setup

from distutils.extension import Extension
import sys, os, shutil, fnmatch

platform = sys.platform
if platform[:6] == 'darwin':
    platform = 'darwin'
else:
    #
    # TODO: Get rid of this hack to remove -Wstrict-prototypes from the compiler options
    #
    from distutils.sysconfig import get_config_vars
    (opt,) = get_config_vars('OPT')
    os.environ['OPT'] = " ".join(flag for flag in opt.split() if flag != '-Wstrict-prototypes')

    extra_compile_args.append('-w')
    extra_link_args = []
    if use_ice:
        libraries = ["IceSSL", "Ice", "Slice", "IceUtil"]
    else:
        libraries=['ssl', 'crypto', 'bz2', 'rt']
        if platform is not 'freebsd':
            libraries.append('dl')
"""

ORIG_SLICE_CPP = """\
#include <IceUtil/Options.h>

//
// Python headers needed for PyEval_EvalCode.
//
#include <compile.h>
#include <eval.h>

using namespace std;
"""

ORIG_UTIL_CPP = """\
#include <compile.h>
#include <frameobject.h>

string
IcePy::getFunction()
{
    //
    // Get name of current function.
    //
    PyFrameObject *f = PyThreadState_GET()->frame;
    PyObjectHandle code = PyObject_GetAttrString(reinterpret_cast<PyObject*>(f), STRCAST("f_code"));
}
"""

ORIG_CONFIG_H = """\
#ifndef ICEPY_CONFIG_H
#define ICEPY_CONFIG_H

#include <Python.h>

#ifdef STRCAST
#   error "STRCAST already defined!"
#endif
#define STRCAST(s) const_cast<char*>(s)

#endif
"""

ORIG_MCPP_SYSTEM_C = """\
 * To port MCPP for the systems not yet ported, you must
 *      1. specify the constants in "configed.H" or "noconfig.H",
 *      2. append the system-dependent routines in this file.
 */

#include    "system.H"
#include    "internal.H"

#if     HOST_SYS_FAMILY == SYS_UNIX
#include    "unistd.h"              /* For getcwd(), readlink() */
#elif   HOST_COMPILER == MSC || HOST_COMPILER == LCC
#include    "direct.h"
#define getcwd( buf, size)  _getcwd( buf, size)
#elif   HOST_COMPILER == BORLANDC
#include    "dir.h"
#endif
"""

ORIG_ICE_PY = """\
\"\"\"
Ice module
\"\"\"

import sys, string, imp, os, threading, warnings, datetime

_pendingModules = {}

def createModule(name):
    global _pendingModules
    l = name.split(".")
    curr = ''
    mod = None

    for s in l:
        curr = curr + s

        if curr in sys.modules:
            mod = sys.modules[curr]
        elif curr in _pendingModules:
            mod = _pendingModules[curr]
        else:
            nmod = imp.new_module(curr)
            _pendingModules[curr] = nmod
            mod = nmod

        curr = curr + "."

    return mod
"""

FILES = {
    "setup.py": ORIG_SETUP_PY,
    "lib/Ice.py": ORIG_ICE_PY,
    "src/Slice.cpp": ORIG_SLICE_CPP,
    "src/Util.cpp": ORIG_UTIL_CPP,
    "src/Config.h": ORIG_CONFIG_H,
    "src/ice/mcpp/system.c": ORIG_MCPP_SYSTEM_C,
}

N = len(PATCH_NAMES)


def make_tree(root, files=None):
    src = root / "zeroc-ice-3.6.5"
    for rel, text in (FILES if files is None else files).items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def run(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPT)] + [str(a) for a in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=60,
    )


def snapshot(src):
    return {
        str(p.relative_to(src)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(src.rglob("*"))
        if p.is_file()
    }


def test_applies_all_patches(tmp_path):
    src = make_tree(tmp_path)
    res = run(src)
    assert res.returncode == 0, res.stderr
    for name in PATCH_NAMES:
        assert "applied  " + name in res.stdout
    assert "%d applied, 0 already applied" % N in res.stdout

    setup_py = (src / "setup.py").read_text()
    assert "    from setuptools import Extension\n" in setup_py
    assert "\nfrom distutils.extension import Extension\n" not in setup_py
    assert "    from sysconfig import get_config_vars\n" in setup_py
    assert "distutils.sysconfig" not in setup_py
    assert "if platform != 'freebsd':" in setup_py
    assert "is not 'freebsd'" not in setup_py
    # the patched setup.py is still valid Python
    ast.parse(setup_py)

    slice_cpp = (src / "src/Slice.cpp").read_text()
    assert "#if PY_VERSION_HEX < 0x030B0000\n#include <eval.h>\n#endif\n" in slice_cpp
    assert "#include <compile.h>\n" in slice_cpp
    assert slice_cpp.count("#include <eval.h>") == 1

    util_cpp = (src / "src/Util.cpp").read_text()
    assert (
        "#if PY_VERSION_HEX >= 0x030B0000\n"
        "    PyFrameObject *f = PyEval_GetFrame();\n"
        "#else\n"
        "    PyFrameObject *f = PyThreadState_GET()->frame;\n"
        "#endif\n"
    ) in util_cpp
    assert 'STRCAST("f_code")' in util_cpp

    config_h = (src / "src/Config.h").read_text()
    assert "#if PY_VERSION_HEX >= 0x030D0000\n" in config_h
    assert "#       define PyEval_CallObject(callable, args) PyObject_CallObject(callable, args)" in config_h
    assert "#   define PyObject_AsReadBuffer IcePy_AsReadBuffer" in config_h
    assert "PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE)" in config_h
    assert "PyBuffer_Release(&view);" in config_h
    # the compat block must come after Python.h (it uses its types) and
    # before the rest of the header
    assert config_h.index("#include <Python.h>") < config_h.index("0x030D0000") < config_h.index("#ifdef STRCAST")
    ice_py = (src / "lib/Ice.py").read_text()
    assert "import sys, string, types, os, threading, warnings, datetime\n" in ice_py
    assert "            nmod = types.ModuleType(curr)" in ice_py
    code = "\n".join(line.split("#")[0] for line in ice_py.splitlines())
    assert "imp." not in code and " imp," not in code
    # the patched module code runs (here, on whatever Python runs the tests)
    # and createModule() still builds fresh modules without the imp module
    namespace = {"__name__": "fake_ice"}
    exec(compile(ice_py, "Ice.py", "exec"), namespace)
    mod = namespace["createModule"]("omeroweb_deploy_test_pkg")
    assert type(mod).__name__ == "module" and mod.__name__ == "omeroweb_deploy_test_pkg"

    system_c = (src / "src/ice/mcpp/system.c").read_text()
    assert (
        "#if defined(__linux__) && !defined(_GNU_SOURCE)\n"
        "#define _GNU_SOURCE 1\n"
        "#endif\n"
        '#include    "system.H"\n'
    ) in system_c
    # #if / #endif stay balanced in every patched C/C++ file
    for text in (slice_cpp, util_cpp, config_h, system_c):
        opened = sum(1 for l in text.splitlines() if l.lstrip().startswith(("#if", "#   if")))
        closed = sum(1 for l in text.splitlines() if l.replace(" ", "").startswith("#endif"))
        assert opened == closed


def test_second_run_is_a_noop(tmp_path):
    src = make_tree(tmp_path)
    assert run(src).returncode == 0
    # push mtimes into the past so that any rewrite would show
    for p in src.rglob("*"):
        if p.is_file():
            os.utime(str(p), ns=(1000000000, 1000000000))
    before = snapshot(src)
    res = run(src)
    assert res.returncode == 0, res.stderr
    assert "0 applied, %d already applied" % N in res.stdout
    for name in PATCH_NAMES:
        assert "already  " + name in res.stdout
    assert snapshot(src) == before


@pytest.mark.parametrize(
    "rel, snippet, patch_name",
    [
        ("src/Slice.cpp", "#include <eval.h>\n", "eval-h"),
        ("src/Util.cpp", "    PyFrameObject *f = PyThreadState_GET()->frame;\n", "thread-state-frame"),
        ("src/Config.h", "#include <Python.h>\n", "py313-compat"),
        ("setup.py", "from distutils.extension import Extension\n", "setup-extension"),
        ("setup.py", "import sys, os, shutil, fnmatch\n", "setup-parallel-compile"),
        ("setup.py", "    extra_compile_args.append('-w')\n    extra_link_args = []\n", "setup-no-debug-info"),
        ("setup.py", "    from distutils.sysconfig import get_config_vars\n", "setup-sysconfig"),
        ("setup.py", "        if platform is not 'freebsd':\n", "setup-is-not"),
        ("src/ice/mcpp/system.c", '#include    "internal.H"\n', "mcpp-readlink"),
        ("lib/Ice.py", "import sys, string, imp, os, threading, warnings, datetime\n", "ice-py-imp-import"),
        ("lib/Ice.py", "            nmod = imp.new_module(curr)\n", "ice-py-new-module"),
    ],
)
def test_missing_snippet_fails_loudly_and_changes_nothing(tmp_path, rel, snippet, patch_name):
    files = dict(FILES)
    assert snippet in files[rel]
    files[rel] = files[rel].replace(snippet, "")
    src = make_tree(tmp_path, files)
    before = snapshot(src)
    res = run(src)
    assert res.returncode != 0
    assert "ERROR" in res.stderr
    assert patch_name in res.stderr
    assert rel in res.stderr
    assert "3.6.5" in res.stderr
    assert "nothing was changed" in res.stderr
    assert snapshot(src) == before


def test_duplicated_snippet_fails(tmp_path):
    files = dict(FILES)
    files["src/Config.h"] = files["src/Config.h"] + "#include <Python.h>\n"
    src = make_tree(tmp_path, files)
    res = run(src)
    assert res.returncode != 0
    assert "found 2" in res.stderr


def test_missing_file_fails(tmp_path):
    files = dict(FILES)
    del files["src/Util.cpp"]
    src = make_tree(tmp_path, files)
    before = snapshot(src)
    res = run(src)
    assert res.returncode != 0
    assert "src/Util.cpp" in res.stderr
    assert snapshot(src) == before


def test_not_an_sdist_dir(tmp_path):
    res = run(tmp_path)
    assert res.returncode != 0
    assert "setup.py" in res.stderr


def test_usage(tmp_path):
    res = run()
    assert res.returncode == 2
    assert "usage" in res.stderr


def test_script_is_stdlib_only_and_old_python_syntax():
    source = SCRIPT.read_text()
    tree = ast.parse(source, feature_version=(3, 6)) if sys.version_info >= (3, 8) else ast.parse(source)
    stdlib = {"io", "os", "sys"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name.split(".")[0] for a in node.names} <= stdlib
        elif isinstance(node, ast.ImportFrom):
            assert node.module.split(".")[0] in stdlib
        # no f-strings at all (keeps it trivially 3.6-safe, no `=` specifier)
        assert not isinstance(node, ast.JoinedStr)
        assert type(node).__name__ != "NamedExpr"


@pytest.mark.skipif(shutil.which("cpp") is None, reason="needs the C preprocessor")
@pytest.mark.parametrize(
    "hexversion, want_eval_h, want_eval_frame, want_compat",
    [
        (0x030600F0, True, False, False),
        (0x030A00F0, True, False, False),
        (0x030B00F0, False, True, False),
        (0x030C00F0, False, True, False),
        (0x030D00F0, False, True, True),
    ],
)
def test_guards_select_the_right_code(tmp_path, hexversion, want_eval_h, want_eval_frame, want_compat):
    """Run the patched files through cpp for several PY_VERSION_HEX values."""
    src = make_tree(tmp_path)
    assert run(src).returncode == 0
    inc = tmp_path / "inc"
    inc.mkdir()
    # stand-in headers so cpp can follow the #includes
    (inc / "Python.h").write_text("PYTHON_H\n")
    (inc / "eval.h").write_text("EVAL_H_INCLUDED\n")
    (inc / "compile.h").write_text("\n")
    (inc / "frameobject.h").write_text("\n")
    (inc / "IceUtil").mkdir()
    (inc / "IceUtil" / "Options.h").write_text("\n")

    def pre(rel):
        res = subprocess.run(
            ["cpp", "-P", "-x", "c++", "-I", str(inc), "-DPY_VERSION_HEX=%#x" % hexversion, str(src / rel)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
        )
        assert res.returncode == 0, res.stderr
        return res.stdout

    assert ("EVAL_H_INCLUDED" in pre("src/Slice.cpp")) == want_eval_h
    util = pre("src/Util.cpp")
    assert ("PyEval_GetFrame()" in util) == want_eval_frame
    assert ("PyThreadState_GET()->frame" in util) == (not want_eval_frame)
    config = pre("src/Config.h")
    assert ("IcePy_AsReadBuffer" in config) == want_compat


def real_sdist() -> str:
    """The real zeroc-ice 3.6.5 sdist: ``$ICE_SDIST``, or fetched once from PyPI into the cache."""
    if os.environ.get("ICE_SDIST"):
        return os.environ["ICE_SDIST"]
    from testbed.cache import cache_dir

    folder = cache_dir() / "sdist"
    sdist = folder / "zeroc-ice-3.6.5.tar.gz"
    if not sdist.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "zeroc-ice==3.6.5", "-d", str(folder)],
            check=True, capture_output=True,
        )
    return str(sdist)


def test_real_sdist(tmp_path):
    with tarfile.open(real_sdist()) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(str(tmp_path), filter="data")
        else:
            tar.extractall(str(tmp_path))
    src = tmp_path / "zeroc-ice-3.6.5"
    res = run(src)
    assert res.returncode == 0, res.stderr
    assert "%d applied, 0 already applied" % N in res.stdout
    res = run(src)
    assert res.returncode == 0, res.stderr
    assert "0 applied, %d already applied" % N in res.stdout


#: A stand-in compiler: notes how many compilers run at once (files in a folder), then writes
#: the object file after a short while.
FAKE_COMPILER = """#!/bin/sh
for last; do :; done
mark="$RUNNING/$$"; touch "$mark"; ls "$RUNNING" | wc -l >> "$SEEN"
sleep 0.3; rm -f "$mark"; : > "$last"
"""


def test_the_patched_setup_compiles_the_files_on_every_core(tmp_path, monkeypatch):
    """The code the patch puts into setup.py, run with this Python's distutils (setuptools'):
    the files are compiled by as many compilers at once as there are cores, and the objects
    come back in the sources' order, for the linker."""
    import importlib
    import os

    import setuptools  # noqa: F401 - first, as setup.py does: its distutils
    patch = importlib.util.spec_from_file_location("patch_zeroc_ice", SCRIPT)
    module = importlib.util.module_from_spec(patch)
    patch.loader.exec_module(module)
    from distutils import ccompiler

    cores = len(os.sched_getaffinity(0))
    original = ccompiler.CCompiler.compile
    try:
        exec(compile(module.PARALLEL_COMPILE, "setup.py", "exec"), {"os": os})
        assert (ccompiler.CCompiler.compile is not original) == (cores >= 2)
        fake = tmp_path / "cc"
        fake.write_text(FAKE_COMPILER)
        fake.chmod(0o755)
        (tmp_path / "running").mkdir()
        monkeypatch.setenv("RUNNING", str(tmp_path / "running"))
        monkeypatch.setenv("SEEN", str(tmp_path / "seen"))
        sources = []
        for n in range(6):
            source = tmp_path / f"f{n}.cpp"
            source.write_text("int f%d() { return %d; }\n" % (n, n))
            sources.append(str(source))
        compiler = ccompiler.new_compiler()
        compiler.set_executables(compiler_so=[str(fake)])
        objects = compiler.compile(sources, output_dir=str(tmp_path / "build"))
    finally:
        ccompiler.CCompiler.compile = original
    assert [Path(o).stem for o in objects] == [f"f{n}" for n in range(6)]
    assert all(Path(o).exists() for o in objects)
    seen = [int(n) for n in (tmp_path / "seen").read_text().split()]
    assert max(seen) == min(cores, 6), seen
