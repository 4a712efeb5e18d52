"""Build ``data/python-docs.jsonl``, a small real corpus that ships with the repository.

Why: tests, demos and benchmarks need real prose to index and search, but the repository
should not depend on a download or on a data set with an unclear licence. The running
Python interpreter already carries real documentation under the PSF licence: the Language
Reference topics in ``pydoc_data.topics`` and the docstrings of the standard library. This
script extracts them, tidies the whitespace and writes one JSON object per line, sorted by
id, so re-running it with the same interpreter gives a byte-identical file.

Run with the standard library only: ``python data/build_corpus.py``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

OUT = Path(__file__).resolve().parent / "python-docs.jsonl"
MIN_CHARS = 200  # docstrings shorter than this carry too little text to search
MAX_BYTES = 20 * 1024 * 1024

# Module -> title as in the Python Library Reference's table of contents.
MODULES: dict[str, str] = {
    "abc": "Abstract Base Classes",
    "argparse": "Parser for command-line options, arguments and sub-commands",
    "array": "Efficient arrays of numeric values",
    "ast": "Abstract Syntax Trees",
    "asyncio": "Asynchronous I/O",
    "atexit": "Exit handlers",
    "base64": "Base16, Base32, Base64, Base85 Data Encodings",
    "bdb": "Debugger framework",
    "binascii": "Convert between binary and ASCII",
    "bisect": "Array bisection algorithm",
    "builtins": "Built-in objects",
    "bz2": "Support for bzip2 compression",
    "calendar": "General calendar-related functions",
    "cmath": "Mathematical functions for complex numbers",
    "cmd": "Support for line-oriented command interpreters",
    "code": "Interpreter base classes",
    "codecs": "Codec registry and base classes",
    "codeop": "Compile Python code",
    "collections": "Container datatypes",
    "collections.abc": "Abstract Base Classes for Containers",
    "colorsys": "Conversions between color systems",
    "compileall": "Byte-compile Python libraries",
    "concurrent.futures": "Launching parallel tasks",
    "configparser": "Configuration file parser",
    "contextlib": "Utilities for with-statement contexts",
    "contextvars": "Context Variables",
    "copy": "Shallow and deep copy operations",
    "csv": "CSV File Reading and Writing",
    "ctypes": "A foreign function library for Python",
    "curses": "Terminal handling for character-cell displays",
    "dataclasses": "Data Classes",
    "datetime": "Basic date and time types",
    "dbm": 'Interfaces to Unix "databases"',
    "decimal": "Decimal fixed point and floating point arithmetic",
    "difflib": "Helpers for computing deltas",
    "dis": "Disassembler for Python bytecode",
    "doctest": "Test interactive Python examples",
    "email": "An email and MIME handling package",
    "email.charset": "Representing character sets",
    "email.generator": "Generating MIME documents",
    "email.header": "Internationalized headers",
    "email.headerregistry": "Custom Header Objects",
    "email.message": "Representing an email message",
    "email.parser": "Parsing email messages",
    "email.policy": "Policy Objects",
    "email.utils": "Miscellaneous utilities",
    "enum": "Support for enumerations",
    "errno": "Standard errno system symbols",
    "faulthandler": "Dump the Python traceback",
    "fcntl": "The fcntl and ioctl system calls",
    "filecmp": "File and Directory Comparisons",
    "fileinput": "Iterate over lines from multiple input streams",
    "fnmatch": "Unix filename pattern matching",
    "fractions": "Rational numbers",
    "ftplib": "FTP protocol client",
    "functools": "Higher-order functions and operations on callable objects",
    "gc": "Garbage Collector interface",
    "getopt": "C-style parser for command line options",
    "getpass": "Portable password input",
    "gettext": "Multilingual internationalization services",
    "glob": "Unix style pathname pattern expansion",
    "graphlib": "Functionality to operate with graph-like structures",
    "grp": "The group database",
    "gzip": "Support for gzip files",
    "hashlib": "Secure hashes and message digests",
    "heapq": "Heap queue algorithm",
    "hmac": "Keyed-Hashing for Message Authentication",
    "html": "HyperText Markup Language support",
    "html.parser": "Simple HTML and XHTML parser",
    "http.client": "HTTP protocol client",
    "http.cookiejar": "Cookie handling for HTTP clients",
    "http.cookies": "HTTP state management",
    "http.server": "HTTP servers",
    "imaplib": "IMAP4 protocol client",
    "importlib": "The implementation of import",
    "importlib.metadata": "Accessing package metadata",
    "importlib.resources": "Package resource reading, opening and access",
    "inspect": "Inspect live objects",
    "io": "Core tools for working with streams",
    "ipaddress": "IPv4/IPv6 manipulation library",
    "itertools": "Functions creating iterators for efficient looping",
    "json": "JSON encoder and decoder",
    "keyword": "Testing for Python keywords",
    "linecache": "Random access to text lines",
    "locale": "Internationalization services",
    "logging": "Logging facility for Python",
    "logging.config": "Logging configuration",
    "logging.handlers": "Logging handlers",
    "lzma": "Compression using the LZMA algorithm",
    "math": "Mathematical functions",
    "mimetypes": "Map filenames to MIME types",
    "mmap": "Memory-mapped file support",
    "modulefinder": "Find modules used by a script",
    "multiprocessing": "Process-based parallelism",
    "multiprocessing.shared_memory": "Shared memory for direct access across processes",
    "numbers": "Numeric abstract base classes",
    "operator": "Standard operators as functions",
    "optparse": "Parser for command line options",
    "os": "Miscellaneous operating system interfaces",
    "os.path": "Common pathname manipulations",
    "pathlib": "Object-oriented filesystem paths",
    "pdb": "The Python Debugger",
    "pickle": "Python object serialization",
    "pickletools": "Tools for pickle developers",
    "pkgutil": "Package extension utility",
    "platform": "Access to underlying platform's identifying data",
    "plistlib": "Generate and parse Apple .plist files",
    "poplib": "POP3 protocol client",
    "pprint": "Data pretty printer",
    "pwd": "The password database",
    "py_compile": "Compile Python source files",
    "pyclbr": "Python module browser support",
    "pydoc": "Documentation generator and online help system",
    "queue": "A synchronized queue class",
    "quopri": "Encode and decode MIME quoted-printable data",
    "random": "Generate pseudo-random numbers",
    "re": "Regular expression operations",
    "readline": "GNU readline interface",
    "reprlib": "Alternate repr() implementation",
    "resource": "Resource usage information",
    "rlcompleter": "Completion function for GNU readline",
    "runpy": "Locating and executing Python modules",
    "sched": "Event scheduler",
    "secrets": "Generate secure random numbers for managing secrets",
    "select": "Waiting for I/O completion",
    "selectors": "High-level I/O multiplexing",
    "shelve": "Python object persistence",
    "shlex": "Simple lexical analysis",
    "shutil": "High-level file operations",
    "signal": "Set handlers for asynchronous events",
    "site": "Site-specific configuration hook",
    "smtplib": "SMTP protocol client",
    "socket": "Low-level networking interface",
    "socketserver": "A framework for network servers",
    "sqlite3": "DB-API 2.0 interface for SQLite databases",
    "ssl": "TLS/SSL wrapper for socket objects",
    "stat": "Interpreting stat() results",
    "statistics": "Mathematical statistics functions",
    "string": "Common string operations",
    "struct": "Interpret bytes as packed binary data",
    "subprocess": "Subprocess management",
    "symtable": "Access to the compiler's symbol tables",
    "sys": "System-specific parameters and functions",
    "sysconfig": "Provide access to Python's configuration information",
    "tabnanny": "Detection of ambiguous indentation",
    "tarfile": "Read and write tar archive files",
    "tempfile": "Generate temporary files and directories",
    "termios": "POSIX style tty control",
    "textwrap": "Text wrapping and filling",
    "threading": "Thread-based parallelism",
    "time": "Time access and conversions",
    "timeit": "Measure execution time of small code snippets",
    "tokenize": "Tokenizer for Python source",
    "tomllib": "Parse TOML files",
    "trace": "Trace or track Python statement execution",
    "traceback": "Print or retrieve a stack traceback",
    "tracemalloc": "Trace memory allocations",
    "types": "Dynamic type creation and names for built-in types",
    "typing": "Support for type hints",
    "unicodedata": "Unicode Database",
    "unittest": "Unit testing framework",
    "unittest.mock": "mock object library",
    "urllib.parse": "Parse URLs into components",
    "urllib.request": "Extensible library for opening URLs",
    "urllib.robotparser": "Parser for robots.txt",
    "uuid": "UUID objects according to RFC 4122",
    "venv": "Creation of virtual environments",
    "warnings": "Warning control",
    "wave": "Read and write WAV files",
    "weakref": "Weak references",
    "webbrowser": "Convenient web-browser controller",
    "xml.dom": "The Document Object Model API",
    "xml.dom.minidom": "Minimal DOM implementation",
    "xml.etree.ElementTree": "The ElementTree XML API",
    "xml.sax": "Support for SAX2 parsers",
    "xmlrpc.client": "XML-RPC client access",
    "xmlrpc.server": "Basic XML-RPC servers",
    "zipapp": "Manage executable Python zip archives",
    "zipfile": "Work with ZIP archives",
    "zipimport": "Import modules from Zip archives",
    "zlib": "Compression compatible with gzip",
    "zoneinfo": "IANA time zone support",
}

# Implementation modules whose objects a listed module re-exports as its own API.
OWNER_ALIASES: dict[str, str] = {
    "_blake2": "hashlib",
    "_elementtree": "xml.etree.ElementTree",
    "_thread": "threading",
    "_weakrefset": "weakref",
    "genericpath": "os.path",
    "posix": "os",
    "posixpath": "os.path",
}

OVERSTRIKE = re.compile(r".\x08")  # pydoc bold/underline: "X\bX", "_\bX"
UNDERLINE = re.compile(r"^([*=~^-])\1{2,}$")
BLANK_RUNS = re.compile(r"\n{3,}")


def tidy(text: str) -> str:
    """Remove overstrikes and control characters, dedent, drop trailing and repeated blanks."""
    text = OVERSTRIKE.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.expandtabs(8).replace("\f", "\n").replace("\xa0", " ")
    text = "".join(ch for ch in text if ch == "\n" or ch >= " ")
    lines = [line.rstrip() for line in inspect.cleandoc(text).split("\n")]
    return BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def drop_underlines(text: str) -> str:
    """Drop reST heading underlines (``*****`` under a heading) but keep the heading itself."""
    lines = text.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        prev = lines[i - 1].strip() if i else ""
        if UNDERLINE.match(line.strip()) and prev and len(line.strip()) == len(prev):
            continue
        kept.append(line)
    return "\n".join(kept)


def doc_record(
    doc_id: str, title: str, text: str, kind: str, module: str | None, source: str
) -> dict[str, Any]:
    return {
        "id": doc_id,
        "title": title,
        "text": text,
        "kind": kind,
        "module": module,
        "source": source,
    }


def topic_docs() -> Iterator[dict[str, Any]]:
    """Every Language Reference topic: the first line is the heading, the rest the text."""
    from pydoc_data.topics import topics

    for key in sorted(topics):
        heading, _, body = drop_underlines(tidy(topics[key])).partition("\n")
        text = tidy(body)
        title = heading.replace('"', "").strip()
        yield doc_record(f"topic:{key}", title, text, "topic", None, "pydoc_data.topics")


def owner_of(obj: object) -> str | None:
    """The module that defines ``obj``; C functions and bound methods may only say via __self__."""
    owner = getattr(obj, "__module__", None)
    if owner is None:
        bound = getattr(obj, "__self__", None)
        owner = bound.__name__ if isinstance(bound, ModuleType) else type(bound).__module__
    return owner if isinstance(owner, str) else None


def owns(module: str, obj: object) -> bool:
    """True if ``obj`` is ``module``'s own API rather than a re-export from another module."""
    owner = owner_of(obj)
    if owner is None:
        return False
    owner = OWNER_ALIASES.get(owner, owner)
    # C accelerators (_json, _heapq, _sqlite3, ...) and private submodules (asyncio.tasks,
    # unittest.case, sqlite3.dbapi2): the listed module is where users find them.
    base = owner.lstrip("_")
    return base == module or (base.startswith(module + ".") and base not in MODULES)


def signature(name: str, obj: object) -> str:
    """``name(params)`` if the interpreter knows a signature that prints the same every run."""
    try:
        sig = str(inspect.signature(obj))  # type: ignore[arg-type]
    except Exception:  # some C signatures name constants that exist only at run time
        return ""
    if "0x" in sig or "<" in sig:  # object reprs with addresses or environment details
        return ""
    return f"{name}{sig}"


def own_doc(obj: object) -> str:
    """The object's own docstring (never one inherited from a base class or from ``type``)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return tidy(doc) if isinstance(doc, str) else ""


def module_docs() -> Iterator[dict[str, Any]]:
    """Each listed module's docstring, then its public classes and functions."""
    for name in sorted(MODULES):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # optional C modules (curses, readline) may be missing
            print(f"skipped {name}: {exc}", file=sys.stderr)
            continue
        text = own_doc(module)
        if len(text) >= MIN_CHARS:
            title = f"{name} — {MODULES[name]}"
            yield doc_record(f"module:{name}", title, text, "module", name, "docstring")
        yield from member_docs(name, module)


def member_docs(name: str, module: ModuleType) -> Iterator[dict[str, Any]]:
    """Public classes and functions defined by the module, and the public methods of its classes."""
    public = getattr(module, "__all__", None)
    for attr in sorted(vars(module)):
        if attr.startswith("_") or (public is not None and attr not in public):
            continue
        obj = getattr(module, attr)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)) or not owns(name, obj):
            continue
        qualname = f"{name}.{attr}"
        if inspect.isroutine(obj):
            doc = function_doc(attr, obj)
            if len(doc) >= MIN_CHARS:
                yield doc_record(
                    f"func:{qualname}", f"{qualname}()", doc, "function", name, "docstring"
                )
            continue
        doc = own_doc(obj)
        if len(doc) >= MIN_CHARS:
            yield doc_record(
                f"class:{qualname}", f"class {qualname}", doc, "class", name, "docstring"
            )
        for meth in sorted(vars(obj)):
            method = getattr(obj, meth, None)
            if meth.startswith("_") or not inspect.isroutine(method):
                continue
            doc = function_doc(meth, method)
            if len(doc) >= MIN_CHARS:
                title = f"{qualname}.{meth}()"
                yield doc_record(
                    f"func:{qualname}.{meth}", title, doc, "function", name, "docstring"
                )


def function_doc(name: str, func: object) -> str:
    """The docstring, led by the signature when the docstring does not already start with it."""
    doc = own_doc(func)
    if len(doc) < MIN_CHARS:
        return ""
    sig = signature(name, func)
    if sig and not doc.startswith(f"{name}("):
        return f"{sig}\n\n{doc}"
    return doc


def preference(doc: dict[str, Any]) -> tuple[int, int, str]:
    """Which of several documents with the same text to keep: the most specific, shortest id."""
    key = doc["id"].split(":", 1)[1]
    named = key.rsplit(".", 1)[-1].lower() in doc["title"].lower()
    return (0 if named else 1, len(doc["id"]), doc["id"])


def build() -> list[dict[str, Any]]:
    docs = [*topic_docs(), *module_docs()]
    best: dict[str, dict[str, Any]] = {}
    for doc in docs:
        seen = best.get(doc["text"])
        if seen is None or preference(doc) < preference(seen):
            best[doc["text"]] = doc
    return sorted(best.values(), key=lambda d: d["id"])


def main() -> None:
    docs = build()
    lines = [json.dumps(doc, ensure_ascii=False, sort_keys=False) for doc in docs]
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    if len(payload) > MAX_BYTES:
        raise SystemExit(f"corpus is {len(payload)} bytes, over the {MAX_BYTES} byte limit")
    OUT.write_bytes(payload)
    kinds: dict[str, int] = {}
    for doc in docs:
        kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
    print(f"wrote {len(docs)} documents, {len(payload)} bytes to {OUT}")
    print(f"kinds: {dict(sorted(kinds.items()))}")
    print(f"python {sys.version}")


if __name__ == "__main__":
    main()
