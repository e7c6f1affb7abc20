//go:build tools

// The Pulumi CLI is built from this module so that its version is pinned here (go.mod) with
// the stand-in provider's SDK: pkg/v3 replaces sdk/v3 with ../sdk in its own go.mod, which
// `go install pkg/v3/cmd/pulumi@version` refuses, so a wrapper module has to require both.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
