#!/usr/bin/env python3
"""Patch an extracted zeroc-ice 3.6.5 sdist so IcePy builds on CPython 3.6-3.13.

Usage: python3 patch_zeroc_ice.py SRC_DIR

SRC_DIR is the extracted ``zeroc-ice-3.6.5`` directory (the one holding
setup.py).  omero-py needs ``zeroc-ice>=3.6.5,<3.7``, which PyPI only ships
as an sdist whose C++ no longer compiles on Python >= 3.11.

Every C++ change is guarded with ``#if PY_VERSION_HEX ...`` so that one
patched tree builds on old and new Pythons alike; this script never looks at
the version of the Python running it.  One more patch (mcpp-readlink) is for
GCC >= 14, not for Python.  The pure-Python changes (lib/Ice.py: no ``imp``;
setup.py: no stdlib distutils) work unchanged on every version.
Stdlib only; the script itself runs on Python >= 3.6.

Each patch is an exact (original -> replacement) text substitution:
  * replacement already present -> skipped (idempotent: a second run is a no-op)
  * original present            -> applied
  * neither                     -> error, non-zero exit, and NOTHING is written
                                   (the tree is not the 3.6.5 this expects).
"""

import io
import os
import sys

MARK = "omeroweb-deploy"


class PatchError(Exception):
    pass


class Patch(object):
    def __init__(self, name, path, old, new, why):
        self.name = name
        self.path = path  # relative to SRC_DIR, '/' separated
        self.old = old
        self.new = new
        self.why = why


# Inserted into setup.py after its imports (setuptools first, so ``distutils`` is the one it
# uses): ``CCompiler.compile`` with the files compiled by a pool of threads, one per core this
# process may use (each thread waits for its compiler process). The same objects in the same
# order for the linker; the first compiler error stops the build, as before.
PARALLEL_COMPILE = (
    "# " + MARK + ": compile the extension's files on every core (distutils: one at a time).\n"
    "def _omeroweb_parallel_compile():\n"
    "    try:\n"
    "        from distutils import ccompiler\n"
    "        jobs = len(os.sched_getaffinity(0))\n"
    "    except (ImportError, AttributeError):\n"
    "        return\n"
    "    if jobs < 2:\n"
    "        return\n"
    "    from multiprocessing.pool import ThreadPool\n"
    "    def compile(self, sources, output_dir=None, macros=None, include_dirs=None, debug=0,\n"
    "                extra_preargs=None, extra_postargs=None, depends=None):\n"
    "        macros, objects, extra_postargs, pp_opts, build = self._setup_compile(\n"
    "            output_dir, macros, include_dirs, sources, depends, extra_postargs)\n"
    "        cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)\n"
    "        def one(obj):\n"
    "            if obj in build:\n"
    "                src, ext = build[obj]\n"
    "                self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)\n"
    "        pool = ThreadPool(jobs)\n"
    "        try:\n"
    "            for _ in pool.imap_unordered(one, objects):\n"
    "                pass\n"
    "        finally:\n"
    "            pool.terminate()\n"
    "            pool.join()\n"
    "        return objects\n"
    "    ccompiler.CCompiler.compile = compile\n"
    "_omeroweb_parallel_compile()\n"
)

PATCHES = [
    # ------------------------------------------------------------------ C++
    Patch(
        "eval-h",
        "src/Slice.cpp",
        "#include <compile.h>\n#include <eval.h>\n",
        "#include <compile.h>\n"
        "// " + MARK + ": eval.h was removed in Python 3.11; PyEval_EvalCode()\n"
        "// is declared by Python.h (ceval.h) on every Python 3 version.\n"
        "#if PY_VERSION_HEX < 0x030B0000\n"
        "#include <eval.h>\n"
        "#endif\n",
        "<eval.h> no longer exists on Python >= 3.11",
    ),
    Patch(
        "thread-state-frame",
        "src/Util.cpp",
        "    PyFrameObject *f = PyThreadState_GET()->frame;\n",
        "    // " + MARK + ": PyThreadState.frame was removed in Python 3.11;\n"
        "    // PyEval_GetFrame() is the public accessor for the same frame.\n"
        "#if PY_VERSION_HEX >= 0x030B0000\n"
        "    PyFrameObject *f = PyEval_GetFrame();\n"
        "#else\n"
        "    PyFrameObject *f = PyThreadState_GET()->frame;\n"
        "#endif\n",
        "PyThreadState->frame no longer exists on Python >= 3.11",
    ),
    Patch(
        "py313-compat",
        "src/Config.h",
        "#include <Python.h>\n",
        "#include <Python.h>\n"
        "\n"
        "// " + MARK + ": APIs removed in Python 3.13 that IcePy still uses\n"
        "// (Config.h is included by every IcePy source file, after Python.h).\n"
        "#if PY_VERSION_HEX >= 0x030D0000\n"
        "// PyEval_CallObject() (deprecated since 3.9) was removed in 3.13; it was\n"
        "// a plain call with no keyword arguments, i.e. PyObject_CallObject().\n"
        "#   ifndef PyEval_CallObject\n"
        "#       define PyEval_CallObject(callable, args) PyObject_CallObject(callable, args)\n"
        "#   endif\n"
        "// The old buffer API was removed in 3.13. Same implementation CPython\n"
        "// used for PyObject_AsReadBuffer() on top of the new buffer protocol.\n"
        "static inline int\n"
        "IcePy_AsReadBuffer(PyObject* obj, const void** buffer, Py_ssize_t* bufferLen)\n"
        "{\n"
        "    Py_buffer view;\n"
        "    if(obj == 0 || buffer == 0 || bufferLen == 0)\n"
        "    {\n"
        "        PyErr_SetString(PyExc_SystemError, \"null argument to internal routine\");\n"
        "        return -1;\n"
        "    }\n"
        "    if(PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) != 0)\n"
        "    {\n"
        "        return -1;\n"
        "    }\n"
        "    *buffer = view.buf;\n"
        "    *bufferLen = view.len;\n"
        "    PyBuffer_Release(&view);\n"
        "    return 0;\n"
        "}\n"
        "#   define PyObject_AsReadBuffer IcePy_AsReadBuffer\n"
        "#endif\n",
        "PyEval_CallObject and PyObject_AsReadBuffer are gone on Python >= 3.13",
    ),
    Patch(
        "mcpp-readlink",
        "src/ice/mcpp/system.c",
        '#include    "system.H"\n#include    "internal.H"\n',
        "/* " + MARK + ": configed.H sets _POSIX_C_SOURCE=1 before the first\n"
        " * libc header, which hides readlink() in <unistd.h> on glibc. GCC >= 14\n"
        " * (Debian trixie, Fedora 40) makes the implicit declaration an error.\n"
        " * _GNU_SOURCE makes glibc declare it again; compiler-, not Python-specific. */\n"
        "#if defined(__linux__) && !defined(_GNU_SOURCE)\n"
        "#define _GNU_SOURCE 1\n"
        "#endif\n"
        '#include    "system.H"\n#include    "internal.H"\n',
        "implicit declaration of readlink() is an error with GCC >= 14",
    ),
    # --------------------------------------------------------------- Python
    Patch(
        "ice-py-imp-import",
        "lib/Ice.py",
        "import sys, string, imp, os, threading, warnings, datetime\n",
        "# " + MARK + ": the imp module was removed in Python 3.12; the only use,\n"
        "# imp.new_module(), is types.ModuleType() on every Python version.\n"
        "import sys, string, types, os, threading, warnings, datetime\n",
        "'import imp' fails on Python >= 3.12",
    ),
    Patch(
        "ice-py-new-module",
        "lib/Ice.py",
        "            nmod = imp.new_module(curr)\n",
        "            nmod = types.ModuleType(curr) # " + MARK + ": was imp.new_module()\n",
        "imp.new_module() -> types.ModuleType() (imp is gone on Python >= 3.12)",
    ),
    # ------------------------------------------------------------ setup.py
    Patch(
        "setup-extension",
        "setup.py",
        "from distutils.extension import Extension\n",
        "# " + MARK + ": distutils was removed from the stdlib in Python 3.12;\n"
        "# take Extension from setuptools when it is there.\n"
        "try:\n"
        "    from setuptools import Extension\n"
        "except ImportError:\n"
        "    from distutils.extension import Extension\n",
        "distutils is not in the stdlib on Python >= 3.12",
    ),
    Patch(
        "setup-parallel-compile",
        "setup.py",
        "import sys, os, shutil, fnmatch\n",
        "import sys, os, shutil, fnmatch\n"
        + PARALLEL_COMPILE,
        "distutils compiles an extension's ~300 C/C++ files one at a time: on every core instead",
    ),
    Patch(
        "setup-no-debug-info",
        "setup.py",
        "    extra_compile_args.append('-w')\n    extra_link_args = []\n",
        "    extra_compile_args.append('-w')\n"
        "    # " + MARK + ": no debug information (Python's CFLAGS ask for -g): the link strips\n"
        "    # it anyway (LDFLAGS=-Wl,--strip-debug); about a fifth of the compile time saved.\n"
        "    extra_compile_args.append('-g0')\n"
        "    extra_link_args = []\n",
        "debug information the link strips anyway costs a fifth of the compile time",
    ),
    Patch(
        "setup-sysconfig",
        "setup.py",
        "    from distutils.sysconfig import get_config_vars\n",
        "    # " + MARK + ": stdlib sysconfig (distutils is gone in 3.12).\n"
        "    from sysconfig import get_config_vars\n",
        "distutils.sysconfig is not in the stdlib on Python >= 3.12",
    ),
    Patch(
        "setup-is-not",
        "setup.py",
        "        if platform is not 'freebsd':\n",
        "        if platform != 'freebsd': # " + MARK + ": 'is not' + literal is a SyntaxWarning\n",
        "'is not' with a str literal: SyntaxWarning on Python >= 3.8",
    ),
]


def _read(path):
    # newline='' keeps the line endings exactly as they are on disk.
    with io.open(path, "r", encoding="utf-8", newline="") as f:
        return f.read()


def _write(path, text):
    with io.open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def plan(src_dir):
    """Work out every change without writing anything.

    Returns (new_contents_by_path, applied_names, skipped_names).
    Raises PatchError if the tree is not the expected zeroc-ice 3.6.5.
    """
    if not os.path.isfile(os.path.join(src_dir, "setup.py")):
        raise PatchError("%s: no setup.py, not an extracted zeroc-ice sdist" % src_dir)
    contents = {}
    applied = []
    skipped = []
    for p in PATCHES:
        path = os.path.join(src_dir, *p.path.split("/"))
        if path not in contents:
            if not os.path.isfile(path):
                raise PatchError("%s: missing file %s (is this zeroc-ice 3.6.5?)" % (p.name, p.path))
            contents[path] = _read(path)
        text = contents[path]
        if p.new in text:
            skipped.append(p)
            continue
        count = text.count(p.old)
        if count != 1:
            raise PatchError(
                "%s: expected exactly one occurrence of this snippet in %s, found %d "
                "(is this zeroc-ice 3.6.5?):\n%s" % (p.name, p.path, count, p.old)
            )
        contents[path] = text.replace(p.old, p.new)
        applied.append(p)
    return contents, applied, skipped


def patch_tree(src_dir):
    """Apply all patches; nothing is written unless every patch can apply."""
    contents, applied, skipped = plan(src_dir)
    for path in sorted(set(os.path.join(src_dir, *p.path.split("/")) for p in applied)):
        _write(path, contents[path])
    return applied, skipped


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s SRC_DIR   (the extracted zeroc-ice-3.6.5 directory)\n" % argv[0])
        return 2
    src_dir = argv[1]
    try:
        applied, skipped = patch_tree(src_dir)
    except (PatchError, UnicodeDecodeError) as e:
        sys.stderr.write("patch_zeroc_ice: ERROR: %s\n" % e)
        sys.stderr.write("patch_zeroc_ice: nothing was changed in %s\n" % src_dir)
        return 1
    except (IOError, OSError) as e:
        sys.stderr.write("patch_zeroc_ice: ERROR: %s\n" % e)
        return 1
    for p in applied:
        print("applied  %-18s %-21s %s" % (p.name, p.path, p.why))
    for p in skipped:
        print("already  %-18s %-21s %s" % (p.name, p.path, p.why))
    print("patch_zeroc_ice: %d applied, %d already applied" % (len(applied), len(skipped)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
