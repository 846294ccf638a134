#!/usr/bin/env bash
# Install everything hectl and its test suite need on Debian 12 (run as root):
# Debian packages, then a venv in .venv with hectl (editable) and its test extras.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: python3-venv (the venv), sanlock + python3-sanlock (the lease daemon the HA agent uses, and
# its binding, not on PyPI: linked into the venv below), gcc (the tests build an rlimit shim for sanlock),
# iputils-ping (the network monitor's ping test), bash/zsh/fish (completion tests in real shells), fuse + libfuse2 (the hung-storage
# tests mount a stalling FUSE filesystem), groff-base (a test renders the man pages with groff -ww),
# libvirt + QEMU + libvirt's sanlock lock driver + python3-libvirt (the engine VM; the tests start their own
# libvirtd), libxml2-utils (virt-xml-validate checks generated domain XML), openssl (test certificates), systemd
# (systemd-analyze verifies the unit and rates its hardening, offline: the tests need no running systemd),
# glusterfs-server + glusterfs-client + libgfapi0 (the glusterfs backend: FUSE mount, gfapi reads; the tests start
# their own glusterd and a replica-3 volume), qemu-utils (deploy imports the engine disk image with qemu-img),
# libnfs13 (the nfs backend's userspace client), nfs-ganesha + nfs-ganesha-vfs (the tests' NFS server: this kernel
# has no NFS server), iproute2 (the tests' network namespaces), ctdb + ethtool (the ctdb backend's CLI; the tests start 3 ctdbd, whose
# interface monitor reads the link state with ethtool),
# fence-agents + ipmitool + openipmi (fencing: the real fence_ipmilan drives each lab host's ipmi_sim BMC).
PACKAGES=(python3 python3-venv sanlock python3-sanlock gcc libc6-dev iputils-ping bash zsh fish groff-base fuse libfuse2
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-sanlock qemu-system-x86 python3-libvirt
  libxml2-utils openssl systemd glusterfs-server glusterfs-client libgfapi0 qemu-utils
  libnfs13 nfs-ganesha nfs-ganesha-vfs iproute2 ctdb ethtool fence-agents ipmitool openipmi)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install.sh: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q </dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

# The venv uses Debian's interpreter so that Debian's compiled bindings (sanlock) match its ABI.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
# compat mode: a plain path entry, not setuptools' import-hook finder (which adds ~9 ms to every start)
.venv/bin/python -m pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[test]' </dev/null

# sanlock's binding is only packaged by Debian, and Debian's libvirt binding matches the installed libvirtd
# (PyPI's libvirt-python compiles for ~10 s): link just these modules into the venv
# (a .pth to dist-packages would drag in every Debian Python package).
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for so in /usr/lib/python3/dist-packages/{sanlock*.so,libvirt.py,libvirtmod.cpython*.so,libvirt_qemu.py,libvirtmod_qemu.cpython*.so}; do
  [ -e "$so" ] && ln -sf "$so" "$site/"
done
for mod in sanlock libvirt; do
  .venv/bin/python -c "import $mod" 2>/dev/null || { echo "install.sh: $mod binding not importable" >&2; exit 1; }
done
echo "install.sh: ready ($(.venv/bin/hectl --version))"
