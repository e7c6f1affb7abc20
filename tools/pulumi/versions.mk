# Pins of the Go tools `make` builds (the Pulumi CLI's own pin is tools/pulumi/go.mod, which
# also pins the SDK the stand-in aws provider is built with).
#
# The YAML language host: the version the CLI bundles (pulumi's
# scripts/get-language-providers.sh) or the nearest one the Go module proxy serves.
PULUMI_YAML_VERSION := 1.25.0
# GitHub Actions workflow linter (`make lint`).
ACTIONLINT_VERSION := 1.7.12
