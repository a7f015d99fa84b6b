#!/usr/bin/env python3
"""What this device can run, and the few file operations edgelab does on it. Standard library only.

    python3 device_info.py                 # facts about this device as JSON (what `edgelab device doctor` reads)
    python3 device_info.py '{"action": "info", "path": "edgelab"}'

edgelab sends this file over ssh (to the interpreter's stdin) before anything is copied, so it must
run on any Python 3.6+ with nothing installed. Runtimes and the Edge TPU delegate are tried in child
processes: a runtime built for another numpy, or a delegate that crashes, cannot take this script down.

Actions (a JSON request as the one argument):
  info      Python, runtimes (with versions and why one does not import), numpy, Pillow, CPU, memory,
            free disk at "path", libedgetpu and its delegate, USB/PCIe Edge TPUs, temperature, throttling.
  hashes    sha256 of "files" (relative to "root"), of staged copies in "root"/.incoming/, the record of
            what edgelab wrote ("root"/.edgelab-files.json) and the free disk.
  commit    move staged copies into place after checking each hash; write the record.
  remove    delete a folder edgelab made (it must hold .edgelab-files.json).
  install   deploy: move a staged version folder into "versions/" and switch the "current" link atomically.
  rollback  deploy: switch "current" back to the previous version.
"""

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys

RECORD = ".edgelab-files.json"
INCOMING = ".incoming"
DELEGATE_LIBRARIES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
# USB ids of the Coral USB Accelerator: before its firmware is loaded (Global Unichip) and after (Google).
EDGETPU_USB_IDS = {("1a6e", "089a"), ("18d1", "9302")}
RUNTIME_MODULES = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
    "pycoral": "pycoral.utils.edgetpu",
    "tensorflow": "tensorflow",
}
CHILD_TIMEOUT_S = 60
# What a runtime built against numpy 1 says under numpy 2 (tflite-runtime 2.14, its last release).
NUMPY_ABI_MARKERS = ("_ARRAY_API", "compiled using NumPy 1.x", "multiarray failed to import")
# A 948-byte model computing y = 2x + 1 on float32[1, 4] (tf.lite.TFLiteConverter on one tf.function): running it
# shows whether a runtime works with this numpy, not just whether it imports.
TINY_MODEL_B64 = (
    "HAAAAFRGTDMUACAAHAAYABQAEAAMAAAACAAEABQAAAAcAAAAHAAAAHQAAABUAQAAZAEAAFQDAAADAAAAAAAAAAIAAAA0AAAABAAA"
    "ANz///8HAAAABAAAABMAAABDT05WRVJTSU9OX01FVEFEQVRBAAgADAAIAAQACAAAAAYAAAAEAAAAEwAAAG1pbl9ydW50aW1lX3Zl"
    "cnNpb24ACAAAANwAAADUAAAAwAAAAKQAAACcAAAAlAAAAHQAAAAEAAAAXv///wQAAABgAAAAEAAAAAAAAAAIAA4ACAAEAAgAAAAQ"
    "AAAAJAAAAAAABgAIAAQABgAAAAQAAAAAAAAADAAYABQAEAAMAAQADAAAADdlf7AXNt3tAwAAAAIAAAAEAAAABgAAADIuMjEuMAAA"
    "yv///wQAAAAQAAAAMS41LjAAAAAAAAAAAAAAALT9//+4/f//7v///wQAAAAEAAAAAAAAQAAABgAIAAQABgAAAAQAAAAEAAAAAACA"
    "P+T9///o/f//DwAAAE1MSVIgQ29udmVydGVkLgABAAAAFAAAAAAADgAYABQAEAAMAAgABAAOAAAAFAAAABwAAACgAAAApAAAAKgA"
    "AAAEAAAAbWFpbgAAAAACAAAAWAAAABQAAAAAAA4AGAAUABAADAALAAQADgAAABQAAAAAAAALEAAAABQAAAABAAAAcP7//wEAAAAE"
    "AAAAAgAAAAMAAAABAAAAAAAOABQAAAAQAAwACwAEAA4AAAAQAAAAAAAAFQwAAAAQAAAArP7//wEAAAADAAAAAgAAAAAAAAACAAAA"
    "AQAAAAQAAAABAAAAAAAAAAUAAADsAAAApAAAAHQAAABAAAAABAAAAD7///8AAAABEAAAABAAAAAFAAAAGAAAAAT///8IAAAASWRl"
    "bnRpdHkAAAAAAgAAAAEAAAAEAAAAdv///wAAAAEQAAAAEAAAAAQAAAAQAAAAPP///wMAAABtdWwAAgAAAAEAAAAEAAAApv///wAA"
    "AAEQAAAAEAAAAAMAAAAUAAAAbP///wUAAABtdWwveQAAAAAAAADS////AAAAARAAAAAQAAAAAgAAABQAAACY////BQAAAGFkZC95"
    "AAAAAAAAAAAAFgAYABQAAAAQAAwACAAAAAAAAAAHABYAAAAAAAABEAAAABAAAAABAAAAEAAAANz///8BAAAAeAAAAAIAAAABAAAA"
    "BAAAAAIAAAAcAAAACAAAAAQABAAEAAAADAAMAAsAAAAAAAQADAAAABIAAAAAAAAS"
)

# Runs in a child interpreter: import one runtime, run the tiny model, report the version or the error.
_RUNTIME_PROBE = r"""
import base64, json, sys, traceback, warnings
warnings.simplefilter("ignore")
name, module, model = sys.argv[1], sys.argv[2], base64.b64decode(sys.argv[3])
out = {"ok": False, "imported": False}
try:
    __import__(module)
    out["imported"] = True
    top = sys.modules[name]
    version = getattr(top, "__version__", None)
    if version is None:
        try:
            from importlib import metadata
            version = metadata.version(name.replace("_", "-"))
        except Exception:
            version = None
    out["version"] = version
    if name in ("tflite_runtime", "ai_edge_litert"):
        import numpy as np
        interpreter = sys.modules[module].Interpreter(model_content=model)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.arange(4, dtype=np.float32)[np.newaxis])
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).ravel().tolist()
        if got != [1.0, 3.0, 5.0, 7.0]:
            raise RuntimeError("a test model computed {} instead of [1, 3, 5, 7]".format(got))
    out["ok"] = True
except BaseException as exc:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    causes, seen = [], exc
    while seen is not None:
        lines = [l for l in str(seen).splitlines() if l.strip()]
        causes.append("{}: {}".format(type(seen).__name__, lines[0] if lines else ""))
        seen = seen.__cause__ or seen.__context__
    out["error"] = causes[-1] if len(causes) > 1 else causes[0]
    out["numpy_abi"] = any(m in text for m in ("_ARRAY_API", "compiled using NumPy 1.x", "multiarray failed to import"))
sys.stdout.write(json.dumps(out))
"""

# Runs in a child interpreter: load libedgetpu, then its delegate through one runtime.
_DELEGATE_PROBE = r"""
import ctypes, json, sys
library, runtime = sys.argv[1], sys.argv[2]
out = {"library": False, "delegate": False}
try:
    ctypes.CDLL(library)
    out["library"] = True
    if runtime == "tflite_runtime":
        from tflite_runtime.interpreter import load_delegate
    elif runtime == "ai_edge_litert":
        from ai_edge_litert.interpreter import load_delegate
    else:
        load_delegate = None
    if load_delegate is not None:
        load_delegate(library)
        out["delegate"] = True
except BaseException as exc:
    lines = [l for l in str(exc).splitlines() if l.strip()]
    out["error"] = "{}: {}".format(type(exc).__name__, lines[0] if lines else "")
sys.stdout.write(json.dumps(out))
"""


def _start(code, *args):
    return subprocess.Popen([sys.executable, "-c", code] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _child(code, *args):
    """Run ``code`` in a child interpreter; its JSON output, or an error dict (crash, timeout)."""
    return _collect(_start(code, *args))


def _collect(proc):
    try:
        stdout, stderr = proc.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"ok": False, "error": "timed out after {} s".format(CHILD_TIMEOUT_S)}
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    err = done.stderr.decode("utf-8", "replace")
    try:
        out = json.loads(done.stdout.decode("utf-8", "replace"))
        if not out.get("ok") and any(m in err for m in NUMPY_ABI_MARKERS):
            out["numpy_abi"] = True  # numpy prints its own explanation to stderr
        return out
    except ValueError:
        if done.returncode < 0:
            return {"ok": False, "error": "crashed (signal {})".format(-done.returncode)}
        lines = [l for l in err.splitlines() if l.strip()]
        return {"ok": False, "error": lines[-1] if lines else "exit code {}".format(done.returncode),
                "numpy_abi": any(m in err for m in NUMPY_ABI_MARKERS)}


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except (OSError, ValueError):
        return None


def _version_of(module):
    try:
        top = __import__(module)
        return getattr(top, "__version__", None)
    except BaseException:
        return None


def cpu_model():
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def memory_bytes():
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def free_disk(path):
    """Free bytes for the user at ``path`` (or its nearest existing parent)."""
    path = os.path.abspath(os.path.expanduser(path or "."))
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def usb_edgetpus():
    found = []
    base = "/sys/bus/usb/devices"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return found
    for name in names:
        vendor = _read(os.path.join(base, name, "idVendor"))
        product = _read(os.path.join(base, name, "idProduct"))
        if (vendor, product) in EDGETPU_USB_IDS:
            speed = _read(os.path.join(base, name, "speed"))  # Mbit/s: 5000 is USB 3
            found.append({"bus": name, "id": "{}:{}".format(vendor, product), "speed_mbps": speed})
    return found


def pcie_edgetpus():
    try:
        return sorted("/dev/" + n for n in os.listdir("/dev") if n.startswith("apex_"))
    except OSError:
        return []


def temperatures():
    out = {}
    base = "/sys/class/thermal"
    try:
        zones = sorted(n for n in os.listdir(base) if n.startswith("thermal_zone"))
    except OSError:
        return out
    for zone in zones:
        raw = _read(os.path.join(base, zone, "temp"))
        kind = _read(os.path.join(base, zone, "type")) or zone
        try:
            out[kind] = int(raw) / 1000.0
        except (TypeError, ValueError):
            continue
    return out


def throttling():
    """What the OS says about throttling: Raspberry Pi firmware flags, CPU clock against its maximum."""
    out = {}
    vcgencmd = shutil.which("vcgencmd")
    if vcgencmd:
        try:
            done = subprocess.run([vcgencmd, "get_throttled"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=10)
            text = done.stdout.decode("ascii", "replace").strip()  # throttled=0x0
            if "=" in text:
                flags = int(text.split("=", 1)[1], 16)
                out["vcgencmd_throttled"] = hex(flags)
                out["throttled_now"] = bool(flags & 0x4)
                out["throttled_since_boot"] = bool(flags & 0x40000)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
    cur = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    top = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if cur and top:
        try:
            out["cpu_mhz"] = int(cur) / 1000.0
            out["cpu_max_mhz"] = int(top) / 1000.0
        except ValueError:
            pass
    return out


def info(request):
    started = {}
    for name, module in RUNTIME_MODULES.items():
        if name == "tensorflow" and not request.get("tensorflow", False):
            continue  # importing TensorFlow takes seconds; only asked for on this machine
        started[name] = _start(_RUNTIME_PROBE, name, module, "".join(TINY_MODEL_B64))  # side by side
    runtimes = {name: _collect(proc) for name, proc in started.items()}
    library = DELEGATE_LIBRARIES.get(platform.system())
    edgetpu = {"library": library, "usb": usb_edgetpus(), "pcie": pcie_edgetpus()}
    usable = [n for n in ("tflite_runtime", "ai_edge_litert") if runtimes.get(n, {}).get("ok")]
    if library:
        probe = _child(_DELEGATE_PROBE, library, usable[0] if usable else "none")
        edgetpu["library_loads"] = bool(probe.get("library"))
        edgetpu["delegate_loads"] = bool(probe.get("delegate"))
        edgetpu["delegate_runtime"] = usable[0] if usable else None
        edgetpu["error"] = probe.get("error")
    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "os": _os_name(),
        "runtimes": runtimes,
        "numpy": _version_of("numpy"),
        "pillow": _version_of("PIL"),
        "edgetpu": edgetpu,
        "temperature_c": temperatures(),
        "throttling": throttling(),
        "path": request.get("path"),
        "free_bytes": free_disk(request.get("path") or "."),
    }


def _os_name():
    text = _read("/etc/os-release") or ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_or_none(path):
    try:
        return sha256(path) if os.path.isfile(path) else None
    except OSError:
        return None


def _load_record(root):
    try:
        with open(os.path.join(root, RECORD)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _write_json(path, payload):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def hashes(request):
    root = request["root"]
    files = request.get("files", {})  # relative path -> wanted sha256
    staged_dir = os.path.join(root, INCOMING)
    return {
        "exists": os.path.isdir(root),
        "files": {rel: _hash_or_none(os.path.join(root, rel)) for rel in files},
        # staged copies are named by their content hash: a complete one is reused after an interruption
        "staged": {d: True for d in set(files.values()) if _hash_or_none(os.path.join(staged_dir, d)) == d},
        "record": _load_record(root),
        "free_bytes": free_disk(root),
    }


def commit(request):
    """Move staged copies (named by hash) to their paths; every hash checked first, so all or nothing moves."""
    root = request["root"]
    files = request["files"]  # relative path -> sha256
    staged_dir = os.path.join(root, INCOMING)
    moves = []
    for rel, digest in sorted(files.items()):
        target = os.path.join(root, rel)
        if _hash_or_none(target) == digest:
            continue
        source = os.path.join(staged_dir, digest)
        got = _hash_or_none(source)
        if got != digest:
            return {"ok": False, "error": "the copy of {} arrived damaged or incomplete".format(rel)}
        moves.append((source, target, digest))
    # several paths may share one staged copy: copy it for all but the last, then move
    last_use = {}
    for source, target, digest in moves:
        last_use[digest] = target
    for source, target, digest in moves:
        folder = os.path.dirname(target)
        if folder and not os.path.isdir(folder):
            os.makedirs(folder)
        if last_use[digest] == target:
            os.replace(source, target)
        else:
            tmp = target + ".tmp"
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
    for rel in request.get("executable", []):
        try:
            os.chmod(os.path.join(root, rel), 0o755)
        except OSError:
            pass
    removed = []
    for rel in request.get("remove", []):  # files of an earlier copy that are not wanted any more
        path = os.path.join(root, rel)
        if os.path.isfile(path) and rel not in files:
            os.remove(path)
            removed.append(rel)
    record = {"files": dict(files)}
    _write_json(os.path.join(root, RECORD), record)
    shutil.rmtree(staged_dir, ignore_errors=True)
    return {"ok": True, "moved": len(moves), "removed": removed}


def remove(request):
    root = request["root"]
    if not os.path.isdir(root):
        return {"ok": True, "removed": False}
    if not os.path.isfile(os.path.join(root, RECORD)) and not os.path.isdir(os.path.join(root, INCOMING)):
        return {"ok": False, "error": "{} was not made by edgelab (no {}); left as it is".format(root, RECORD)}
    shutil.rmtree(root)
    return {"ok": True, "removed": True}


def _link_target(link):
    try:
        return os.readlink(link)
    except OSError:
        return None


def _switch(app, name, target):
    """Point the link app/name at target (relative) in one rename: it always names one version."""
    tmp = os.path.join(app, "{}.new-{}".format(name, os.getpid()))
    if os.path.lexists(tmp):
        os.remove(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, os.path.join(app, name))


def _clean_links(app):
    for entry in os.listdir(app):
        if ".new-" in entry and os.path.islink(os.path.join(app, entry)):
            os.remove(os.path.join(app, entry))  # a link left by a switch that was killed before its rename


def install(request):
    """Install the staged, smoke-tested version folder and make it current; the old one becomes previous."""
    app, version, staged = request["app"], request["version"], request["staged"]
    versions = os.path.join(app, "versions")
    if not os.path.isdir(versions):
        os.makedirs(versions)
    _clean_links(app)
    final = os.path.join(versions, version)
    if not os.path.isdir(final):
        os.replace(staged, final)
    elif os.path.isdir(staged) and os.path.abspath(staged) != os.path.abspath(final):
        shutil.rmtree(staged)
    old = _link_target(os.path.join(app, "current"))
    new = os.path.join("versions", version)
    if old == new:
        return {"ok": True, "current": version, "previous": _version(_link_target(os.path.join(app, "previous"))),
                "changed": False}
    if old is not None:
        _switch(app, "previous", old)
    _switch(app, "current", new)
    return {"ok": True, "current": version, "previous": _version(old), "changed": True}


def _version(link):
    return os.path.basename(link) if link else None


def rollback(request):
    app = request["app"]
    _clean_links(app)
    cur, prev = _link_target(os.path.join(app, "current")), _link_target(os.path.join(app, "previous"))
    if prev is None or not os.path.isdir(os.path.join(app, prev)):
        return {"ok": False, "error": "no previous version to roll back to in {}".format(app)}
    _switch(app, "current", prev)
    if cur is not None:
        _switch(app, "previous", cur)
    return {"ok": True, "current": _version(prev), "previous": _version(cur), "changed": True}


def status(request):
    app = request["app"]
    versions = os.path.join(app, "versions")
    try:
        names = sorted(n for n in os.listdir(versions) if not n.startswith("."))
    except OSError:
        names = []
    try:
        links = sorted(n for n in os.listdir(app) if os.path.islink(os.path.join(app, n)))
    except OSError:
        links = []
    return {
        "ok": True,
        "current": _version(_link_target(os.path.join(app, "current"))),
        "previous": _version(_link_target(os.path.join(app, "previous"))),
        "versions": names,
        "links": links,
    }


ACTIONS = {"info": info, "hashes": hashes, "commit": commit, "remove": remove, "install": install,
           "rollback": rollback, "status": status}


def main(request=None):
    if request is None:
        request = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {"action": "info"}
    action = ACTIONS.get(request.get("action", "info"))
    if action is None:
        out = {"ok": False, "error": "unknown action {!r}".format(request.get("action"))}
    else:
        try:
            out = action(request)
        except OSError as exc:
            out = {"ok": False, "error": "{}{}".format(exc.strerror or exc, " ({})".format(exc.filename)
                                                     if exc.filename else ""), "errno": exc.errno}
    sys.stdout.write("EDGELAB-RESULT " + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
