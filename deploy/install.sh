#!/bin/sh
# Install inkasso-gateway as a systemd service, from a checkout of the repository (run as root):
#   sudo sh deploy/install.sh
# Safe to run again for an upgrade: the venv is replaced, the configuration and the data are kept.
set -eu
cd "$(dirname "$0")/.."
PREFIX=/opt/inkasso-gateway
# The system's Python (3.11 or later): the service user must be able to run it, which a Python
# installed under root's home (pyenv, conda) is not.
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' || {
    echo "$PYTHON is not Python 3.11 or later with venv (Debian: apt-get install python3-venv)" >&2
    exit 1
}

# 1. The service user and the ERP's transfer group.
install -m 0644 deploy/inkasso-gateway.sysusers /usr/lib/sysusers.d/inkasso-gateway.conf
systemd-sysusers /usr/lib/sysusers.d/inkasso-gateway.conf

# 2. The gateway in its own venv, its dependencies at the versions it was tested with.
"$PYTHON" -m venv --clear "$PREFIX"
"$PREFIX/bin/pip" install --quiet --upgrade pip
"$PREFIX/bin/pip" install --quiet --constraint deploy/requirements.lock .
install -d -m 0755 "$PREFIX/share/doc/inkasso-gateway"
install -m 0644 README.md "$PREFIX/share/doc/inkasso-gateway/README.md"
# The auditor's own check of a receipt chain (Python's standard library only; copy it anywhere).
install -m 0755 tools/verify_receipts.py "$PREFIX/share/doc/inkasso-gateway/verify_receipts.py"
runuser -u inkasso -- "$PREFIX/bin/inkasso-gateway" --version

# 3. The configuration (kept when it is there) and the unit.
install -d -m 0750 -o root -g inkasso /etc/inkasso-gateway
if [ ! -e /etc/inkasso-gateway/gateway.toml ]; then
    install -m 0640 -o root -g inkasso deploy/gateway.toml.example /etc/inkasso-gateway/gateway.toml
fi
install -m 0644 deploy/inkasso-gateway.service /etc/systemd/system/inkasso-gateway.service

# 4. The data folder and its group inbox, then start (and start at boot).
install -d -m 0711 -o inkasso -g inkasso /var/lib/inkasso-gateway
install -d -m 2770 -o inkasso -g inkasso-erp /var/lib/inkasso-gateway/inbox
runuser -u inkasso -- "$PREFIX/bin/inkasso-gateway" config check --config /etc/inkasso-gateway/gateway.toml
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now inkasso-gateway
    systemctl --no-pager status inkasso-gateway || true
else
    echo "systemd is not running here: the unit is installed but not started." >&2
fi
