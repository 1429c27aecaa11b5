#!/usr/bin/env bash
# Installs the iocwatch bridge on a Wazuh 4.x manager: the custom-iocwatch binary into
# the integrations folder, the bridge rules into the user rules folder, and the cache
# folder. It does not edit ossec.conf: add the block of ossec-integration.xml yourself.
#
#   sudo wazuh/install.sh [--binary PATH] [--wazuh-dir DIR]
#
# --binary     the built binary (default: target/release/custom-iocwatch)
# --wazuh-dir  the Wazuh installation folder (default: /var/ossec)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
binary="$here/../target/release/custom-iocwatch"
wazuh_dir="/var/ossec"

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --wazuh-dir) wazuh_dir="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

if [ ! -x "$binary" ]; then
    echo "install.sh: binary '$binary' not found: build it with 'cargo build --release -p bridge' or pass --binary" >&2
    exit 1
fi
if [ ! -d "$wazuh_dir/integrations" ]; then
    echo "install.sh: '$wazuh_dir/integrations' not found: is this a Wazuh manager? Pass --wazuh-dir" >&2
    exit 1
fi
group="wazuh"
getent group wazuh >/dev/null || group="ossec"   # Wazuh before 4.3 used the ossec group

install -m 0750 -o root -g "$group" "$binary" "$wazuh_dir/integrations/custom-iocwatch"
install -m 0660 -o "$group" -g "$group" "$here/iocwatch_bridge_rules.xml" \
    "$wazuh_dir/etc/rules/iocwatch_bridge_rules.xml"
install -d -m 0750 -o "$group" -g "$group" "$wazuh_dir/tmp/iocwatch-cache"
echo "installed $wazuh_dir/integrations/custom-iocwatch and $wazuh_dir/etc/rules/iocwatch_bridge_rules.xml"

if [ -x "$wazuh_dir/bin/wazuh-analysisd" ]; then
    "$wazuh_dir/bin/wazuh-analysisd" -t && echo "wazuh-analysisd accepts the rules"
fi
echo "next: add the <integration> block of $here/ossec-integration.xml to $wazuh_dir/etc/ossec.conf and restart wazuh-manager"
