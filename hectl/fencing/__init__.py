"""Fencing: power a host off through a device outside it (its BMC, a PDU) and have the device confirm it.

``device`` turns ``[fencing] host<N>`` and the host's secrets file into a runnable
method, ``agent`` drives the fence-agents family through its stdin interface,
``fence`` is the confirmed power-off and the device check. docs/fencing.md.
"""
