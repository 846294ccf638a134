"""Connect to this host's hypervisor: the libvirt implementation of ``hectl.vm.hypervisor.Hypervisor``.

Kept apart from the interface so that imports only point down: the callers
(``AppContext.hypervisor``, the agent's ``EngineRuntime``) import this module,
this module imports the implementation (when it connects), the implementation
the interface.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING would import typing (see hectl.frozen)
if TYPE_CHECKING:
    from hectl.vm.hypervisor import Hypervisor


def connect(uri: str) -> Hypervisor:
    """The hypervisor at ``uri`` (libvirt), connected."""
    from hectl.vm.libvirt import LibvirtHypervisor

    return LibvirtHypervisor(uri)
