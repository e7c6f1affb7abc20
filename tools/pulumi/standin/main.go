// Command pulumi-resource-aws is a schema-faithful stand-in for the pulumi-aws resource provider,
// for running the project's Pulumi program under the real Pulumi CLI and YAML language host without
// an AWS account. See README.md for what it proves and what it does not.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func main() {
	path, err := schemaPath()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	schema, err := LoadSchemaFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	world := NewWorld(os.Getenv(envWorld))
	err = provider.Main("aws", func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newProvider(schema, world), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
