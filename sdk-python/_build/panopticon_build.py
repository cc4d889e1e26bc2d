"""A PEP 517 / PEP 660 build backend in the standard library only.

Why not setuptools: ``pip install ./sdk-python`` must work offline, in a fresh virtual environment
holding nothing but pip. Python 3.12+ venvs have no setuptools, the setuptools bundled with 3.9-3.11
venvs cannot build a wheel without the ``wheel`` package (and 3.9's predates PEP 621), and pip's
build isolation would download them. This backend needs nothing (``requires = []``), so pip builds
offline with or without isolation. It builds a pure-Python wheel of ``src/panopticon`` from the
PEP 621 ``[project]`` table, an sdist, and an editable wheel (a ``.pth`` file naming ``src``).
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "panopticon"


# --- pyproject.toml ---------------------------------------------------------------------------------

def _parse_toml_subset(text):
    """The TOML this project's pyproject.toml uses, for Pythons without tomllib (< 3.11): tables,
    dotted-free keys, basic strings, arrays of strings (over several lines), inline tables of
    strings, integers and booleans. Anything else raises ValueError."""
    data = {}
    table = data
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if pending:
            pending += " " + line
            if not _balanced(pending):
                continue
            line, pending = pending, ""
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^\[([A-Za-z0-9_.-]+)\]$", line)
        if m:
            table = data
            for part in m.group(1).split("."):
                table = table.setdefault(part, {})
            continue
        if not _balanced(line):
            pending = line
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError("unsupported TOML line: %r" % raw)
        table[key.strip().strip('"')] = _value(value.strip())
    return data


def _balanced(text):
    depth = 0
    in_str = False
    escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "#":
            break
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth == 0


def _value(text):
    text = _strip_comment(text).strip()
    if text.startswith('"'):
        import json

        return json.loads(text)
    if text in ("true", "false"):
        return text == "true"
    if re.match(r"^-?\d+$", text):
        return int(text)
    if text.startswith("["):
        inner = text[1:-1].strip()
        return [_value(v) for v in _split(inner)]
    if text.startswith("{"):
        inner = text[1:-1].strip()
        out = {}
        for item in _split(inner):
            k, _, v = item.partition("=")
            out[k.strip()] = _value(v)
        return out
    raise ValueError("unsupported TOML value: %r" % text)


def _strip_comment(text):
    in_str = False
    escaped = False
    for i, ch in enumerate(text):
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "#":
            return text[:i]
    return text


def _split(text):
    parts, depth, cur, in_str, escaped = [], 0, "", False, False
    for ch in text:
        if in_str:
            cur += ch
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            if cur.strip():
                parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def load_pyproject(root=ROOT):
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        raw = f.read()
    try:
        import tomllib
    except ImportError:
        return _parse_toml_subset(raw.decode("utf-8"))
    return tomllib.loads(raw.decode("utf-8"))


# --- metadata ---------------------------------------------------------------------------------------

def _project(root=ROOT):
    project = load_pyproject(root)["project"]
    for field in ("name", "version"):
        if not isinstance(project.get(field), str):
            raise ValueError("pyproject.toml [project] needs a %s" % field)
    if project.get("dependencies"):
        raise ValueError("panopticon-sdk has no runtime dependencies; this backend does not write Requires-Dist")
    return project


def _dist_name(project):
    return re.sub(r"[-_.]+", "_", project["name"]).lower()


def _metadata(project, root=ROOT):
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % project["name"],
        "Version: %s" % project["version"],
    ]
    if project.get("description"):
        lines.append("Summary: %s" % project["description"])
    if project.get("requires-python"):
        lines.append("Requires-Python: %s" % project["requires-python"])
    lic = project.get("license")
    if isinstance(lic, dict) and lic.get("text"):
        lines.append("License: %s" % lic["text"])
    if project.get("keywords"):
        lines.append("Keywords: %s" % ",".join(project["keywords"]))
    for classifier in project.get("classifiers", []):
        lines.append("Classifier: %s" % classifier)
    for label, url in sorted(project.get("urls", {}).items()):
        lines.append("Project-URL: %s, %s" % (label, url))
    body = ""
    readme = project.get("readme")
    if isinstance(readme, str):
        with open(os.path.join(root, readme), encoding="utf-8") as f:
            body = f.read()
        lines.append("Description-Content-Type: text/markdown" if readme.endswith(".md") else "Description-Content-Type: text/plain")
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def _wheel_file():
    return b"Wheel-Version: 1.0\nGenerator: panopticon_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _dist_info_files(project, root=ROOT):
    return {
        "METADATA": _metadata(project, root),
        "WHEEL": _wheel_file(),
        "top_level.txt": (PACKAGE + "\n").encode(),
    }


def _package_files(root=ROOT):
    src = os.path.join(root, "src", PACKAGE)
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".py", ".typed")):
                full = os.path.join(dirpath, name)
                out.append((os.path.relpath(full, os.path.join(root, "src")).replace(os.sep, "/"), full))
    return out


def _epoch():
    return int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01, the zip format's floor


def _write_wheel(wheel_directory, files):
    project = _project()
    dist = _dist_name(project)
    info = "%s-%s.dist-info" % (dist, project["version"])
    filename = "%s-%s-py3-none-any.whl" % (dist, project["version"])
    entries = list(files)
    for name, data in _dist_info_files(project).items():
        entries.append(("%s/%s" % (info, name), data))
    record = []
    stamp = time.gmtime(max(_epoch(), 315532800))[:6]
    path = os.path.join(wheel_directory, filename)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in entries:
            zi = zipfile.ZipInfo(arcname, date_time=stamp)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append("%s,sha256=%s,%d" % (arcname, digest, len(data)))
        record.append("%s/RECORD,," % info)
        zi = zipfile.ZipInfo("%s/RECORD" % info, date_time=stamp)
        zi.external_attr = 0o644 << 16
        zf.writestr(zi, ("\n".join(record) + "\n").encode())
    return filename


# --- PEP 517 hooks ----------------------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    project = _project()
    info = "%s-%s.dist-info" % (_dist_name(project), project["version"])
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    for name, data in _dist_info_files(project).items():
        with open(os.path.join(metadata_directory, info, name), "wb") as f:
            f.write(data)
    return info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = []
    for arcname, full in _package_files():
        with open(full, "rb") as f:
            files.append((arcname, f.read()))
    return _write_wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    src = os.path.join(ROOT, "src")
    return _write_wheel(wheel_directory, [("_panopticon_sdk_editable.pth", (src + "\n").encode("utf-8"))])


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    base = "%s-%s" % (_dist_name(project), project["version"])
    filename = base + ".tar.gz"
    members = ["pyproject.toml", "README.md", os.path.join("_build", "panopticon_build.py")]
    members += [os.path.relpath(full, ROOT) for _, full in _package_files()]
    members += ["PKG-INFO"]
    path = os.path.join(sdist_directory, filename)
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel in members:
            data = _metadata(project) if rel == "PKG-INFO" else open(os.path.join(ROOT, rel), "rb").read()
            ti = tarfile.TarInfo("%s/%s" % (base, rel.replace(os.sep, "/")))
            ti.size = len(data)
            ti.mtime = _epoch()
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))
    return filename
