# Checks for the provision-* scenarios: the host their configs describe, across a reboot.
. "$SLIPWAY_HELPERS"

# First boot: Ignition ran (the stamp's kernel arguments are there) and did its work.
vm_ssh 'grep -qw ignition.firstboot /proc/cmdline' || fail "first boot without ignition.firstboot"
vm_ssh 'test -f /etc/.ignition-result.json' || fail "no /etc/.ignition-result.json"
assert_eq "$(vm_ssh_as core 'id -un')" core "ssh as core"
assert_eq "$(vm_ssh_as core 'id -nG' | tr ' ' '\n' | grep -x sudo)" sudo "core's groups"
assert_eq "$(vm_ssh 'stat -c "%a %U" /etc/slipway-e2e/secret.conf')" "600 root" "secret.conf mode and owner"
assert_eq "$(vm_ssh 'cat /etc/slipway-e2e/secret.conf')" "token=abc def" "secret.conf contents"
assert_eq "$(vm_ssh 'systemctl is-enabled e2e-hello.service')" enabled "e2e-hello.service enabled"
assert_eq "$(vm_ssh 'systemctl is-active e2e-hello.service')" active "e2e-hello.service active"
result_before=$(vm_ssh 'stat -c %Y /etc/.ignition-result.json')
# Ignition would put the file back (overwrite: true) if it ran again.
if [ -n "${SKIP_REBOOT:-}" ]; then
  echo "provisioned host checks passed (first boot)"
  exit 0
fi
vm_ssh 'echo changed > /etc/slipway-e2e/secret.conf'

vm_reboot

vm_ssh 'grep -qw ignition.firstboot /proc/cmdline' && fail "second boot still has ignition.firstboot"
assert_eq "$(vm_ssh 'cat /etc/slipway-e2e/secret.conf')" changed "secret.conf after reboot (Ignition ran again?)"
assert_eq "$(vm_ssh 'stat -c %Y /etc/.ignition-result.json')" "$result_before" "Ignition result after reboot"
assert_eq "$(vm_ssh 'wc -l < /var/lib/e2e-hello.log')" 2 "e2e-hello.service runs on every boot"
assert_eq "$(vm_ssh_as core 'id -un')" core "ssh as core after reboot"
assert_eq "$(vm_ssh 'systemctl is-active e2e-hello.service')" active "e2e-hello.service active after reboot"
echo "provisioned host checks passed"
