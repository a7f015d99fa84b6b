"""The Edge TPU delegate, where Edge TPU users look for it.

Loading a delegate is part of building a TFLite interpreter, so the code lives in
:mod:`edgelab.tflite.delegate` (below this package); these are the same objects.
"""

from __future__ import annotations

from ..tflite.delegate import (
    DELEGATE_LIBRARIES,
    DEVICE_EXAMPLES,
    USB_IDS,
    DelegateStatus,
    coral_apt_commands,
    delegate_library_name,
    delegate_status,
    did_you_mean_device,
    has_edgetpu_custom_op,
    library_available,
    list_edge_tpus,
    load_delegate_function,
    load_edgetpu_delegate,
    require_delegate_for,
    validate_device,
)

__all__ = [
    "DELEGATE_LIBRARIES",
    "DEVICE_EXAMPLES",
    "USB_IDS",
    "DelegateStatus",
    "coral_apt_commands",
    "delegate_library_name",
    "delegate_status",
    "did_you_mean_device",
    "has_edgetpu_custom_op",
    "library_available",
    "list_edge_tpus",
    "load_delegate_function",
    "load_edgetpu_delegate",
    "require_delegate_for",
    "validate_device",
]
