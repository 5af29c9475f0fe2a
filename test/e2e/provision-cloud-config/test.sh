# Same checks as provision-yaml; the reboot part is covered there (one boot less in CI).
SKIP_REBOOT=1 . "$SLIPWAY_SCENARIO_DIR/../_shared/provisioned-host.sh"
