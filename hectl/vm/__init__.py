"""The engine VM: the hypervisor interface and its libvirt implementation, the spec, the XML, the commands' logic."""
