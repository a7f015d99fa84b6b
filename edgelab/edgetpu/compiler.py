"""Run the real Edge TPU Compiler (``edgetpu_compiler``) when it is installed, and parse its verdict.

The compiler is closed source, x86-64 Debian/Ubuntu only, and frozen at version 16 (2021). When it
is missing, :func:`compile_edgetpu` raises :class:`CompilerNotFoundError` with install instructions, or
returns a result with status ``"not_installed"`` (``missing="status"``), so notebooks and CI print
the same text with or without it. TensorFlow-free.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._config import Options, check_bool, set_field
from .._log import logger
from ..errors import CompilerNotFoundError, ConfigError, check_int, check_number
from ..records import Record, rounded
from ..tflite.delegate import coral_apt_commands
from ..tflite.reader import load_model_bytes
from .logs import CompilerReport, FailureKind, merge_reports, parse_compiler_output
from .mapping import CompileStatus, EdgeTPUMapping, Source

#: Seconds the wrapper waits beyond ``timeout`` before killing the compiler (v16 stops itself at
#: ``--timeout_sec`` and prints why; the grace period lets that message arrive).
KILL_GRACE_SECONDS = 5.0

COLAB_COMPILER_URL = (
    "https://colab.research.google.com/github/google-coral/tutorials/blob/master/compile_for_edgetpu.ipynb"
)


_APT_COMMANDS = coral_apt_commands("edgetpu-compiler")

_ELSEWHERE = f"""\
  - Coral's Colab notebook "Compile a model for the Edge TPU" (upload the .tflite, run the cells):
    {COLAB_COMPILER_URL}
  - an x86-64 Debian container (on Apple Silicon/ARM add --platform linux/amd64; it runs emulated):
    docker run --rm -it --platform linux/amd64 -v "$PWD":/work -w /work debian:bookworm-slim bash
    then, inside: apt-get update && apt-get install -y curl gnupg ca-certificates, then the apt
    commands for Coral's repository (without sudo), and finally: edgetpu_compiler model.tflite"""

_VERSION = re.compile(r"Edge TPU Compiler version\s+(\S+)")


def install_instructions(system: str | None = None, machine: str | None = None) -> str:
    """How to get ``edgetpu_compiler`` on this kind of machine (x86-64 Debian/Ubuntu only).

    Args:
        system: ``platform.system()`` value to write for (default: this machine).
        machine: ``platform.machine()`` value to write for (default: this machine).
    """
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    x86_linux = system == "Linux" and machine in ("x86_64", "amd64")
    head = (
        "edgetpu_compiler was not found on PATH. The Edge TPU Compiler runs only on x86-64\n"
        "Debian 6.0+/Ubuntu 10.0+ (no ARM builds since version 2.1, none for macOS or Windows)."
    )
    if x86_linux:
        return (
            f"{head}\nOn this x86-64 Linux machine, install it from Coral's apt repository:\n"
            f"{_APT_COMMANDS}\nNot Debian/Ubuntu? Use instead:\n{_ELSEWHERE}"
        )
    return (
        f"{head}\nThis machine is {system} {machine}, so use:\n{_ELSEWHERE}\n"
        f"On an x86-64 Debian/Ubuntu machine, install it from Coral's apt repository:\n{_APT_COMMANDS}"
    )


def find_compiler(compiler: str | os.PathLike = "edgetpu_compiler") -> Path | None:
    """The compiler's path (a name looked up on PATH, or an explicit path), or None when absent."""
    found = shutil.which(str(compiler))
    return Path(found) if found else None


def compiler_version(compiler: str | os.PathLike = "edgetpu_compiler") -> str | None:
    """The version ``edgetpu_compiler -v`` reports (e.g. ``'16.0.384591198'``), None when absent."""
    path = find_compiler(compiler)
    if path is None:
        return None
    try:
        proc = subprocess.run([str(path), "-v"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("Could not run %s -v: %s", path, exc)
        return None
    match = _VERSION.search(proc.stdout + "\n" + proc.stderr)
    return match.group(1) if match else None


def _major(version: str | None) -> int | None:
    try:
        return int(version.split(".")[0]) if version else None
    except ValueError:
        return None


@dataclass(frozen=True)
class CompileResult(Record):
    """The outcome of one compiler run.

    ``status`` is a :class:`CompileStatus`: ``compiled`` (every op on the Edge TPU), ``partial``
    (compiled, some ops on the CPU), ``failed``, ``timeout`` or ``not_installed``; ``reason`` says
    why when not compiled.
    """

    #: The keys of ``to_dict`` (paths as strings, the report under ``report``; no stdout/stderr).
    RECORD_KEYS = (
        "status",
        "reason",
        "model",
        "compiled_model",
        "log_path",
        "output_paths",
        "compiler_version",
        "command",
        "returncode",
        "duration_s",
        "report",
    )

    status: CompileStatus
    model: Path
    compiled_model: Path | None = None
    log_path: Path | None = None
    output_paths: tuple[Path, ...] = ()
    report: CompilerReport | None = None
    compiler_version: str | None = None
    reason: str | None = None
    command: tuple[str, ...] = ()
    returncode: int | None = None
    duration_s: float | None = field(default=None, metadata=rounded(3))
    stdout: str = field(default="", repr=False)
    stderr: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        """True when a compiled model was written (status ``compiled`` or ``partial``)."""
        return self.status in (CompileStatus.COMPILED, CompileStatus.PARTIAL)

    @property
    def mapping(self) -> EdgeTPUMapping:
        """The compiler's counts and memory as the shared :class:`EdgeTPUMapping` (source: compiler)."""
        r = self.report or CompilerReport()
        return EdgeTPUMapping(
            source=Source.COMPILER,
            status=self.status,
            ops_edgetpu=r.ops_edgetpu,
            ops_cpu=r.ops_cpu,
            ops_total=r.ops_total,
            subgraphs=r.subgraphs,
            on_chip_bytes=r.on_chip_used_bytes,
            off_chip_bytes=r.off_chip_used_bytes,
            compiler_version=self.compiler_version,
        )

    def __repr__(self) -> str:
        report = self.report
        ops = (
            f"{report.ops_edgetpu}/{report.ops_total} ops on Edge TPU"
            if report and report.ops_total is not None
            else "ops unknown"
        )
        compiled = self.compiled_model.name if self.compiled_model else None
        return (
            f"CompileResult(status={self.status.value!r}, model={self.model.name!r}, "
            f"compiled_model={compiled!r}, {ops}, compiler_version={self.compiler_version!r}, "
            f"reason={self.reason!r})"
        )


def _build_command(path: Path, version: str | None, model: Path, out_dir: Path, opts: CompileOptions) -> list[str]:
    cmd = [str(path), "--out_dir", str(out_dir)]
    if opts.show_operations:
        cmd.append("--show_operations")
    if opts.min_runtime_version is not None:
        cmd += ["--min_runtime_version", str(opts.min_runtime_version)]
    if opts.enable_multiple_subgraphs:
        cmd.append("--enable_multiple_subgraphs")
    if opts.search_delegate:
        cmd.append("--search_delegate")
    if opts.delegate_search_step is not None:
        cmd += ["--delegate_search_step", str(opts.delegate_search_step)]
    if opts.num_segments is not None:
        cmd += ["--num_segments", str(opts.num_segments)]
    major = _major(version)
    if major is not None and major >= 16:
        # v16 has its own 180 s default timer; make it agree with ours.
        cmd += ["--timeout_sec", str(max(1, math.ceil(opts.timeout_s)))]
    cmd.append(str(model))
    return cmd


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _run(cmd: list[str], cwd: Path, kill_after: float) -> tuple[int | None, str, str, bool]:
    """Run the compiler; on timeout kill its whole process group (v16 forks a child)."""
    popen_kwargs: dict[str, Any] = {}
    if os.name == "posix":
        popen_kwargs["start_new_session"] = True
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        **popen_kwargs,
    )
    try:
        out, err = proc.communicate(timeout=kill_after)
        return proc.returncode, out, err, False
    except subprocess.TimeoutExpired:
        if os.name == "posix":
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows has no compiler build anyway
            proc.kill()
        out, err = proc.communicate()
        return None, out or "", err or "", True


def _cpu_reason(report: CompilerReport) -> str:
    statuses = sorted({f"{r.op}: {r.status}" for r in report.operators if not r.mapped})
    detail = f" ({'; '.join(statuses[:4])}{'; ...' if len(statuses) > 4 else ''})" if statuses else ""
    return f"{report.ops_cpu} of {report.ops_total} ops run on the CPU{detail}"


@dataclass(frozen=True)
class CompileOptions(Options):
    """The ``edgetpu_compiler`` flags :func:`compile_edgetpu` passes; checked once, when made.

    Args:
        min_runtime_version: Oldest Edge TPU runtime the output must run on (``-m``, 10-14;
            compiler 16 defaults to 14, use 13 for libedgetpu older than 16.0).
        search_delegate: Retry with earlier stop points when compilation fails (``-d``, v16).
        delegate_search_step: Ops to step back per retry (``-k``, needs ``search_delegate``).
        num_segments: Split into this many segments for pipelining (``-n``).
        timeout_s: Seconds before the compiler is stopped (status ``timeout``).
        enable_multiple_subgraphs: The experimental ``-a`` flag (ops after a CPU op may map again).
        show_operations: Pass ``-s`` so stdout carries the operator table too.
    """

    min_runtime_version: int | None = None
    search_delegate: bool = False
    delegate_search_step: int | None = None
    num_segments: int | None = None
    timeout_s: float = 180.0
    enable_multiple_subgraphs: bool = False
    show_operations: bool = True

    def __post_init__(self) -> None:
        set_field(
            self, "timeout_s", check_number("timeout_s", self.timeout_s, minimum=0, min_open=True, unit="seconds")
        )
        # libedgetpu: kMinValidRuntimeVersion = 10, kCurrent = 14 (the last release).
        set_field(
            self,
            "min_runtime_version",
            check_int("min_runtime_version", self.min_runtime_version, minimum=10, maximum=14, allow_none=True),
        )
        for name in ("search_delegate", "enable_multiple_subgraphs", "show_operations"):
            set_field(self, name, check_bool(name, getattr(self, name)))
        step = check_int("delegate_search_step", self.delegate_search_step, allow_none=True)
        if step is not None and not self.search_delegate:
            raise ConfigError(
                "Expected search_delegate=True with delegate_search_step (it sets the step of that "
                f"search). Received: search_delegate={self.search_delegate!r}, delegate_search_step={step!r}"
            )
        set_field(self, "delegate_search_step", step)
        set_field(self, "num_segments", check_int("num_segments", self.num_segments, allow_none=True))


def compile_edgetpu(
    model: str | os.PathLike,
    *,
    out_dir: str | os.PathLike | None = None,
    config: CompileOptions | None = None,
    compiler: str | os.PathLike = "edgetpu_compiler",
    missing: Literal["raise", "status"] = "raise",
    **options: Any,
) -> CompileResult:
    """Compile a fully int8 ``.tflite`` for the Edge TPU with the real ``edgetpu_compiler``.

    Args:
        model: the quantized ``.tflite`` file.
        out_dir: where ``<name>_edgetpu.tflite`` and ``<name>_edgetpu.log`` go (``-o``); default:
            the model's own folder. Created if missing.
        config: the compiler's flags and time limit, a :class:`CompileOptions`; default: ``CompileOptions()``.
        compiler: the compiler's name on PATH or its path.
        missing: ``"raise"`` (CompilerNotFoundError) or ``"status"`` (status ``not_installed``)
            when the compiler is not installed.
        **options: fields of :class:`CompileOptions` (``timeout_s=60``, ``num_segments=2``, ...),
            replacing the config's.

    Returns:
        A CompileResult with status, output paths and the parsed CompilerReport.

    Raises:
        ModelFileError: the model is missing, unreadable or not a TFLite file.
        ConfigError: an option has an invalid value.
        CompilerNotFoundError: the compiler is missing and ``missing="raise"``.
    """
    if missing not in ("raise", "status"):
        raise ConfigError(f"Expected missing to be 'raise' or 'status'. Received: missing={missing!r}")
    opts = CompileOptions.resolve(config, options)
    search_delegate, delegate_search_step, num_segments = (
        opts.search_delegate,
        opts.delegate_search_step,
        opts.num_segments,
    )
    timeout = opts.timeout_s

    model_path = Path(model).expanduser()
    load_model_bytes(model_path, purpose="to compile")
    model_path = model_path.resolve()
    out = Path(out_dir).expanduser().resolve() if out_dir is not None else model_path.parent
    if out.exists() and not out.is_dir():
        raise ConfigError(f"Expected out_dir to be a folder. Received a file: out_dir={str(out)!r}")

    path = find_compiler(compiler)
    if path is None:
        text = install_instructions()
        if str(compiler) != "edgetpu_compiler":
            text = text.replace("edgetpu_compiler was not found on PATH", f"{str(compiler)!r} was not found")
        if missing == "raise":
            raise CompilerNotFoundError(text)
        logger.info("Edge TPU compiler not installed; %s not compiled", model_path.name)
        return CompileResult(status=CompileStatus.NOT_INSTALLED, model=model_path, reason=text)

    version = compiler_version(path)
    if (search_delegate or delegate_search_step) and (_major(version) or 16) < 16:
        raise ConfigError(
            f"Expected compiler version 16 or newer for search_delegate. Received: compiler "
            f"version {version!r} at {str(path)!r}"
        )
    out.mkdir(parents=True, exist_ok=True)
    stem = model_path.stem
    compiled_path = out / f"{stem}_edgetpu.tflite"
    log_path = out / f"{stem}_edgetpu.log"
    segment_glob = f"{stem}_segment_*_of_{num_segments}_edgetpu.tflite"
    watched = [compiled_path, log_path, *(out.glob(segment_glob) if num_segments else ())]
    before = {p: _signature(p) for p in watched}
    cmd = _build_command(path, version, model_path, out, opts)
    logger.info("Running %s", " ".join(cmd))
    start = time.perf_counter()
    returncode, stdout, stderr, killed = _run(cmd, cwd=out, kill_after=timeout + KILL_GRACE_SECONDS)
    duration = time.perf_counter() - start

    # A file left by an earlier run must not pass for this run's output.
    def fresh(p: Path) -> bool:
        sig = _signature(p)
        return sig is not None and sig != before.get(p)

    report = parse_compiler_output(stdout + "\n" + stderr)
    log_file = log_path if fresh(log_path) else None
    if log_file is not None:
        try:
            log_text = log_file.read_text(encoding="utf-8", errors="replace")
            report = merge_reports(report, parse_compiler_output(log_text))
        except OSError as exc:
            logger.warning("Could not read %s: %s", log_file, exc)
    if num_segments:
        segments = [p for p in out.glob(segment_glob) if fresh(p)]
        outputs = tuple(sorted(segments, key=lambda p: int(p.name[len(stem) + 9 :].split("_")[0])))
    else:
        outputs = (compiled_path,) if fresh(compiled_path) else ()
    common: dict[str, Any] = dict(
        model=model_path,
        log_path=log_file,
        report=report,
        compiler_version=version or report.compiler_version,
        command=tuple(cmd),
        returncode=returncode,
        duration_s=duration,
        stdout=stdout,
        stderr=stderr,
    )

    if killed:
        reason = f"edgetpu_compiler did not finish within {timeout:g} s and was stopped"
        return CompileResult(status=CompileStatus.TIMEOUT, reason=reason, **common)
    failure = report.failure
    if failure is not None and failure.kind is FailureKind.TIMEOUT:
        return CompileResult(status=CompileStatus.TIMEOUT, reason=f"{failure.message} ({failure.hint})", **common)
    if failure is not None or returncode != 0 or not outputs:
        if failure is not None:
            reason = f"{failure.kind.value}: {failure.message} ({failure.hint})"
        elif returncode != 0:
            last = (stderr.strip() or stdout.strip() or "no output").splitlines()[-1]
            reason = f"edgetpu_compiler exited with code {returncode}: {last}"
        else:
            reason = f"edgetpu_compiler reported no error but wrote no {compiled_path.name}"
        return CompileResult(status=CompileStatus.FAILED, reason=reason, **common)
    compiled_model = outputs[0]
    if report.ops_cpu or report.subgraphs == 0:
        return CompileResult(
            status=CompileStatus.PARTIAL,
            compiled_model=compiled_model,
            output_paths=outputs,
            reason=_cpu_reason(report),
            **common,
        )
    return CompileResult(status=CompileStatus.COMPILED, compiled_model=compiled_model, output_paths=outputs, **common)
