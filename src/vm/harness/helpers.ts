/**
 * Shell helpers for `test.sh` scenarios: the harness writes them next to the test's logs and
 * passes the path in SLIPWAY_HELPERS (`. "$SLIPWAY_HELPERS"`). Plain POSIX sh + ssh, so a
 * scenario needs nothing else on the host.
 */
export const SHELL_HELPERS = `# Slipway scenario helpers. Environment from the harness:
#   SLIPWAY_SSH        ssh command line for root@VM (use unquoted: $SLIPWAY_SSH 'cmd')
#   SLIPWAY_SSH_OPTS   the same without the destination (ssh $SLIPWAY_SSH_OPTS core@127.0.0.1)
#   SLIPWAY_SSH_PORT, SLIPWAY_SSH_KEY, SLIPWAY_SSH_PUBKEY
#   SLIPWAY_CONSOLE    the serial console log (grows while the VM runs)
#   SLIPWAY_OUT        this test's output directory; SLIPWAY_SCENARIO_DIR its scenario directory

# vm_ssh CMD...: run CMD as root in the VM.
vm_ssh() { $SLIPWAY_SSH "$@"; }

# vm_ssh_as USER CMD...: run CMD as USER (with the run's key; the config must authorize it).
vm_ssh_as() { _u=$1; shift; ssh $SLIPWAY_SSH_OPTS "$_u@127.0.0.1" "$@"; }

# fail MSG: end the test as failed with MSG as the reason.
fail() { echo "FAIL: $*" >&2; exit 1; }

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }

# vm_reboot [TIMEOUT_S]: reboot and wait until the system has settled again.
vm_reboot() {
  _t=\${1:-600}
  _old=$(vm_ssh cat /proc/sys/kernel/random/boot_id) || fail "vm_reboot: ssh failed before reboot"
  vm_ssh 'systemctl reboot' >/dev/null 2>&1 || true
  _end=$(( $(date +%s) + _t ))
  while [ "$(date +%s)" -lt "$_end" ]; do
    _new=$($SLIPWAY_SSH -o ConnectTimeout=5 cat /proc/sys/kernel/random/boot_id 2>/dev/null) || _new=
    if [ -n "$_new" ] && [ "$_new" != "$_old" ]; then
      # Non-zero unless "running": keep sh -e from ending the script here.
      _state=$(vm_ssh 'systemctl is-system-running --wait' 2>/dev/null) || true
      case $_state in
        running) return 0 ;;
        degraded) fail "after reboot: system degraded: $(vm_ssh 'systemctl --failed --no-legend --plain' | awk '{print $1}' | tr '\\n' ' ')" ;;
      esac
    fi
    sleep 3
  done
  fail "vm_reboot: the VM was not back within $_t s"
}

# vm_console_wait REGEX [TIMEOUT_S]: wait for a console line matching the extended REGEX.
vm_console_wait() {
  _end=$(( $(date +%s) + \${2:-300} ))
  while [ "$(date +%s)" -lt "$_end" ]; do
    grep -aEq -- "$1" "$SLIPWAY_CONSOLE" && return 0
    sleep 1
  done
  fail "no console line matching /$1/ within \${2:-300} s"
}
`;
