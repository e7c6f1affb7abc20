// Command pulumi-resource-aws is a schema-faithful stand-in for the pulumi-aws resource provider,
// for running the project's Pulumi program under the real Pulumi CLI and YAML language host without
// an AWS account. See README.md for what it proves and what it does not.
//
// Run by the Pulumi engine it serves the provider protocol. Run by a test with a first argument
// `put-object` or `list-objects` it acts on the fake cloud ($PULUMI_AWS_STANDIN_WORLD) instead,
// as something outside Pulumi would act on AWS (see worldCommand).
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func main() {
	if len(os.Args) > 1 && worldCommands[os.Args[1]] {
		if err := worldCommand(os.Args[1:], os.Getenv(envWorld), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
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

var worldCommands = map[string]bool{"put-object": true, "list-objects": true}

// worldCommand acts on the world file the way the data path (or an operator) acts on AWS:
//
//	pulumi-resource-aws put-object <bucket> <key>   # what the relay or Lambda does with a dead letter
//	pulumi-resource-aws list-objects <bucket>       # one key a line
//
// A bucket the world does not hold is NoSuchBucket, as in S3.
func worldCommand(args []string, worldPath string, out io.Writer) error {
	if worldPath == "" {
		return fmt.Errorf("%s: set %s to the world file the provider uses", args[0], envWorld)
	}
	w := NewWorld(worldPath)
	switch {
	case args[0] == "put-object" && len(args) == 3:
		return w.PutObject(args[1], args[2])
	case args[0] == "list-objects" && len(args) == 2:
		keys, err := w.Objects(args[1])
		for _, k := range keys {
			fmt.Fprintln(out, k)
		}
		return err
	}
	return fmt.Errorf("usage: pulumi-resource-aws put-object <bucket> <key> | list-objects <bucket>")
}
