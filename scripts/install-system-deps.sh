#!/usr/bin/env bash
# Installs the system packages flowbus's tests use as real peers: nats-server (JetStream), a JDK
# with Maven for the Kafka broker, flow exporters (softflowd, pmacct) and reference decoders
# (tshark, nfdump). Idempotent; needs root (apt-get) on Debian.
# The test harness also installs these on demand, this just does it up front for CI.
set -euo pipefail
need=()
command -v nats-server >/dev/null || need+=(nats-server)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v tshark >/dev/null || need+=(tshark)
command -v softflowd >/dev/null || need+=(softflowd)
command -v pmacctd >/dev/null || need+=(pmacct)
command -v nfcapd >/dev/null || need+=(nfdump)
[ -x /usr/sbin/snmpd ] || need+=(snmpd) # SNMP agent the snmp-poller tests poll
command -v snmpget >/dev/null || need+=(snmp) # snmpget/snmpwalk, the reference the poller is compared with
command -v gobgpd >/dev/null || need+=(gobgpd) # BGP speaker (gobgpd + gobgp CLI) sending BMP to the bmp-rib tests
command -v chromium >/dev/null || need+=(chromium) # headless browser the web console tests drive (playwright-core)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose) # validates deploy/docker-compose*.yml (no daemon needed)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; the tests run it on files only.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "nats-server $(nats-server --version 2>&1 | head -1); $(java -version 2>&1 | head -1); $(mvn -v 2>/dev/null | head -1)"
dpkg-query -W -f='${Package} ${Version}\n' tshark softflowd pmacct nfdump | paste -sd ';' | sed 's/;/; /g' || true
