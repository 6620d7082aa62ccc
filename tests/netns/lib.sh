# Helpers for tests that need avahi-daemon: a private "host" in network + mount namespaces that the
# test itself creates (never the machine's own namespace: its multicast must not leave the machine).
# Source this file from a script that already runs under
#   unshare --net --mount --propagation private SCRIPT ...
# Then: netns_host_up DIR HOSTNAME IFACE  (lo up, tmpfs over /run, private system D-Bus, avahi-daemon
# allowed on IFACE only), avahi_stop / avahi_start, netns_host_down. See docs/discovery.md.

# Brings up lo, a tmpfs over /run (avahi hard-codes /run/avahi-daemon/), a private system bus at the
# standard path (/run/dbus/system_bus_socket, also exported as DBUS_SYSTEM_BUS_ADDRESS) and avahi-daemon.
netns_host_up() {
  NETNS_DIR=$1 NETNS_HOSTNAME=$2 NETNS_IFACE=$3
  ip link set lo up || return 1
  mount -t tmpfs -o mode=0755 tmpfs /run || return 1
  mkdir -p /run/dbus /run/avahi-daemon "$NETNS_DIR"
  cat >"$NETNS_DIR/system-bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
CONF
  dbus-daemon --config-file="$NETNS_DIR/system-bus.conf" --fork --print-pid >"$NETNS_DIR/dbus.pid" || return 1
  export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
  cat >"$NETNS_DIR/avahi.conf" <<CONF
[server]
host-name=$NETNS_HOSTNAME
use-ipv4=yes
use-ipv6=no
allow-interfaces=$NETNS_IFACE
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
[reflector]
enable-reflector=no
[rlimits]
CONF
  avahi_start
}

# Starts avahi-daemon and waits (<= 10 s) for "Server startup complete".
avahi_start() {
  : >"$NETNS_DIR/avahi.log"
  avahi-daemon -f "$NETNS_DIR/avahi.conf" --no-drop-root --no-chroot --no-rlimits --no-proc-title \
    >>"$NETNS_DIR/avahi.log" 2>&1 &
  AVAHI_PID=$!
  local i
  for i in $(seq 100); do
    grep -q "Server startup complete" "$NETNS_DIR/avahi.log" && return 0
    kill -0 "$AVAHI_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "avahi-daemon did not start:"; cat "$NETNS_DIR/avahi.log"
  return 1
}

# Stops avahi-daemon (and waits for it to be gone).
avahi_stop() {
  [ -n "${AVAHI_PID:-}" ] || return 0
  kill -TERM "$AVAHI_PID" 2>/dev/null
  local i
  for i in $(seq 50); do kill -0 "$AVAHI_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$AVAHI_PID" 2>/dev/null
  wait "$AVAHI_PID" 2>/dev/null
  AVAHI_PID=""
}

# Stops avahi-daemon and the bus. The namespaces vanish with the last process in them.
netns_host_down() {
  avahi_stop
  [ -f "$NETNS_DIR/dbus.pid" ] && kill -TERM "$(cat "$NETNS_DIR/dbus.pid")" 2>/dev/null
  rm -f "$NETNS_DIR/dbus.pid"
}

# Kills the given pids: TERM, up to 3 s of grace, then KILL.
kill_all() {
  local p alive i
  for p in "$@"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
  for i in $(seq 30); do
    alive=0
    for p in "$@"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for p in "$@"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
  return 0
}
