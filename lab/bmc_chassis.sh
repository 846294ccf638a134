#!/bin/sh
# The power switch of one lab host, run by its BMC (ipmi_sim's chassis_control, synchronously: keep it short).
#   bmc_chassis.sh DIR NETNS [PIDFILE...] get power        -> power:1 | power:0
#   bmc_chassis.sh DIR NETNS [PIDFILE...] set power 0|1    -> off: SIGKILL every process of the host; on: mark it on
# The host is on while DIR/power says 1 or any of its processes lives (zombies do not count). Processes outside
# the namespace (its sanlock daemon) are named by PIDFILEs. DIR/stay-on makes "off" do nothing: a host that stays on.
# Booting is lab.cluster's business: "on" only records the power.
D=$1; ns=$2; shift 2
files=""; while [ $# -gt 0 ] && [ "$1" != get ] && [ "$1" != set ]; do files="$files $1"; shift; done
op=$1; shift
log() { echo "$(date +%T.%N) $*" >> "$D/chassis.log"; }
live() {
  for p in $(ip netns pids "$ns" 2>/dev/null) $(for f in $files; do [ -f "$f" ] && cut -d' ' -f1 "$f"; done); do
    s=$(ps -o stat= -p "$p" 2>/dev/null | tr -d ' '); case $s in ''|Z*) ;; *) echo "$p";; esac
  done
}
power_off() {
  if [ -e "$D/stay-on" ]; then log "off ignored (stay-on)"; return 0; fi
  pids=$(live); [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
  n=0; while [ -n "$(live)" ] && [ $n -lt 10 ]; do sleep 0.1; n=$((n+1)); done
  if [ -n "$(live)" ]; then echo "processes survive SIGKILL"; log "off failed"; return 1; fi
  echo 0 > "$D/power"; log "off: killed" $pids
}
case $op in
  get) for parm in "$@"; do case $parm in
         power) if [ "$(cat "$D/power" 2>/dev/null)" = 1 ] || [ -n "$(live)" ]; then echo power:1; else echo power:0; fi;;
         boot) echo boot:default;;
         *) echo "invalid parameter $parm"; exit 1;;
       esac; done;;
  set) log "set $*"
       while [ $# -ge 2 ]; do parm=$1; val=$2; shift 2; case $parm in
         power) if [ "$val" = 0 ]; then power_off || exit 1; else echo 1 > "$D/power"; fi;;
         reset) power_off || exit 1; echo 1 > "$D/power";;
         shutdown|boot|identify) ;;
         *) echo "invalid parameter $parm"; exit 1;;
       esac; done;;
  *) echo "unknown operation $op"; exit 1;;
esac
exit 0
