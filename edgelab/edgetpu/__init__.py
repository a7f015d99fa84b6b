"""Edge TPU: offline analysis, the compiler wrapper, its logs and the runtime delegate.

None of these modules imports TensorFlow: they run on a device with only numpy and a TFLite runtime.
"""

from .analyze import EdgeTPUReport, OpVerdict, analyze
from .compiler import CompileResult, compile, compiler_version, find_compiler, install_instructions
from .delegate import (
    delegate_library_name,
    delegate_status,
    has_edgetpu_custom_op,
    list_edge_tpus,
    load_edgetpu_delegate,
    require_delegate_for,
)
from .logs import CompilerReport, FailureKind, parse_compiler_output, read_log
from .verdict import EdgeTPUVerdict, edgetpu_verdict

__all__ = [
    "CompileResult", "CompilerReport", "EdgeTPUReport", "EdgeTPUVerdict", "edgetpu_verdict", "FailureKind", "OpVerdict", "analyze", "compile",
    "compiler_version", "delegate_library_name", "delegate_status", "find_compiler", "has_edgetpu_custom_op",
    "install_instructions", "list_edge_tpus", "load_edgetpu_delegate", "parse_compiler_output", "read_log",
    "require_delegate_for",
]
