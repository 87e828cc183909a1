"""Import-heavy start-up: about 150 standard-library modules, each imported once."""
import importlib

MODULES = """
abc argparse array ast asyncio base64 bdb binascii bisect bz2 calendar cmath cmd code codecs
codeop collections collections.abc colorsys compileall concurrent.futures configparser contextlib
contextvars copy copyreg csv ctypes dataclasses datetime decimal difflib dis doctest email
email.mime.text email.parser email.policy encodings.idna enum errno filecmp fileinput fnmatch
fractions ftplib functools gc getopt getpass gettext glob graphlib gzip hashlib heapq hmac html
html.parser http http.client http.cookiejar http.cookies http.server imaplib importlib.abc
importlib.machinery importlib.metadata importlib.resources importlib.util inspect io ipaddress
itertools json json.decoder json.encoder keyword linecache locale logging logging.config
logging.handlers lzma mailbox marshal math mimetypes mmap modulefinder multiprocessing
multiprocessing.pool netrc numbers opcode operator optparse os pathlib pdb pickle pickletools
pkgutil platform plistlib poplib pprint profile pstats pty py_compile pyclbr pydoc_data queue
quopri random re reprlib rlcompleter runpy sched secrets selectors shelve shlex shutil signal
site smtplib socket socketserver sqlite3 ssl stat statistics string stringprep struct
subprocess symtable sysconfig tabnanny tarfile tempfile textwrap threading timeit token tokenize
trace traceback tracemalloc types typing unicodedata unittest unittest.mock urllib.parse
urllib.request uuid warnings wave weakref webbrowser xml.dom.minidom xml.etree.ElementTree
xml.sax zipfile zipimport zlib zoneinfo
""".split()

loaded = 0
for name in MODULES:
    try:
        importlib.import_module(name)
        loaded += 1
    except ImportError:
        pass    # a module this build lacks (sqlite3, ssl...): the others still count
if loaded < 140:
    raise SystemExit("only %d of %d modules imported" % (loaded, len(MODULES)))
