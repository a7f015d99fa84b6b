"""Edge TPU: offline analysis, latency and memory estimates, the compiler wrapper, its logs and the delegate.

``analyze_edgetpu`` predicts which ops compiler 16 maps, ``estimate_latency`` how long one
inference takes per link (USB 3, USB 2, PCIe, Dev Board), ``memory_plan`` what the on-chip cache
holds; ``convert_for_edgetpu`` converts with the Edge TPU's settings and checks the file;
``compile_edgetpu`` runs the real compiler and ``read_log`` parses its output. All three
report the shared :class:`EdgeTPUMapping`. None of these modules imports TensorFlow: they run on a
device with only numpy and a TFLite runtime.
"""

from .analyze import EdgeTPUReport, OpVerdict, analyze_edgetpu
from .compiler import (
    CompileOptions,
    CompileResult,
    compile_edgetpu,
    compiler_version,
    find_compiler,
    install_instructions,
)
from .convert import convert_for_edgetpu
from .delegate import (
    delegate_library_name,
    delegate_status,
    has_edgetpu_custom_op,
    list_edge_tpus,
    load_edgetpu_delegate,
    require_delegate_for,
)
from .latency import LatencyEstimate, Link, LinkLatency, estimate_latency
from .logs import CompilerReport, FailureKind, parse_compiler_output, read_log
from .mapping import CompileStatus, EdgeTPUMapping, Source, Target, Verdict
from .memory import MemoryPlan, SegmentMemory, co_compiled_memory, format_bytes, memory_plan
from .verdict import edgetpu_verdict

__all__ = [
    "CompileOptions",
    "CompileResult",
    "CompileStatus",
    "CompilerReport",
    "EdgeTPUMapping",
    "EdgeTPUReport",
    "FailureKind",
    "LatencyEstimate",
    "Link",
    "LinkLatency",
    "MemoryPlan",
    "OpVerdict",
    "SegmentMemory",
    "Source",
    "Target",
    "Verdict",
    "analyze_edgetpu",
    "co_compiled_memory",
    "compile_edgetpu",
    "compiler_version",
    "convert_for_edgetpu",
    "delegate_library_name",
    "delegate_status",
    "edgetpu_verdict",
    "estimate_latency",
    "find_compiler",
    "format_bytes",
    "has_edgetpu_custom_op",
    "install_instructions",
    "list_edge_tpus",
    "load_edgetpu_delegate",
    "memory_plan",
    "parse_compiler_output",
    "read_log",
    "require_delegate_for",
]
