#!/usr/bin/env bash
# The connectivity matrix: two Chromiums, each in a network namespace of its own behind a
# router of its own, call each other through a Parlor server on a third "public" network,
# with the routers set up as each case says (no NAT, cone NAT, symmetric NAT, UDP blocked,
# 5 % loss, an address that changes mid-call: the browser's own, or its router's public one). Every address belongs to namespaces this
# script makes (198.18.0.0/15 is the benchmarking block, 10.0.x private); nothing leaves the
# machine: the whole run happens inside a fresh namespace with only loopback, and the test
# namespaces are linked only to each other. Needs root (netns, veth, nftables).
#
#   scripts/nat-matrix.sh [playwright args]   # sets up, starts the server, runs the matrix
#   scripts/nat-matrix.sh net <case>          # (the spec) reconfigures the routers for a case
#   scripts/nat-matrix.sh net move-a          # (the spec) changes side A's address mid-call
#   scripts/nat-matrix.sh net rebind-a        # (the spec) changes A's router's public address
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$here/scripts/env.sh"

# --- the network ----------------------------------------------------------------------------
# inet: the "internet" router.  srv: the Parlor server at 198.18.0.10.
# ra/rb: each side's home router (WAN 198.18.1.2 / 198.18.2.2, LAN 10.0.1.1 / 10.0.2.1).
# a/b: the two browsers' hosts (10.0.1.2 / 10.0.2.2).
P=${PARLOR_NAT_PREFIX:-}
SERVER_IP=198.18.0.10
PORT=3000

ns() { echo "${P}$1"; }
in_ns() {
  local n=$1
  shift
  ip netns exec "$(ns "$n")" "$@"
}

link() { # link <ns1> <if1> <addr1> <ns2> <if2> <addr2>
  ip link add "$2" netns "$(ns "$1")" type veth peer name "$5" netns "$(ns "$4")"
  in_ns "$1" ip addr add "$3" dev "$2"
  in_ns "$4" ip addr add "$6" dev "$5"
  in_ns "$1" ip link set "$2" up
  in_ns "$4" ip link set "$5" up
}

make_network() {
  for n in inet srv ra rb a b; do
    ip netns add "$(ns "$n")"
    in_ns "$n" ip link set lo up
  done
  link inet to-srv 198.18.0.1/24 srv eth0 "$SERVER_IP/24"
  link inet to-ra 198.18.1.1/24 ra wan 198.18.1.2/24
  link inet to-rb 198.18.2.1/24 rb wan 198.18.2.2/24
  link ra lan 10.0.1.1/24 a eth0 10.0.1.2/24
  link rb lan 10.0.2.1/24 b eth0 10.0.2.2/24
  in_ns srv ip route add default via 198.18.0.1
  in_ns ra ip route add default via 198.18.1.1
  in_ns rb ip route add default via 198.18.2.1
  in_ns a ip route add default via 10.0.1.1
  in_ns b ip route add default via 10.0.2.1
  for n in inet ra rb; do in_ns "$n" sysctl -qw net.ipv4.ip_forward=1; done
}

remove_network() {
  for n in inet srv ra rb a b; do ip netns del "$(ns "$n")" 2>/dev/null || true; done
}

# The rules of a home router: NAT as `$1` says (none, cone, symmetric), and UDP dropped when
# `$2` is "no-udp". Only answers to what the LAN started come in from the WAN side (with NAT).
router_rules() {
  local nat=$1 udp=${2:-} masq=""
  case "$nat" in
    none) ;;
    cone) masq='oifname "wan" masquerade' ;;
    # A new random port for every destination: the mapping depends on where a packet goes.
    symmetric) masq='oifname "wan" masquerade random' ;;
  esac
  cat <<NFT
flush ruleset
table ip home {
  chain outgoing { type nat hook postrouting priority srcnat; $masq; }
  chain transit {
    type filter hook forward priority filter; policy accept;
    $([ "$udp" = no-udp ] && echo 'meta l4proto udp drop')
    $([ "$nat" != none ] && echo 'iifname "wan" ct state != { established, related } drop')
  }
  # Unasked-for packets to the router itself are dropped before conntrack keeps them: kept,
  # a peer's early hole-punching packet would take the port the LAN host's answer needs.
  chain incoming {
    type filter hook input priority filter; policy accept;
    $([ "$nat" != none ] && echo 'iifname "wan" ct state new drop')
  }
}
NFT
}

# The internet: routes to the LANs only when there is no NAT (10.0.x is not routed otherwise),
# and `$2` percent of the packets it forwards dropped.
internet_rules() {
  local lans=$1 loss=$2
  in_ns inet ip route del 10.0.1.0/24 2>/dev/null || true
  in_ns inet ip route del 10.0.2.0/24 2>/dev/null || true
  if [ "$lans" = routed ]; then
    in_ns inet ip route add 10.0.1.0/24 via 198.18.1.2
    in_ns inet ip route add 10.0.2.0/24 via 198.18.2.2
  fi
  in_ns inet nft -f - <<NFT
flush ruleset
table ip internet {
  chain transit {
    type filter hook forward priority filter; policy accept;
    $([ "$loss" -gt 0 ] && echo "numgen random mod 100 < $loss drop")
  }
}
NFT
}

# Side A back on 10.0.1.2 behind 198.18.1.2 (the switch and rebind cases move it).
reset_side_a() {
  in_ns a ip addr flush dev eth0
  in_ns a ip addr add 10.0.1.2/24 dev eth0
  in_ns a ip route replace default via 10.0.1.1
  in_ns ra ip addr flush dev wan
  in_ns ra ip addr add 198.18.1.2/24 dev wan
  in_ns ra ip route replace default via 198.18.1.1
}

configure() {
  local case=$1
  case "$case" in
    direct) reset_side_a; internet_rules routed 0; nat=none; udp= ;;
    cone | switch | rebind) reset_side_a; internet_rules none 0; nat=cone; udp= ;;
    symmetric) reset_side_a; internet_rules none 0; nat=symmetric; udp= ;;
    udp-blocked) reset_side_a; internet_rules none 0; nat=cone; udp=no-udp ;;
    loss) reset_side_a; internet_rules none 5; nat=cone; udp= ;;
    *) echo "unknown case: $case" >&2; exit 2 ;;
  esac
  for r in ra rb; do router_rules "$nat" "$udp" | in_ns "$r" nft -f -; done
  # Forget the old mappings: each case starts with an empty NAT table.
  for r in ra rb inet; do in_ns "$r" sh -c 'command -v conntrack >/dev/null && conntrack -F' >/dev/null 2>&1 || true; done
}

# Side A gets another address on its LAN mid-call, as when a phone moves to another network:
# the old address is gone at once (with its sockets' paths and NAT mappings).
switch_side_a() {
  in_ns a ip addr flush dev eth0
  in_ns a ip addr add 10.0.1.3/24 dev eth0
  in_ns a ip route replace default via 10.0.1.1
}

# Side A's router gets another public address mid-call, as when a carrier renumbers a line:
# the browser sees no change of its own; its NAT mappings (media and socket) are gone.
rebind_side_a() {
  in_ns ra sysctl -qw net.ipv4.conf.wan.promote_secondaries=1
  in_ns ra ip addr add 198.18.1.3/24 dev wan
  in_ns ra ip addr del 198.18.1.2/24 dev wan
  in_ns ra ip route replace default via 198.18.1.1
}

if [ "${1:-}" = net ]; then
  [ -n "$P" ] || { echo "PARLOR_NAT_PREFIX is not set: run scripts/nat-matrix.sh" >&2; exit 2; }
  case "${2:-}" in
    move-a) switch_side_a ;;
    rebind-a) rebind_side_a ;;
    *) configure "${2:-}" ;;
  esac
  exit 0
fi

# --- the run ----------------------------------------------------------------------------------
# Checked before the loopback-only namespace (which may map a user to root inside it): named
# namespaces, veth and nftables need the real root.
if [ -z "${PARLOR_IN_NETNS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "the NAT matrix needs root (network namespaces, nftables): run make test as root" >&2; exit 1; }
  PATH="$PATH:/usr/sbin:/sbin"
  command -v nft >/dev/null || { echo "nft is missing: scripts/bootstrap.sh installs nftables" >&2; exit 1; }
fi
parlor_loopback_only "$0" "$@"

export PARLOR_NAT_PREFIX="pn$$-"
P=$PARLOR_NAT_PREFIX
work=$(mktemp -d -t parlor-nat-XXXXXX)
server_pid=
cleanup() {
  set +e
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  remove_network
  # PARLOR_NAT_KEEP_LOG=<file>: keep the server's log there.
  [ -n "${PARLOR_NAT_KEEP_LOG:-}" ] && cp "$work/server.log" "$PARLOR_NAT_KEEP_LOG"
  rm -rf "$work"
}
trap cleanup EXIT
make_network
configure direct

# Each browser starts in its side's namespace (Playwright talks to it over a pipe).
for side in a b; do
  cat >"$work/chromium-$side" <<SH
#!/bin/sh
exec ip netns exec $(ns "$side") ${PARLOR_E2E_CHROMIUM:-/usr/bin/chromium} "\$@"
SH
  chmod +x "$work/chromium-$side"
done

server=${PARLOR_E2E_SERVER:-$here/target/debug/parlor}
mkdir "$work/data"
ip netns exec "$(ns srv)" env \
  PARLOR_ADDR="$SERVER_IP:$PORT" \
  PARLOR_PUBLIC_URL="http://$SERVER_IP:$PORT" \
  PARLOR_TURN_ADDR="$SERVER_IP:3478" \
  PARLOR_TURN_PUBLIC_IP="$SERVER_IP" \
  PARLOR_TURN_ALLOWED_PEERS=198.18.0.0/15 \
  PARLOR_DATA_DIR="$work/data" \
  PARLOR_LOG="${PARLOR_LOG:-warn}" \
  PARLOR_AUTH_ATTEMPTS_PER_IP=10000 \
  LEPTOS_SITE_ROOT="${PARLOR_E2E_SITE_ROOT:-$here/target/site}" \
  "$server" >"$work/server.log" 2>&1 &
server_pid=$!
ready=
for _ in $(seq 150); do
  in_ns a curl -sf -o /dev/null "http://$SERVER_IP:$PORT/readyz" && { ready=1; break; }
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "the server in the test network did not become ready:" >&2
  cat "$work/server.log" >&2
  exit 1
fi

export PARLOR_NAT_SCRIPT="$here/scripts/nat-matrix.sh"
export PARLOR_NAT_URL="http://$SERVER_IP:$PORT"
export PARLOR_NAT_CHROMIUM_A="$work/chromium-a" PARLOR_NAT_CHROMIUM_B="$work/chromium-b"
export PARLOR_NAT_RESULTS="$work/results.json"
cd "$here/end2end"
status=0
playwright test --config nat.config.ts "$@" || status=$?
if [ -s "$work/results.json" ]; then
  echo "NAT matrix (connect: Accept to remote video on both sides; recovery: switch to video again):"
  sed 's/^/  /' "$work/results.json"
fi
if [ "$status" -ne 0 ]; then
  echo "--- server log ---"
  tail -50 "$work/server.log"
fi
exit "$status"
