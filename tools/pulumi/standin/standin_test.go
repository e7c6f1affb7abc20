package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/archive"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	tRole     = "aws:iam/role:Role"
	tFunction = "aws:lambda/function:Function"
	tESM      = "aws:lambda/eventSourceMapping:EventSourceMapping"
	tStream   = "aws:kinesis/stream:Stream"
	tQueue    = "aws:sqs/queue:Queue"
	tLogGroup = "aws:cloudwatch/logGroup:LogGroup"
	tKey      = "aws:kms/key:Key"
	tSchedule = "aws:scheduler/schedule:Schedule"
	tBucket   = "aws:s3/bucket:Bucket"

	tBucketPolicy = "aws:s3/bucketPolicy:BucketPolicy"
	tPublicAccess = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
	tTopicPolicy  = "aws:sns/topicPolicy:TopicPolicy"
	tSubscription = "aws:sns/topicSubscription:TopicSubscription"
	tTable        = "aws:dynamodb/table:Table"
)

var ctx = context.Background()

func fixtureSchema(t *testing.T) *Schema {
	t.Helper()
	s, err := LoadSchemaFile(filepath.Join("testdata", "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func urn(token, name string) string {
	return "urn:pulumi:dev::proj::" + token + "::" + name
}

func props(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	return mustStruct(t, resource.NewPropertyMapFromMap(m))
}

func mustStruct(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := plugin.MarshalProperties(m, plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fromStruct(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := unmarshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// configured returns a provider configured for region in the fixture schema, sharing world w.
func configured(t *testing.T, w *World, region string, extra map[string]any) *awsProvider {
	t.Helper()
	p := newProvider(fixtureSchema(t), w)
	args := map[string]any{"region": region}
	for k, v := range extra {
		args[k] = v
	}
	if _, err := p.Configure(ctx, &pulumirpc.ConfigureRequest{Args: props(t, args), AcceptSecrets: true}); err != nil {
		t.Fatal(err)
	}
	return p
}

func check(t *testing.T, p *awsProvider, token, name string, news resource.PropertyMap) *pulumirpc.CheckResponse {
	t.Helper()
	resp, err := p.Check(ctx, &pulumirpc.CheckRequest{
		Urn: urn(token, name), News: mustStruct(t, news), RandomSeed: []byte("seed-" + name),
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func reasons(resp *pulumirpc.CheckResponse) []string {
	var out []string
	for _, f := range resp.GetFailures() {
		out = append(out, f.GetProperty()+" | "+f.GetReason())
	}
	return out
}

func wantFailure(t *testing.T, resp *pulumirpc.CheckResponse, property, reason string) {
	t.Helper()
	for _, f := range resp.GetFailures() {
		if f.GetProperty() == property && strings.Contains(f.GetReason(), reason) {
			return
		}
	}
	t.Fatalf("no failure %q containing %q; got %q", property, reason, reasons(resp))
}

func wantNoFailures(t *testing.T, resp *pulumirpc.CheckResponse) {
	t.Helper()
	if len(resp.GetFailures()) > 0 {
		t.Fatalf("unexpected failures: %q", reasons(resp))
	}
}

func fnInputs(extra map[string]any) resource.PropertyMap {
	m := map[string]any{"role": "arn:aws:iam::123456789012:role/r", "runtime": "provided.al2023"}
	for k, v := range extra {
		m[k] = v
	}
	return resource.NewPropertyMapFromMap(m)
}

// --- Check ---------------------------------------------------------------------------------

func TestCheckUnknownProperty(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	resp := check(t, p, tFunction, "fn", fnInputs(map[string]any{"memorySiz": 128}))
	wantFailure(t, resp, "memorySiz",
		`aws:lambda/function:Function: unknown property "memorySiz" (did you mean "memorySize"?)`)
}

func TestCheckWrongTypes(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	resp := check(t, p, tFunction, "fn", fnInputs(map[string]any{
		"memorySize": "abc", "timeout": 1.5, "publish": "yes", "tags": []any{"a"},
		"code": "not-an-archive",
	}))
	wantFailure(t, resp, "memorySize",
		`aws:lambda/function:Function: property "memorySize": expected integer, got string "abc"`)
	wantFailure(t, resp, "timeout", `expected integer, got number 1.5`)
	wantFailure(t, resp, "publish", `expected boolean, got string "yes"`)
	wantFailure(t, resp, "tags", `expected object (map), got array`)
	wantFailure(t, resp, "code", `expected archive, got string "not-an-archive"`)

	// An integral number is an integer; an archive is an archive.
	arch, err := archive.FromAssets(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	in := fnInputs(map[string]any{"memorySize": 128.0})
	in["code"] = resource.NewArchiveProperty(arch)
	wantNoFailures(t, check(t, p, tFunction, "fn", in))
}

func TestCheckMissingRequired(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	resp := check(t, p, tFunction, "fn", resource.NewPropertyMapFromMap(map[string]any{"runtime": "python3.13"}))
	wantFailure(t, resp, "role", `aws:lambda/function:Function: missing required property "role"`)
	// null does not satisfy a required input either
	resp = check(t, p, tFunction, "fn", resource.PropertyMap{"role": resource.NewNullProperty()})
	wantFailure(t, resp, "role", `missing required property "role"`)
}

func TestCheckNestedRefObjects(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	resp := check(t, p, tESM, "esm", resource.NewPropertyMapFromMap(map[string]any{
		"functionName":      "relay",
		"destinationConfig": map[string]any{"onFailure": map[string]any{"destinationArm": "arn:aws:sqs:x"}},
	}))
	wantFailure(t, resp, "destinationConfig.onFailure.destinationArm", `unknown property "destinationConfig.onFailure.destinationArm"`)
	wantFailure(t, resp, "destinationConfig.onFailure.destinationArn",
		`aws:lambda/eventSourceMapping:EventSourceMapping: missing required property "destinationConfig.onFailure.destinationArn"`)

	resp = check(t, p, tESM, "esm", resource.NewPropertyMapFromMap(map[string]any{
		"functionName":      "relay",
		"destinationConfig": map[string]any{"onFailure": "arn:aws:sqs:x"},
	}))
	wantFailure(t, resp, "destinationConfig.onFailure", `expected object, got string "arn:aws:sqs:x"`)

	resp = check(t, p, tFunction, "fn", fnInputs(map[string]any{
		"environment": map[string]any{"variables": map[string]any{"OK": "1", "BAD": 2}},
	}))
	wantFailure(t, resp, `environment.variables["BAD"]`, `expected string, got number 2`)
	if len(resp.GetFailures()) != 1 {
		t.Fatalf("want exactly one failure, got %q", reasons(resp))
	}

	// arrays of $ref objects, oneOf (string | PolicyDocument), enums by their underlying type
	resp = check(t, p, tRole, "r", resource.NewPropertyMapFromMap(map[string]any{
		"assumeRolePolicy": map[string]any{"Version": "2012-10-17", "Statement": []any{}},
		"inlinePolicies":   []any{map[string]any{"name": "p", "policy": "{}"}, map[string]any{"nme": "q"}},
	}))
	wantFailure(t, resp, "inlinePolicies[1].nme", `unknown property "inlinePolicies[1].nme"`)
	if len(resp.GetFailures()) != 1 {
		t.Fatalf("want exactly one failure, got %q", reasons(resp))
	}
	resp = check(t, p, tRole, "r", resource.NewPropertyMapFromMap(map[string]any{"assumeRolePolicy": 5}))
	wantFailure(t, resp, "assumeRolePolicy", `matches none of the allowed types`)
}

func TestCheckUnknownValuesAccepted(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	unknown := resource.MakeComputed(resource.NewStringProperty(""))
	in := resource.PropertyMap{
		"role":        unknown, // satisfies the required input during preview
		"memorySize":  unknown,
		"environment": resource.NewObjectProperty(resource.PropertyMap{"variables": unknown}),
		"tags": resource.NewOutputProperty(resource.Output{
			Element: resource.NewStringProperty(""), Known: false,
		}),
	}
	wantNoFailures(t, check(t, p, tFunction, "fn", in))
}

func TestCheckSecretsAccepted(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	in := fnInputs(nil)
	in["role"] = resource.MakeSecret(resource.NewStringProperty("arn:aws:iam::1:role/r"))
	in["environment"] = resource.NewObjectProperty(resource.PropertyMap{
		"variables": resource.NewObjectProperty(resource.PropertyMap{
			"TOKEN": resource.MakeSecret(resource.NewStringProperty("s3cr3t")),
		}),
	})
	resp := check(t, p, tFunction, "fn", in)
	wantNoFailures(t, resp)
	out := fromStruct(t, resp.GetInputs())
	if !out["role"].IsSecret() {
		t.Fatalf("secret input lost its secretness in Check: %v", out["role"])
	}
	// The element of a secret is still type-checked.
	in["memorySize"] = resource.MakeSecret(resource.NewStringProperty("abc"))
	wantFailure(t, check(t, p, tFunction, "fn", in), "memorySize", `expected integer, got string "abc"`)
}

func TestCheckUnknownResourceType(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	_, err := p.Check(ctx, &pulumirpc.CheckRequest{Urn: urn("aws:lambda/functoin:Functoin", "x"), News: props(t, nil)})
	if err == nil || !strings.Contains(err.Error(), `unknown resource type "aws:lambda/functoin:Functoin"`) {
		t.Fatalf("want unknown resource type error, got %v", err)
	}
}

func TestCheckAutonames(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	resp := check(t, p, tFunction, "relay", fnInputs(nil))
	wantNoFailures(t, resp)
	in := fromStruct(t, resp.GetInputs())
	name := in["name"].StringValue()
	if !regexp.MustCompile(`^relay-[0-9a-f]{7}$`).MatchString(name) {
		t.Fatalf("auto-name %q is not <logical>-<7 hex>", name)
	}
	if d := in[defaultsKey]; !d.IsArray() || len(d.ArrayValue()) != 1 || d.ArrayValue()[0].StringValue() != "name" {
		t.Fatalf("__defaults = %v, want [name]", in[defaultsKey])
	}
	// The same seed gives the same name; the old auto-name is kept on later checks.
	again := fromStruct(t, check(t, p, tFunction, "relay", fnInputs(nil)).GetInputs())
	if again["name"].StringValue() != name {
		t.Fatalf("auto-name not deterministic for a seed: %q vs %q", again["name"].StringValue(), name)
	}
	resp2, err := p.Check(ctx, &pulumirpc.CheckRequest{
		Urn: urn(tFunction, "relay"), News: mustStruct(t, fnInputs(nil)), Olds: resp.GetInputs(),
		RandomSeed: []byte("another seed"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fromStruct(t, resp2.GetInputs())["name"].StringValue(); got != name {
		t.Fatalf("old auto-name not reused: %q vs %q", got, name)
	}
	// An explicit name is not a default; a namePrefix suppresses the auto-name.
	explicit := fromStruct(t, check(t, p, tFunction, "relay", fnInputs(map[string]any{"name": "relay"})).GetInputs())
	if len(explicit[defaultsKey].ArrayValue()) != 0 {
		t.Fatalf("explicit name listed as default: %v", explicit[defaultsKey])
	}
	prefixed := fromStruct(t, check(t, p, tQueue, "dlq", resource.NewPropertyMapFromMap(map[string]any{
		"namePrefix": "dlq-"})).GetInputs())
	if _, ok := prefixed["name"]; ok {
		t.Fatalf("namePrefix set but name auto-generated: %v", prefixed["name"])
	}
	fifo := fromStruct(t, check(t, p, tQueue, "dlq", resource.NewPropertyMapFromMap(map[string]any{
		"fifoQueue": true})).GetInputs())
	if !regexp.MustCompile(`^dlq-[0-9a-f]{7}\.fifo$`).MatchString(fifo["name"].StringValue()) {
		t.Fatalf("FIFO queue auto-name %q lacks .fifo", fifo["name"].StringValue())
	}
}

// --- Diff ----------------------------------------------------------------------------------

func diff(t *testing.T, p *awsProvider, token, name string, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	t.Helper()
	resp, err := p.Diff(ctx, &pulumirpc.DiffRequest{
		Urn: urn(token, name), Id: "id", Olds: mustStruct(t, olds), OldInputs: mustStruct(t, olds),
		News: mustStruct(t, news),
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func checked(t *testing.T, p *awsProvider, token, name string, in map[string]any) resource.PropertyMap {
	t.Helper()
	resp := check(t, p, token, name, resource.NewPropertyMapFromMap(in))
	wantNoFailures(t, resp)
	return fromStruct(t, resp.GetInputs())
}

func TestDiffReplaceAndDeleteBeforeReplace(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	policy := `{"Version":"2012-10-17","Statement":[]}`

	// Explicit name changed: replace, and delete-before-replace (the name is fixed by the program).
	o := checked(t, p, tRole, "relay", map[string]any{"name": "relay-a", "assumeRolePolicy": policy})
	n := checked(t, p, tRole, "relay", map[string]any{"name": "relay-b", "assumeRolePolicy": policy})
	d := diff(t, p, tRole, "relay", o, n)
	if d.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || strings.Join(d.GetReplaces(), ",") != "name" ||
		!d.GetDeleteBeforeReplace() {
		t.Fatalf("explicit rename: %v", d)
	}
	if k := d.GetDetailedDiff()["name"].GetKind(); k != pulumirpc.PropertyDiff_UPDATE_REPLACE {
		t.Fatalf("detailed diff kind %v", k)
	}

	// Explicit name kept, path changed: still delete-before-replace (same fixed name).
	o = checked(t, p, tRole, "relay", map[string]any{"name": "relay-a", "assumeRolePolicy": policy})
	n = checked(t, p, tRole, "relay", map[string]any{"name": "relay-a", "path": "/svc/", "assumeRolePolicy": policy})
	d = diff(t, p, tRole, "relay", o, n)
	if strings.Join(d.GetReplaces(), ",") != "path" || !d.GetDeleteBeforeReplace() {
		t.Fatalf("path change with fixed name: %v", d)
	}

	// Auto-named: replace, create-before-delete.
	o = checked(t, p, tRole, "relay", map[string]any{"assumeRolePolicy": policy})
	n = o.Copy()
	n["path"] = resource.NewStringProperty("/svc/")
	d = diff(t, p, tRole, "relay", o, n)
	if strings.Join(d.GetReplaces(), ",") != "path" || d.GetDeleteBeforeReplace() {
		t.Fatalf("path change with auto-name: %v", d)
	}

	// In-place update.
	n = o.Copy()
	n["description"] = resource.NewStringProperty("x")
	d = diff(t, p, tRole, "relay", o, n)
	if d.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(d.GetReplaces()) != 0 || d.GetDeleteBeforeReplace() ||
		strings.Join(d.GetDiffs(), ",") != "description" {
		t.Fatalf("description change: %v", d)
	}

	// No change at all (secretness alone is not a change).
	n = o.Copy()
	n["assumeRolePolicy"] = resource.MakeSecret(n["assumeRolePolicy"])
	if d = diff(t, p, tRole, "relay", o, n); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("no-op diff: %v", d)
	}

	// Event source mapping: no name, so a new stream replaces create-before-delete.
	o = checked(t, p, tESM, "esm", map[string]any{"functionName": "relay", "eventSourceArn": "arn:s1",
		"startingPosition": "LATEST"})
	n = checked(t, p, tESM, "esm", map[string]any{"functionName": "relay", "eventSourceArn": "arn:s1",
		"startingPosition": "TRIM_HORIZON", "batchSize": 10})
	d = diff(t, p, tESM, "esm", o, n)
	if strings.Join(d.GetReplaces(), ",") != "startingPosition" || d.GetDeleteBeforeReplace() ||
		strings.Join(d.GetDiffs(), ",") != "batchSize,startingPosition" {
		t.Fatalf("ESM diff: %v", d)
	}
	if k := d.GetDetailedDiff()["batchSize"].GetKind(); k != pulumirpc.PropertyDiff_ADD {
		t.Fatalf("batchSize kind %v", k)
	}

	// An unknown new value against a known old one is a change (and replaces if ForceNew).
	n = o.Copy()
	n["eventSourceArn"] = resource.MakeComputed(resource.NewStringProperty(""))
	if d = diff(t, p, tESM, "esm", o, n); strings.Join(d.GetReplaces(), ",") != "eventSourceArn" {
		t.Fatalf("unknown ForceNew value: %v", d)
	}

	// region is ForceNew wherever the schema has it (TF 6 enhanced region support).
	o = checked(t, p, tStream, "s", map[string]any{"region": "eu-west-1"})
	n = o.Copy()
	n["region"] = resource.NewStringProperty("eu-central-1")
	if d = diff(t, p, tStream, "s", o, n); strings.Join(d.GetReplaces(), ",") != "region" {
		t.Fatalf("region change: %v", d)
	}
}

// --- Create / outputs ----------------------------------------------------------------------

func create(t *testing.T, p *awsProvider, token, name string, in map[string]any) (string, resource.PropertyMap, error) {
	t.Helper()
	ins := checked(t, p, token, name, in)
	resp, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: urn(token, name), Properties: mustStruct(t, ins)})
	if err != nil {
		return "", nil, err
	}
	return resp.GetId(), fromStruct(t, resp.GetProperties()), nil
}

func mustCreate(t *testing.T, p *awsProvider, token, name string, in map[string]any) (string, resource.PropertyMap) {
	t.Helper()
	id, out, err := create(t, p, token, name, in)
	if err != nil {
		t.Fatal(err)
	}
	return id, out
}

func mustDelete(t *testing.T, p *awsProvider, token, name, id string) {
	t.Helper()
	if _, err := p.Delete(ctx, &pulumirpc.DeleteRequest{Urn: urn(token, name), Id: id}); err != nil {
		t.Fatal(err)
	}
}

func wantOut(t *testing.T, out resource.PropertyMap, key, want string) {
	t.Helper()
	v := unsecret(out[resource.PropertyKey(key)])
	if !v.IsString() || v.StringValue() != want {
		t.Fatalf("output %s = %v, want %q", key, out[resource.PropertyKey(key)], want)
	}
}

func TestCreateOutputs(t *testing.T) {
	t.Setenv(envCallerAccount, "111111111111")
	p := configured(t, nil0(), "eu-west-1", map[string]any{"defaultTags": map[string]any{"tags": map[string]any{"env": "test"}}})
	policy := `{"Version":"2012-10-17","Statement":[]}`

	id, out := mustCreate(t, p, tRole, "relay", map[string]any{"name": "relay-role", "path": "/svc/",
		"assumeRolePolicy": policy, "tags": map[string]any{"app": "x"}})
	if id != "relay-role" {
		t.Fatalf("role id %q", id)
	}
	wantOut(t, out, "arn", "arn:aws:iam::111111111111:role/svc/relay-role")
	if !regexp.MustCompile(`^AROA[A-Z2-7]{17}$`).MatchString(out["uniqueId"].StringValue()) {
		t.Fatalf("uniqueId %v", out["uniqueId"])
	}
	if _, ok := out["region"]; ok {
		t.Fatalf("IAM role has no region output in the schema, got %v", out["region"])
	}
	if _, ok := out[defaultsKey]; ok {
		t.Fatalf("__defaults leaked into outputs")
	}
	tags := out["tagsAll"].ObjectValue()
	if tags["env"].StringValue() != "test" || tags["app"].StringValue() != "x" {
		t.Fatalf("tagsAll %v", out["tagsAll"])
	}

	id, out = mustCreate(t, p, tFunction, "relay", map[string]any{"role": "arn:aws:iam::1:role/r"})
	if !regexp.MustCompile(`^relay-[0-9a-f]{7}$`).MatchString(id) {
		t.Fatalf("function id %q", id)
	}
	fnArn := "arn:aws:lambda:eu-west-1:111111111111:function:" + id
	wantOut(t, out, "arn", fnArn)
	wantOut(t, out, "qualifiedArn", fnArn+":$LATEST")
	wantOut(t, out, "version", "$LATEST")
	wantOut(t, out, "invokeArn", "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/"+fnArn+"/invocations")
	wantOut(t, out, "region", "eu-west-1")

	id, out = mustCreate(t, p, tStream, "events", map[string]any{"name": "events", "region": "eu-central-1"})
	wantOut(t, out, "arn", "arn:aws:kinesis:eu-central-1:111111111111:stream/events")
	if id != "arn:aws:kinesis:eu-central-1:111111111111:stream/events" {
		t.Fatalf("stream id %q", id)
	}
	wantOut(t, out, "region", "eu-central-1")

	id, out = mustCreate(t, p, tQueue, "dlq", map[string]any{"name": "dlq"})
	wantOut(t, out, "arn", "arn:aws:sqs:eu-west-1:111111111111:dlq")
	wantOut(t, out, "url", "https://sqs.eu-west-1.amazonaws.com/111111111111/dlq")
	if id != "https://sqs.eu-west-1.amazonaws.com/111111111111/dlq" {
		t.Fatalf("queue id %q", id)
	}

	id, out = mustCreate(t, p, tLogGroup, "lg", map[string]any{"name": "/aws/lambda/relay"})
	wantOut(t, out, "arn", "arn:aws:logs:eu-west-1:111111111111:log-group:/aws/lambda/relay")
	if id != "/aws/lambda/relay" {
		t.Fatalf("log group id %q", id)
	}

	id, out = mustCreate(t, p, tKey, "key", map[string]any{"description": "k"})
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("key id %q", id)
	}
	wantOut(t, out, "keyId", id)
	wantOut(t, out, "arn", "arn:aws:kms:eu-west-1:111111111111:key/"+id)

	id, out = mustCreate(t, p, tSchedule, "tick", map[string]any{"name": "tick", "scheduleExpression": "rate(5 minutes)"})
	wantOut(t, out, "arn", "arn:aws:scheduler:eu-west-1:111111111111:schedule/default/tick")
	wantOut(t, out, "groupName", "default")
	if id != "default/tick" {
		t.Fatalf("schedule id %q", id)
	}

	id, out = mustCreate(t, p, tESM, "esm", map[string]any{"functionName": "relay",
		"eventSourceArn": "arn:aws:kinesis:eu-west-1:111111111111:stream/events"})
	wantOut(t, out, "uuid", id)
	wantOut(t, out, "arn", "arn:aws:lambda:eu-west-1:111111111111:event-source-mapping:"+id)
	wantOut(t, out, "functionArn", "arn:aws:lambda:eu-west-1:111111111111:function:relay")

	id, out = mustCreate(t, p, tBucket, "Artifacts", map[string]any{})
	if !regexp.MustCompile(`^artifacts-[0-9a-f]{7}$`).MatchString(id) {
		t.Fatalf("bucket id %q (want lower-cased auto-name)", id)
	}
	wantOut(t, out, "arn", "arn:aws:s3:::"+id)
	wantOut(t, out, "bucketRegionalDomainName", id+".s3.eu-west-1.amazonaws.com")
}

func TestCreateKeepsSecretsAndPreviewIsUnknown(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	in := fnInputs(nil)
	in["environment"] = resource.NewObjectProperty(resource.PropertyMap{
		"variables": resource.NewObjectProperty(resource.PropertyMap{
			"TOKEN": resource.MakeSecret(resource.NewStringProperty("s3cr3t")),
		}),
	})
	resp := check(t, p, tFunction, "fn", in)
	wantNoFailures(t, resp)

	prev, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: urn(tFunction, "fn"), Properties: resp.GetInputs(), Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	if prev.GetId() != "" {
		t.Fatalf("preview returned id %q", prev.GetId())
	}
	po := fromStruct(t, prev.GetProperties())
	if !po["arn"].IsComputed() || !po["invokeArn"].IsComputed() || po["name"].IsComputed() {
		t.Fatalf("preview outputs: arn=%v invokeArn=%v name=%v", po["arn"], po["invokeArn"], po["name"])
	}

	in["tags"] = resource.NewObjectProperty(resource.PropertyMap{
		"owner": resource.MakeSecret(resource.NewStringProperty("team-x")),
	})
	resp = check(t, p, tFunction, "fn", in)
	created, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: urn(tFunction, "fn"), Properties: resp.GetInputs()})
	if err != nil {
		t.Fatal(err)
	}
	out := fromStruct(t, created.GetProperties())
	tok := out["environment"].ObjectValue()["variables"].ObjectValue()["TOKEN"]
	if !tok.IsSecret() || tok.SecretValue().Element.StringValue() != "s3cr3t" {
		t.Fatalf("secret not preserved in outputs: %v", tok)
	}
	// A secret tag makes tagsAll secret (pulumi-aws#2791).
	if !out["tagsAll"].IsSecret() {
		t.Fatalf("tagsAll not secret although a tag is: %v", out["tagsAll"])
	}
}

// --- the world -------------------------------------------------------------------------------

func fileWorld(t *testing.T) *World {
	t.Helper()
	return NewWorld(filepath.Join(t.TempDir(), "world.json"))
}

func TestWorldRoleNamesAreGlobalPerAccount(t *testing.T) {
	w := fileWorld(t)
	policy := `{"Version":"2012-10-17","Statement":[]}`
	euWest := configured(t, w, "eu-west-1", nil)
	usEast := configured(t, NewWorld(w.path), "us-east-1", nil) // another process, same file
	id, _ := mustCreate(t, euWest, tRole, "a", map[string]any{"name": "relay", "assumeRolePolicy": policy})
	_, _, err := create(t, usEast, tRole, "b", map[string]any{"name": "relay", "assumeRolePolicy": policy})
	if err == nil || !strings.Contains(err.Error(), "EntityAlreadyExists: Role with name relay already exists.") {
		t.Fatalf("want EntityAlreadyExists, got %v", err)
	}
	// IAM names are case-insensitive.
	if _, _, err = create(t, usEast, tRole, "c", map[string]any{"name": "RELAY", "assumeRolePolicy": policy}); err == nil {
		t.Fatalf("RELAY should conflict with relay")
	}
	// Another account may use the name.
	t.Setenv(envCallerAccount, "222222222222")
	other := configured(t, w, "us-east-1", nil)
	mustCreate(t, other, tRole, "d", map[string]any{"name": "relay", "assumeRolePolicy": policy})
	t.Setenv(envCallerAccount, "")

	// Delete frees the name.
	mustDelete(t, euWest, tRole, "a", id)
	mustCreate(t, usEast, tRole, "b", map[string]any{"name": "relay", "assumeRolePolicy": policy})
}

func TestWorldOneMappingPerStreamAndFunction(t *testing.T) {
	w := fileWorld(t)
	p := configured(t, w, "eu-west-1", nil)
	stream := "arn:aws:kinesis:eu-west-1:123456789012:stream/events"
	id, _ := mustCreate(t, p, tESM, "old", map[string]any{"functionName": "relay", "eventSourceArn": stream})
	// The replacement of a mapping is created before the old one is deleted: Lambda refuses it,
	// also when the function is given by ARN.
	_, _, err := create(t, p, tESM, "new", map[string]any{
		"functionName": "arn:aws:lambda:eu-west-1:123456789012:function:relay", "eventSourceArn": stream,
		"startingPosition": "TRIM_HORIZON"})
	want := "ResourceConflictException: The event source arn (" + stream + ") and function (relay) provided " +
		"mapping already exists. Please update or delete the existing mapping with UUID " + id
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want %q, got %v", want, err)
	}
	// Another function on the same stream is fine.
	mustCreate(t, p, tESM, "other", map[string]any{"functionName": "audit", "eventSourceArn": stream})
	// After the delete, the mapping can be created.
	mustDelete(t, p, tESM, "old", id)
	mustCreate(t, p, tESM, "new", map[string]any{"functionName": "relay", "eventSourceArn": stream})
}

func TestWorldReadAfterDeleteAndUpdate(t *testing.T) {
	w := fileWorld(t)
	p := configured(t, w, "eu-west-1", nil)
	id, out := mustCreate(t, p, tQueue, "dlq", map[string]any{"name": "dlq", "visibilityTimeoutSeconds": 30})

	rd, err := p.Read(ctx, &pulumirpc.ReadRequest{Urn: urn(tQueue, "dlq"), Id: id, Properties: mustStruct(t, out)})
	if err != nil || rd.GetId() != id {
		t.Fatalf("read existing: %v %v", rd, err)
	}
	// The world file never holds secret values.
	secretive := resource.PropertyMap{"name": resource.NewStringProperty("q2"),
		"tags": resource.NewObjectProperty(resource.PropertyMap{
			"k": resource.MakeSecret(resource.NewStringProperty("hush"))})}
	ck := check(t, p, tQueue, "secretive", secretive)
	wantNoFailures(t, ck)
	if _, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: urn(tQueue, "secretive"), Properties: ck.GetInputs()}); err != nil {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(w.path); err != nil || strings.Contains(string(raw), "hush") {
		t.Fatalf("secret in the world file (err %v)", err)
	}
	// Same name, same attributes: CreateQueue is idempotent. Different attributes: refused.
	mustCreate(t, p, tQueue, "twin", map[string]any{"name": "dlq", "visibilityTimeoutSeconds": 30})
	if _, _, err := create(t, p, tQueue, "clash", map[string]any{"name": "dlq", "visibilityTimeoutSeconds": 60}); err == nil ||
		!strings.Contains(err.Error(), "QueueAlreadyExists") {
		t.Fatalf("want QueueAlreadyExists, got %v", err)
	}

	// Update keeps computed outputs and the id.
	news := checked(t, p, tQueue, "dlq", map[string]any{"name": "dlq", "visibilityTimeoutSeconds": 45})
	up, err := p.Update(ctx, &pulumirpc.UpdateRequest{Urn: urn(tQueue, "dlq"), Id: id, Olds: mustStruct(t, out),
		News: mustStruct(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	uo := fromStruct(t, up.GetProperties())
	wantOut(t, uo, "url", id)
	if uo["visibilityTimeoutSeconds"].NumberValue() != 45 {
		t.Fatalf("update outputs %v", uo)
	}

	mustDelete(t, p, tQueue, "dlq", id)
	rd, err = p.Read(ctx, &pulumirpc.ReadRequest{Urn: urn(tQueue, "dlq"), Id: id, Properties: mustStruct(t, uo)})
	if err != nil || rd.GetId() != "" {
		t.Fatalf("read after delete should report it gone: %v %v", rd, err)
	}
}

// --- provider configuration ----------------------------------------------------------------

func TestConfigureAllowedAccounts(t *testing.T) {
	t.Setenv(envCallerAccount, "111111111111")
	p := newProvider(fixtureSchema(t), nil0())
	_, err := p.Configure(ctx, &pulumirpc.ConfigureRequest{Args: props(t, map[string]any{
		"region": "eu-west-1", "allowedAccountIds": []any{"222222222222"}})})
	if err == nil || err.Error() != "AWS account ID not allowed: 111111111111" {
		t.Fatalf("want account not allowed, got %v", err)
	}
	// Stack config delivers lists as JSON strings.
	resp, err := p.Configure(ctx, &pulumirpc.ConfigureRequest{Args: props(t, map[string]any{
		"region": "eu-west-1", "allowedAccountIds": `["111111111111"]`}), AcceptSecrets: true})
	if err != nil || !resp.GetAcceptSecrets() || !resp.GetSupportsPreview() || !resp.GetAcceptResources() {
		t.Fatalf("configure: %v %v", resp, err)
	}
	// Unknown config during preview is fine.
	if _, err := p.Configure(ctx, &pulumirpc.ConfigureRequest{Args: mustStruct(t, resource.PropertyMap{
		"region": resource.MakeComputed(resource.NewStringProperty("")),
	})}); err != nil {
		t.Fatalf("unknown region: %v", err)
	}
}

func TestCheckConfig(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	p := newProvider(fixtureSchema(t), nil0())
	cc := func(m map[string]any) *pulumirpc.CheckResponse {
		resp, err := p.CheckConfig(ctx, &pulumirpc.CheckRequest{Urn: urn(providerToken, "p"), News: props(t, m)})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	wantNoFailures(t, cc(map[string]any{"region": "eu-west-1", "version": "7.51.1",
		"allowedAccountIds": `["1"]`, "maxRetries": "5", "skipCredentialsValidation": "true"}))
	wantFailure(t, cc(map[string]any{"region": "eu-west-1", "regoin": "x"}), "regoin",
		`pulumi:providers:aws: unknown property "regoin"`)
	wantFailure(t, cc(map[string]any{"region": "Europe"}), "region", "invalid AWS Region: Europe")
	wantFailure(t, cc(map[string]any{}), "region", "missing region information")
	wantFailure(t, cc(map[string]any{"region": "eu-west-1", "allowedAccountIds": "123"}), "allowedAccountIds",
		"expected array")
}

// --- schema loading ------------------------------------------------------------------------

func TestSchemaRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]string{
		write("lfs.json", "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 47000000\n"): "Git LFS pointer",
		write("text.json", "hello"):                            "not a JSON object",
		write("broken.json", `{"name": "aws", "resources": {`): "not valid JSON",
		write("other.json", `{"foo": 1}`):                      "does not look like a Pulumi package schema",
		filepath.Join(dir, "missing.json"):                     "does not exist",
	}
	for path, want := range cases {
		if _, err := LoadSchemaFile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want error containing %q, got %v", filepath.Base(path), want, err)
		}
	}
	s := fixtureSchema(t)
	info, err := newProvider(s, nil0()).GetPluginInfo(ctx, nil)
	if err != nil || info.GetVersion() != "7.51.1" {
		t.Fatalf("plugin info %v %v", info, err)
	}
	sch, err := newProvider(s, nil0()).GetSchema(ctx, &pulumirpc.GetSchemaRequest{})
	if err != nil || sch.GetSchema() != string(s.Raw) {
		t.Fatalf("GetSchema must return the schema as is")
	}
}

func nil0() *World { return NewWorld("") }

func TestPlainAndRedactSecretsAtAnyDepth(t *testing.T) {
	secret := resource.MakeSecret(resource.NewStringProperty("s3cr3t"))
	in := resource.PropertyMap{
		"top":    secret,
		"list":   resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("a"), secret}),
		"obj":    resource.NewObjectProperty(resource.PropertyMap{"inner": secret}),
		"out":    resource.NewOutputProperty(resource.Output{Element: resource.NewStringProperty("o"), Known: true, Secret: true}),
		"known":  resource.NewOutputProperty(resource.Output{Element: resource.NewStringProperty("k"), Known: true}),
		"later":  resource.NewOutputProperty(resource.Output{Known: false}),
		"number": resource.NewNumberProperty(1),
	}
	got := plain(in).Mappable()
	want := map[string]any{"top": "s3cr3t", "list": []any{"a", "s3cr3t"}, "obj": map[string]any{"inner": "s3cr3t"},
		"out": "o", "known": "k", "later": resource.MakeComputed(resource.NewStringProperty("")).Mappable(), "number": 1.0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plain:\n got %#v\nwant %#v", got, want)
	}
	var world map[string]any
	if err := json.Unmarshal(encodeOutputs(in), &world); err != nil {
		t.Fatal(err)
	}
	if s := string(encodeOutputs(in)); strings.Contains(s, "s3cr3t") || strings.Contains(s, `"o"`) {
		t.Fatalf("a secret reached the world file: %s", s)
	}
	if world["top"] != "[secret]" || world["out"] != "[secret]" || world["known"] != "k" {
		t.Fatalf("world: %v", world)
	}
}

// --- replacements of the bucket's settings and the alarm topic's policy and subscription -------

func TestSettingsOfABucketOrTopicReplaceWhenTheyMoveToAnotherOne(t *testing.T) {
	p := configured(t, nil0(), "eu-west-1", nil)
	policy := `{"Version":"2012-10-17","Statement":[]}`

	// A bucket's policy follows the bucket: another bucket is another policy resource. The policy
	// names no physical name of its own, so the replacement is created before the old one goes.
	o := checked(t, p, tBucketPolicy, "bp", map[string]any{"bucket": "old-bucket", "policy": policy})
	n := checked(t, p, tBucketPolicy, "bp", map[string]any{"bucket": "new-bucket", "policy": policy})
	if d := diff(t, p, tBucketPolicy, "bp", o, n); strings.Join(d.GetReplaces(), ",") != "bucket" ||
		d.GetDeleteBeforeReplace() {
		t.Fatalf("bucket policy on another bucket: %v", d)
	}
	// Its document is updated in place (PutBucketPolicy).
	n = checked(t, p, tBucketPolicy, "bp", map[string]any{"bucket": "old-bucket", "policy": `{"Version":"2012-10-17"}`})
	if d := diff(t, p, tBucketPolicy, "bp", o, n); len(d.GetReplaces()) != 0 || strings.Join(d.GetDiffs(), ",") != "policy" {
		t.Fatalf("bucket policy document change: %v", d)
	}
	o = checked(t, p, tPublicAccess, "pab", map[string]any{"bucket": "old-bucket", "blockPublicAcls": true})
	n = checked(t, p, tPublicAccess, "pab", map[string]any{"bucket": "new-bucket", "blockPublicAcls": false})
	if d := diff(t, p, tPublicAccess, "pab", o, n); strings.Join(d.GetReplaces(), ",") != "bucket" ||
		strings.Join(d.GetDiffs(), ",") != "blockPublicAcls,bucket" {
		t.Fatalf("public access block on another bucket: %v", d)
	}

	o = checked(t, p, tTopicPolicy, "tp", map[string]any{"arn": "arn:aws:sns:eu-west-1:1:a", "policy": policy})
	n = checked(t, p, tTopicPolicy, "tp", map[string]any{"arn": "arn:aws:sns:eu-west-1:1:b", "policy": policy})
	if d := diff(t, p, tTopicPolicy, "tp", o, n); strings.Join(d.GetReplaces(), ",") != "arn" {
		t.Fatalf("topic policy on another topic: %v", d)
	}

	// A new address is a new subscription (unconfirmed: SNS mails a confirmation link again).
	sub := func(endpoint, protocol, topic string) resource.PropertyMap {
		return checked(t, p, tSubscription, "mail", map[string]any{"endpoint": endpoint, "protocol": protocol, "topic": topic})
	}
	old := sub("a@example.com", "email", "arn:aws:sns:eu-west-1:1:alarms")
	for key, changed := range map[string]resource.PropertyMap{
		"endpoint": sub("b@example.com", "email", "arn:aws:sns:eu-west-1:1:alarms"),
		"protocol": sub("a@example.com", "email-json", "arn:aws:sns:eu-west-1:1:alarms"),
		"topic":    sub("a@example.com", "email", "arn:aws:sns:eu-west-1:1:other"),
	} {
		d := diff(t, p, tSubscription, "mail", old, changed)
		if strings.Join(d.GetReplaces(), ",") != key || d.GetDeleteBeforeReplace() {
			t.Fatalf("subscription %s change: %v", key, d)
		}
	}
	raw := checked(t, p, tSubscription, "mail", map[string]any{"endpoint": "a@example.com", "protocol": "email",
		"topic": "arn:aws:sns:eu-west-1:1:alarms", "rawMessageDelivery": true})
	if d := diff(t, p, tSubscription, "mail", old, raw); len(d.GetReplaces()) != 0 {
		t.Fatalf("a subscription attribute is updated in place: %v", d)
	}
}

// --- objects in buckets: S3 deletes only an empty bucket ---------------------------------------

func deleteWithState(p *awsProvider, token, name, id string, state resource.PropertyMap) error {
	s, err := plugin.MarshalProperties(state, plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true})
	if err != nil {
		return err
	}
	_, err = p.Delete(ctx, &pulumirpc.DeleteRequest{Urn: urn(token, name), Id: id, Properties: s})
	return err
}

func TestANonEmptyBucketIsDeletedOnlyWithForceDestroyInItsState(t *testing.T) {
	w := fileWorld(t)
	p := configured(t, w, "eu-west-1", nil)
	id, state := mustCreate(t, p, tBucket, "dl", map[string]any{"bucket": "dead-letters", "forceDestroy": false})
	key := "relay/rejected_by_target/shardId-000000000000/1.json"
	for range 2 { // the same key twice is one object, as in S3
		if err := w.PutObject("dead-letters", key); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.PutObject("no-such-bucket", key); err == nil || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Fatalf("put into a missing bucket: %v", err)
	}

	// S3's refusal, as the provider reports it; the bucket and its object stay.
	wantRefused := func(state resource.PropertyMap) {
		t.Helper()
		err := deleteWithState(p, tBucket, "dl", id, state)
		want := "deleting S3 Bucket (dead-letters): operation error S3: DeleteBucket, https response error " +
			"StatusCode: 409, api error BucketNotEmpty: The bucket you tried to delete is not empty"
		if err == nil || err.Error() != want {
			t.Fatalf("want %q, got %v", want, err)
		}
		if keys, _ := w.Objects("dead-letters"); !reflect.DeepEqual(keys, []string{key}) {
			t.Fatalf("objects after a refused delete: %v", keys)
		}
	}
	wantRefused(state)

	// The program now says forceDestroy, but the state the engine deletes with does not (no `up`
	// has recorded it): still refused, as terraform-provider-aws reads it from the state.
	news := checked(t, p, tBucket, "dl", map[string]any{"bucket": "dead-letters", "forceDestroy": true})
	wantRefused(state)

	// An `up` records it (an update in place, the object stays); then the delete empties the
	// bucket and deletes it.
	olds := checked(t, p, tBucket, "dl", map[string]any{"bucket": "dead-letters", "forceDestroy": false})
	if d := diff(t, p, tBucket, "dl", olds, news); len(d.GetReplaces()) != 0 {
		t.Fatalf("forceDestroy must update in place: %v", d)
	}
	up, err := p.Update(ctx, &pulumirpc.UpdateRequest{Urn: urn(tBucket, "dl"), Id: id, Olds: mustStruct(t, state),
		News: mustStruct(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := w.Objects("dead-letters"); len(keys) != 1 {
		t.Fatalf("an update lost the bucket's objects: %v", keys)
	}
	if err := deleteWithState(p, tBucket, "dl", id, fromStruct(t, up.GetProperties())); err != nil {
		t.Fatalf("delete with forceDestroy in the state: %v", err)
	}
	if keys, _ := w.Objects("dead-letters"); len(keys) != 0 {
		t.Fatalf("objects left after the bucket was deleted: %v", keys)
	}
	if _, entry, _ := w.Find(tBucket, id, defaultCallerAccount); entry != nil {
		t.Fatalf("bucket still in the world: %v", entry)
	}

	// An empty bucket needs no forceDestroy.
	id, state = mustCreate(t, p, tBucket, "empty", map[string]any{"bucket": "empty-bucket"})
	if err := deleteWithState(p, tBucket, "empty", id, state); err != nil {
		t.Fatalf("empty bucket: %v", err)
	}
}

// --- DynamoDB deletion protection: the table refuses DeleteTable while it is on ----------------

func TestAProtectedTableIsDeletedOnlyOnceAnUpdateTurnedProtectionOff(t *testing.T) {
	w := fileWorld(t)
	p := configured(t, w, "eu-west-1", nil)
	table := func(protected bool) map[string]any {
		return map[string]any{"name": "p-idempotency", "hashKey": "id", "billingMode": "PAY_PER_REQUEST",
			"attributes": []any{map[string]any{"name": "id", "type": "S"}}, "deletionProtectionEnabled": protected}
	}
	id, state := mustCreate(t, p, tTable, "idem", table(true))
	if id != "p-idempotency" || str(state, "arn") != "arn:aws:dynamodb:eu-west-1:"+defaultCallerAccount+":table/p-idempotency" {
		t.Fatalf("id %q, arn %q", id, str(state, "arn"))
	}
	want := "deleting DynamoDB Table (p-idempotency): operation error DynamoDB: DeleteTable, https response error " +
		"StatusCode: 400, api error ValidationException: Resource cannot be deleted as it is currently " +
		"protected against deletion. Disable deletion protection first."
	if err := deleteWithState(p, tTable, "idem", id, state); err == nil || err.Error() != want {
		t.Fatalf("want %q, got %v", want, err)
	}
	if _, entry, _ := w.Find(tTable, id, defaultCallerAccount); entry == nil {
		t.Fatal("a refused delete removed the table from the world")
	}

	// Turning protection off is an update in place (UpdateTable); then the delete goes through.
	olds := checked(t, p, tTable, "idem", table(true))
	news := checked(t, p, tTable, "idem", table(false))
	if d := diff(t, p, tTable, "idem", olds, news); len(d.GetReplaces()) != 0 {
		t.Fatalf("deletionProtectionEnabled must update in place: %v", d)
	}
	up, err := p.Update(ctx, &pulumirpc.UpdateRequest{Urn: urn(tTable, "idem"), Id: id, Olds: mustStruct(t, state),
		News: mustStruct(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	if err := deleteWithState(p, tTable, "idem", id, fromStruct(t, up.GetProperties())); err != nil {
		t.Fatalf("delete after protection was turned off: %v", err)
	}
	if _, entry, _ := w.Find(tTable, id, defaultCallerAccount); entry != nil {
		t.Fatalf("table still in the world: %v", entry)
	}

	// A table created without protection needs nothing first; its key schema replaces it.
	id, state = mustCreate(t, p, tTable, "plain", map[string]any{"name": "plain", "hashKey": "id"})
	if d := diff(t, p, tTable, "plain", checked(t, p, tTable, "plain", map[string]any{"name": "plain", "hashKey": "id"}),
		checked(t, p, tTable, "plain", map[string]any{"name": "plain", "hashKey": "key"})); len(d.GetReplaces()) == 0 {
		t.Fatalf("a hashKey change must replace the table: %v", d)
	}
	if err := deleteWithState(p, tTable, "plain", id, state); err != nil {
		t.Fatalf("unprotected table: %v", err)
	}
}

func TestWorldCommandsWriteAndListObjects(t *testing.T) {
	w := fileWorld(t)
	p := configured(t, w, "eu-west-1", nil)
	mustCreate(t, p, tBucket, "dl", map[string]any{"bucket": "dead-letters"})
	var out strings.Builder
	for _, args := range [][]string{
		{"put-object", "dead-letters", "relay/b.json"},
		{"put-object", "dead-letters", "aws/lambda/a"},
		{"list-objects", "dead-letters"},
	} {
		if err := worldCommand(args, w.path, &out); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if out.String() != "aws/lambda/a\nrelay/b.json\n" {
		t.Fatalf("list-objects printed %q", out.String())
	}
	for args, want := range map[string]string{
		"put-object missing k":    "NoSuchBucket",
		"put-object dead-letters": "usage: pulumi-resource-aws put-object",
		"list-objects":            "usage: pulumi-resource-aws put-object",
	} {
		if err := worldCommand(strings.Fields(args), w.path, &out); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: want %q, got %v", args, want, err)
		}
	}
	if err := worldCommand([]string{"list-objects", "dead-letters"}, "", &out); err == nil ||
		!strings.Contains(err.Error(), envWorld) {
		t.Fatalf("without a world file: %v", err)
	}
}

// --- the ForceNew table covers the program --------------------------------------------------------

// repoRoot is the repository this package sits in (tools/pulumi/standin).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// programTypes renders both example stacks with the Pulumi program (the optional alarm e-mail
// subscription included) and returns every resource type they declare, as canonical tokens.
func programTypes(t *testing.T, infra string) map[string][]string {
	t.Helper()
	types := map[string][]string{}
	for _, stack := range []string{"source", "target"} {
		cmd := exec.Command(infra, "render", "--stack", stack, "--stack-file", "Pulumi."+stack+".yaml",
			"--set", "externalId=example-external-id-0123456789", "--set", "alarmEmail=alarms@example.com")
		cmd.Dir = repoRoot(t)
		raw, err := cmd.Output()
		if err != nil {
			t.Fatalf("infra render --stack %s: %v", stack, err)
		}
		var template struct {
			Resources map[string]struct {
				Type string `json:"type"`
			} `json:"resources"`
		}
		if err := json.Unmarshal(raw, &template); err != nil {
			t.Fatal(err)
		}
		for logical, r := range template.Resources {
			if strings.HasPrefix(r.Type, "pulumi:") { // the provider itself, a StackReference
				continue
			}
			token := canonicalToken(r.Type)
			types[token] = append(types[token], stack+"/"+logical)
		}
	}
	return types
}

// canonicalToken turns a YAML short token (`aws:s3:Bucket`) into the schema's
// (`aws:s3/bucket:Bucket`), as the YAML runtime resolves it.
func canonicalToken(token string) string {
	parts := strings.Split(token, ":")
	if len(parts) != 3 || strings.Contains(parts[1], "/") {
		return token
	}
	return parts[0] + ":" + parts[1] + "/" + lowerFirst(parts[2]) + ":" + parts[2]
}

func TestForceNewCoversEveryTypeTheProgramDeclares(t *testing.T) {
	root := repoRoot(t)
	infra := filepath.Join(root, "target", "debug", "infra")
	if _, err := os.Stat(infra); err != nil {
		t.Fatalf("%s is missing: build it with `cargo build -p infra` (make check-pulumi does)", infra)
	}
	types := programTypes(t, infra)
	if len(types) < 19 {
		t.Fatalf("only %d resource types rendered: %v", len(types), types)
	}
	for token, declared := range types {
		if _, ok := forceNew[token]; !ok {
			t.Errorf("%s (declared as %v) has no entry in forceNew (forcenew.go): read its "+
				"terraform-provider-aws schema and add the ForceNew attributes, or an empty entry with "+
				"the citation", token, declared)
		}
	}

	// Every property the table names is an input of its type in the pinned schema (a misspelt or
	// renamed property would never match a diff).
	version, err := exec.Command(infra, "--pulumi-aws-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, ".cache", "pulumi-aws", "schema-"+strings.TrimSpace(string(version))+".json")
	schema, err := LoadSchemaFile(path)
	if err != nil {
		t.Fatalf("%v (make check-pulumi derives it from the pinned pulumi-aws wheel)", err)
	}
	for token, properties := range forceNew {
		spec, err := schema.Resource(token)
		if err != nil || spec == nil {
			t.Errorf("forceNew names %s, which the pinned schema does not have (%v)", token, err)
			continue
		}
		for _, property := range properties {
			if _, ok := spec.InputProperties[property]; !ok {
				t.Errorf("forceNew[%s] names %q, which is not an input of that type", token, property)
			}
		}
	}
}

func TestCanonicalTokens(t *testing.T) {
	for short, want := range map[string]string{
		"aws:s3:Bucket":                "aws:s3/bucket:Bucket",
		"aws:sns:TopicSubscription":    "aws:sns/topicSubscription:TopicSubscription",
		"aws:lambda/function:Function": "aws:lambda/function:Function",
		"pulumi:providers:aws":         "pulumi:providers/aws:aws",
	} {
		if got := canonicalToken(short); got != want {
			t.Errorf("canonicalToken(%q) = %q, want %q", short, got, want)
		}
	}
}
