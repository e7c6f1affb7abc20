package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	envCallerAccount     = "PULUMI_AWS_STANDIN_CALLER_ACCOUNT"
	defaultCallerAccount = "123456789012"
	providerToken        = "pulumi:providers:aws"
)

// awsProvider is the stand-in `aws` resource provider.
type awsProvider struct {
	pulumirpc.UnimplementedResourceProviderServer

	schema *Schema
	world  *World

	mu            sync.RWMutex
	configured    bool
	region        string // "" with regionUnknown during a preview whose config is not known yet
	regionUnknown bool
	account       string
	defaultTags   map[string]string
	// defaultTagsSecret: some provider defaultTags value is secret, so every tagsAll is.
	defaultTagsSecret bool
	acceptSecrets     bool
}

func newProvider(s *Schema, w *World) *awsProvider {
	return &awsProvider{schema: s, world: w, acceptSecrets: true}
}

func callerAccount() string {
	if a := os.Getenv(envCallerAccount); a != "" {
		return a
	}
	return defaultCallerAccount
}

// --- (un)marshalling -------------------------------------------------------------------------

// unmarshal keeps unknowns and secrets: what the program sent, faithfully.
func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, plugin.MarshalOptions{
		KeepUnknowns: true, KeepSecrets: true, KeepResources: true, SkipNulls: true,
	})
}

// plain drops secret wrappers (for comparisons and for computing physical names).
func plain(m resource.PropertyMap) resource.PropertyMap {
	return rewriteMap(m, unsecret)
}

// unsecret is plain for one value.
func unsecret(v resource.PropertyValue) resource.PropertyValue {
	return rewrite(v, unsecret)
}

// redactSecrets replaces every secret value with the string "[secret]".
func redactSecrets(m resource.PropertyMap) resource.PropertyMap {
	return rewriteMap(m, func(resource.PropertyValue) resource.PropertyValue {
		return resource.NewStringProperty("[secret]")
	})
}

// rewriteMap copies m with every secret value, at any depth, replaced by secret(the value inside).
// An output is replaced by its element when known (a secret output's element counts as a
// secret), by a computed string when not.
func rewriteMap(m resource.PropertyMap, secret func(resource.PropertyValue) resource.PropertyValue) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		out[k] = rewrite(v, secret)
	}
	return out
}

func rewrite(v resource.PropertyValue, secret func(resource.PropertyValue) resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return secret(v.SecretValue().Element)
	case v.IsArray():
		arr := v.ArrayValue()
		out := make([]resource.PropertyValue, len(arr))
		for i, e := range arr {
			out[i] = rewrite(e, secret)
		}
		return resource.NewArrayProperty(out)
	case v.IsObject():
		return resource.NewObjectProperty(rewriteMap(v.ObjectValue(), secret))
	case v.IsOutput():
		o := v.OutputValue()
		if !o.Known {
			return resource.MakeComputed(resource.NewStringProperty(""))
		}
		if o.Secret {
			return secret(o.Element)
		}
		return rewrite(o.Element, secret)
	}
	return v
}

func (p *awsProvider) marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	p.mu.RLock()
	secrets := p.acceptSecrets
	p.mu.RUnlock()
	return plugin.MarshalProperties(m, plugin.MarshalOptions{
		KeepUnknowns: true, KeepSecrets: secrets, KeepResources: true,
	})
}

// encodeOutputs records outputs in the world with secret values redacted: the world file is not
// encrypted, and nothing in it needs them.
func encodeOutputs(m resource.PropertyMap) json.RawMessage {
	b, err := json.Marshal(plain(redactSecrets(m)).Mappable())
	if err != nil {
		return nil
	}
	return b
}

func decodeOutputs(raw json.RawMessage) (resource.PropertyMap, error) {
	if len(raw) == 0 {
		return resource.PropertyMap{}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return resource.NewPropertyMapFromMap(m), nil
}

func userKeys(m resource.PropertyMap) []string {
	var keys []string
	for _, k := range sortedKeys(m) {
		if !isReservedKey(k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func urnParts(urn, reqType, reqName string) (token, name string) {
	token, name = reqType, reqName
	if urn != "" {
		u := resource.URN(urn)
		if u.IsValid() {
			if token == "" {
				token = string(u.Type())
			}
			if name == "" {
				name = u.Name()
			}
		}
	}
	return token, name
}

func (p *awsProvider) resourceSpec(token string) (*ResourceSpec, error) {
	spec, err := p.schema.Resource(token)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if spec == nil {
		return nil, status.Errorf(codes.InvalidArgument,
			"unknown resource type %q: the pulumi-aws %s schema served by the stand-in has no such resource",
			token, p.schema.pluginVersion())
	}
	return spec, nil
}

// --- plugin plumbing -----------------------------------------------------------------------

func (p *awsProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: p.schema.pluginVersion()}, nil
}

func (p *awsProvider) GetSchema(_ context.Context, req *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	if req.GetSubpackageName() != "" {
		return nil, status.Errorf(codes.InvalidArgument, "the aws provider has no sub-package %q",
			req.GetSubpackageName())
	}
	return &pulumirpc.GetSchemaResponse{Schema: string(p.schema.Raw)}, nil
}

func (p *awsProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Attach is used when the provider runs detached (PULUMI_DEBUG_PROVIDERS); the stand-in never
// calls back into the engine, so there is nothing to connect.
func (p *awsProvider) Attach(context.Context, *pulumirpc.PluginAttach) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// GetMapping/GetMappings serve `pulumi convert`; the stand-in has no Terraform mappings.
func (p *awsProvider) GetMapping(context.Context, *pulumirpc.GetMappingRequest) (*pulumirpc.GetMappingResponse, error) {
	return &pulumirpc.GetMappingResponse{}, nil
}

func (p *awsProvider) GetMappings(context.Context, *pulumirpc.GetMappingsRequest) (*pulumirpc.GetMappingsResponse, error) {
	return &pulumirpc.GetMappingsResponse{}, nil
}

// Handshake, Parameterize, Call, Construct and List stay Unimplemented (embedded): the engine
// treats an Unimplemented Handshake as "old provider" and falls back to Configure's flags.

// --- provider configuration ----------------------------------------------------------------

var regionRe = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

// configSkipKeys are provider inputs the engine adds itself.
var configSkipKeys = map[string]bool{"version": true, "pluginDownloadURL": true}

func (p *awsProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	c := &checker{schema: p.schema, owner: providerToken, lenientStrings: true}
	c.checkObject("", news, p.schema.Provider.InputProperties, nil, configSkipKeys)
	if r, ok := news["region"]; ok && !unsecret(r).IsComputed() {
		if s := unsecret(r); s.IsString() && !regionRe.MatchString(s.StringValue()) {
			c.fail("region", "invalid AWS Region: %s", s.StringValue())
		}
	} else if !ok && envRegion() == "" {
		c.fail("region", "missing region information: set it with `pulumi config set aws:region <region>` "+
			"(or the provider's `region` input, or AWS_REGION)")
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: c.failures}, nil
}

func envRegion() string {
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	return os.Getenv("AWS_DEFAULT_REGION")
}

// DiffConfig never asks for a provider replacement: pulumi-aws 7 removed the cascading replace on
// region changes (pulumi/pulumi-aws#5656, #5652: "the new AWS v7 ... removes the cascading replace
// logic entirely"); resources carry their own `region` instead.
func (p *awsProvider) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds := req.GetOldInputs()
	if olds == nil {
		olds = req.GetOlds()
	}
	o, err := unmarshal(olds)
	if err != nil {
		return nil, err
	}
	n, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	diffs := changedKeys(plain(o), plain(n), nil)
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	if len(diffs) > 0 {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
		resp.Diffs = diffs
	}
	return resp, nil
}

func stringList(v resource.PropertyValue) []string {
	v = unsecret(v)
	if v.IsString() {
		if pv, ok := parseJSONString(v.StringValue()); ok {
			v = pv
		}
	}
	var out []string
	if v.IsArray() {
		for _, e := range v.ArrayValue() {
			if e = unsecret(e); e.IsString() {
				out = append(out, e.StringValue())
			}
		}
	}
	return out
}

func (p *awsProvider) Configure(ctx context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	var cfg resource.PropertyMap
	if req.GetArgs() != nil {
		var err error
		if cfg, err = unmarshal(req.GetArgs()); err != nil {
			return nil, err
		}
	} else {
		// Legacy form: "aws:config:region" / "aws:region" -> string (JSON for structured values).
		cfg = resource.PropertyMap{}
		for k, v := range req.GetVariables() {
			k = strings.TrimPrefix(strings.TrimPrefix(k, "aws:config:"), "aws:")
			cfg[resource.PropertyKey(k)] = resource.NewStringProperty(v)
		}
	}
	defaultTagsSecret := cfg["defaultTags"].ContainsSecrets()
	cfg = plain(cfg)

	region, regionUnknown := "", false
	if r, ok := cfg["region"]; ok {
		switch {
		case r.IsComputed():
			regionUnknown = true
		case r.IsString():
			region = r.StringValue()
		}
	}
	if region == "" && !regionUnknown {
		region = envRegion()
	}
	if region == "" && !regionUnknown {
		return nil, fmt.Errorf("missing region information: set it with `pulumi config set aws:region <region>`")
	}

	account, err := resolveCallerAccount(ctx, cfg, region)
	if err != nil {
		return nil, err
	}
	if v, ok := cfg["allowedAccountIds"]; ok && !v.IsComputed() {
		if allowed := stringList(v); len(allowed) > 0 && !contains(allowed, account) {
			// terraform-provider-aws internal/conns: "AWS account ID not allowed: %s"
			return nil, fmt.Errorf("AWS account ID not allowed: %s", account)
		}
	}
	if v, ok := cfg["forbiddenAccountIds"]; ok && !v.IsComputed() {
		if contains(stringList(v), account) {
			return nil, fmt.Errorf("AWS account ID not allowed: %s", account)
		}
	}

	var defaultTags map[string]string
	if dt, ok := cfg["defaultTags"]; ok {
		if dt.IsString() {
			if pv, ok := parseJSONString(dt.StringValue()); ok {
				dt = pv
			}
		}
		if dt.IsObject() {
			if tags, ok := dt.ObjectValue()["tags"]; ok && tags.IsObject() {
				defaultTags = map[string]string{}
				for k, v := range tags.ObjectValue() {
					if v.IsString() {
						defaultTags[string(k)] = v.StringValue()
					}
				}
			}
		}
	}

	p.mu.Lock()
	p.configured = true
	p.region, p.regionUnknown = region, regionUnknown
	p.account = account
	p.defaultTags = defaultTags
	p.defaultTagsSecret = defaultTagsSecret
	p.acceptSecrets = req.GetAcceptSecrets()
	p.mu.Unlock()

	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, AcceptResources: true, SupportsPreview: true}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *awsProvider) env(in resource.PropertyMap) awsEnv {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e := awsEnv{account: p.account, region: p.region, defaultTags: p.defaultTags}
	if e.account == "" {
		e.account = callerAccount()
	}
	if r := str(in, regionProperty); r != "" {
		e.region = r
	}
	return e
}

// --- resources -------------------------------------------------------------------------------

func (p *awsProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	token, logical := urnParts(req.GetUrn(), req.GetType(), req.GetName())
	if token == providerToken {
		return p.CheckConfig(context.Background(), req)
	}
	spec, err := p.resourceSpec(token)
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	c := &checker{schema: p.schema, owner: token}
	c.checkObject("", news, spec.InputProperties, spec.RequiredInputs, nil)

	inputs := news.Copy()
	applyAutoname(token, spec, logical, req.GetRandomSeed(), inputs, olds)
	out, err := p.marshal(inputs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: out, Failures: c.failures}, nil
}

const defaultsKey = "__defaults"

// applyAutoname reproduces pulumi-terraform-bridge's Check: an auto-named property the program left
// unset gets "<logical name>-<7 random hex>" (derived from the engine's random seed), or keeps the
// previous auto-name, and every property filled in that way is listed in `__defaults`
// (pkg/tfbridge/schema.go applyDefaults; info.AutoName uses Randlen 7). A set ConflictsWith prefix
// (namePrefix, bucketPrefix) suppresses the auto-name, as in the bridge.
func applyAutoname(token string, spec *ResourceSpec, logical string, seed []byte,
	inputs, olds resource.PropertyMap,
) {
	defaults := []resource.PropertyValue{}
	defer func() { inputs[defaultsKey] = resource.NewArrayProperty(defaults) }()

	rule := autonameRule(token, spec)
	if rule == nil {
		return
	}
	if _, ok := spec.InputProperties[rule.prop]; !ok {
		return
	}
	key := resource.PropertyKey(rule.prop)
	if v, ok := inputs[key]; ok && !v.IsNull() {
		return // set by the program (possibly unknown): not a default
	}
	if rule.prefix != "" {
		if v, ok := inputs[resource.PropertyKey(rule.prefix)]; ok && !v.IsNull() {
			return
		}
	}
	// Reuse the previous auto-name unless the old inputs say it was not a default.
	if old, ok := olds[key]; ok && old.IsString() && old.StringValue() != "" {
		useOld := true
		if od, ok := olds[defaultsKey]; ok && od.IsArray() {
			useOld = false
			for _, d := range od.ArrayValue() {
				if d.IsString() && d.StringValue() == rule.prop {
					useOld = true
				}
			}
		}
		if useOld {
			inputs[key] = old
			defaults = append(defaults, resource.NewStringProperty(rule.prop))
			return
		}
	}
	inputs[key] = resource.NewStringProperty(autoName(logical, seed, rule, inputs))
	defaults = append(defaults, resource.NewStringProperty(rule.prop))
}

func autoName(logical string, seed []byte, rule *nameRule, inputs resource.PropertyMap) string {
	const randLen = 7
	maxLen := rule.maxLen
	suffix := ""
	if rule.fifoProp != "" && boolean(inputs, rule.fifoProp) {
		suffix = ".fifo"
		maxLen -= len(suffix)
	}
	prefix := logical
	if rule.lower {
		prefix = strings.ToLower(prefix)
	}
	if len(prefix)+1+randLen > maxLen {
		prefix = prefix[:maxLen-1-randLen]
	}
	name, err := resource.NewUniqueName(seed, prefix+"-", randLen, maxLen, nil)
	if err != nil {
		name = prefix + "-" + randomHex(randLen)
	}
	return name + suffix
}

// changedKeys lists the top-level user keys whose values differ. An unknown new value counts as a
// change (the bridge cannot prove it equal); secretness alone is not a change.
func changedKeys(olds, news resource.PropertyMap, ignore map[string]bool) []string {
	set := map[string]bool{}
	for _, k := range userKeys(olds) {
		set[k] = true
	}
	for _, k := range userKeys(news) {
		set[k] = true
	}
	var out []string
	for k := range set {
		if ignore[k] {
			continue
		}
		o, n := olds[resource.PropertyKey(k)], news[resource.PropertyKey(k)]
		if o.IsNull() && n.IsNull() {
			continue
		}
		if n.ContainsUnknowns() || !o.DeepEquals(n) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func (p *awsProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	token, _ := urnParts(req.GetUrn(), req.GetType(), req.GetName())
	spec, err := p.resourceSpec(token)
	if err != nil {
		return nil, err
	}
	var olds resource.PropertyMap
	if req.GetOldInputs() != nil {
		if olds, err = unmarshal(req.GetOldInputs()); err != nil {
			return nil, err
		}
	} else {
		// Very old states have no inputs: compare the input properties of the old outputs.
		outs, err := unmarshal(req.GetOlds())
		if err != nil {
			return nil, err
		}
		olds = resource.PropertyMap{}
		for k, v := range outs {
			if _, ok := spec.InputProperties[string(k)]; ok {
				olds[k] = v
			}
		}
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	ignore := map[string]bool{}
	for _, path := range req.GetIgnoreChanges() {
		ignore[path] = true
	}
	po, pn := plain(olds), plain(news)
	diffs := changedKeys(po, pn, ignore)
	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff: true,
	}
	for _, k := range diffs {
		replace := replacesOnChange(token, spec, k)
		if replace {
			resp.Replaces = append(resp.Replaces, k)
		}
		resp.DetailedDiff[k] = &pulumirpc.PropertyDiff{
			Kind:      diffKind(po[resource.PropertyKey(k)], pn[resource.PropertyKey(k)], replace),
			InputDiff: true,
		}
	}
	if len(diffs) > 0 {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
		resp.Diffs = diffs
	}
	resp.DeleteBeforeReplace = len(resp.Replaces) > 0 && nameRequiresDeleteBeforeReplace(token, spec, news)
	return resp, nil
}

func diffKind(o, n resource.PropertyValue, replace bool) pulumirpc.PropertyDiff_Kind {
	switch {
	case o.IsNull():
		if replace {
			return pulumirpc.PropertyDiff_ADD_REPLACE
		}
		return pulumirpc.PropertyDiff_ADD
	case n.IsNull():
		if replace {
			return pulumirpc.PropertyDiff_DELETE_REPLACE
		}
		return pulumirpc.PropertyDiff_DELETE
	}
	if replace {
		return pulumirpc.PropertyDiff_UPDATE_REPLACE
	}
	return pulumirpc.PropertyDiff_UPDATE
}

// nameRequiresDeleteBeforeReplace restates pulumi-terraform-bridge pkg/tfbridge/schema.go
// nameRequiresDeleteBeforeReplace, used by Provider.Diff (pkg/tfbridge/provider.go):
//
//	deleteBeforeReplace := len(replaces) > 0 &&
//	    (res.Schema.DeleteBeforeReplace || nameRequiresDeleteBeforeReplace(news, olds, schema, res.Schema))
//
// It looks at the checked news: if they carry no `__defaults` list the resource is considered
// auto-named (false); otherwise it returns true when some auto-named field (info.AutoName, e.g.
// `name`) is present in news but NOT listed in `__defaults`, i.e. the program fixed the physical
// name, so the replacement could not be created next to the old one. (The bridge's other branch,
// ResourceInfo.UniqueNameFields, is not used by the types here.) Resources with no auto-named field
// (an event source mapping) therefore stay create-before-delete.
func nameRequiresDeleteBeforeReplace(token string, spec *ResourceSpec, news resource.PropertyMap) bool {
	rule := autonameRule(token, spec)
	if rule == nil {
		return false
	}
	defaults, ok := news[defaultsKey]
	if !ok || !defaults.IsArray() {
		return false
	}
	v, ok := news[resource.PropertyKey(rule.prop)]
	if !ok || v.IsNull() {
		return false
	}
	for _, d := range defaults.ArrayValue() {
		if d.IsString() && d.StringValue() == rule.prop {
			return false
		}
	}
	return true
}

// outputsOf builds the outputs: the inputs (secrets kept), minus bookkeeping keys, plus every
// computed value that is a schema output of the type and not an input.
// pendingOutputs is what a preview reports for each output of the schema: its old value where
// the resource has one (an update), otherwise unknown until the resource exists.
func pendingOutputs(spec *ResourceSpec, olds resource.PropertyMap) resource.PropertyMap {
	pending := resource.PropertyMap{}
	for k := range spec.Properties {
		key := resource.PropertyKey(k)
		if v, ok := olds[key]; ok {
			pending[key] = v
		} else {
			pending[key] = resource.MakeComputed(resource.NewStringProperty(""))
		}
	}
	return pending
}

func outputsOf(spec *ResourceSpec, inputs, computed resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range inputs {
		if !isReservedKey(string(k)) {
			out[k] = v
		}
	}
	for k, v := range computed {
		if _, isOutput := spec.Properties[string(k)]; !isOutput {
			continue
		}
		if cur, ok := out[k]; ok && !cur.IsNull() && !cur.ContainsUnknowns() {
			continue
		}
		out[k] = v
	}
	return out
}

// worldRegion is the region recorded for a resource; IAM is global.
func worldRegion(token string, env awsEnv) string {
	if module, _ := tokenParts(token); module == "iam" {
		return ""
	}
	return env.region
}

// protectTagsAll marks tagsAll secret when a resource tag or a provider default tag is secret, as
// pulumi-aws does since pulumi/pulumi-aws#2791 (fixing #2778, secret tags leaking into tags_all).
func (p *awsProvider) protectTagsAll(outputs, inputs resource.PropertyMap) resource.PropertyMap {
	p.mu.RLock()
	secret := p.defaultTagsSecret
	p.mu.RUnlock()
	if tags, ok := inputs["tags"]; ok && tags.ContainsSecrets() {
		secret = true
	}
	if v, ok := outputs["tagsAll"]; ok && secret && !v.IsSecret() {
		outputs["tagsAll"] = resource.MakeSecret(v)
	}
	return outputs
}

// change is what Create and Update start from: the resource's type token, its schema and its
// new inputs.
type change struct {
	token  string
	spec   *ResourceSpec
	inputs resource.PropertyMap
}

func (p *awsProvider) begin(urn, typ, name string, props *structpb.Struct) (change, error) {
	token, _ := urnParts(urn, typ, name)
	spec, err := p.resourceSpec(token)
	if err != nil {
		return change{}, err
	}
	inputs, err := unmarshal(props)
	if err != nil {
		return change{}, err
	}
	return change{token: token, spec: spec, inputs: inputs}, nil
}

// preview is the outputs a preview reports: the inputs, and every other output pending.
func (p *awsProvider) preview(c change, olds resource.PropertyMap) (*structpb.Struct, error) {
	return p.marshal(outputsOf(c.spec, c.inputs, pendingOutputs(c.spec, olds)))
}

// commit records a created or updated resource in the world (with store, which may refuse it)
// and returns its outputs (inputs and computed values; tagsAll secret when a tag is).
func (p *awsProvider) commit(c change, urn, id string, computed resource.PropertyMap, env awsEnv,
	store func(*WorldEntry) error,
) (*structpb.Struct, error) {
	outputs := p.protectTagsAll(outputsOf(c.spec, c.inputs, computed), c.inputs)
	entry := &WorldEntry{Type: c.token, ID: id, Account: env.account, Region: worldRegion(c.token, env),
		URN: urn, Outputs: encodeOutputs(outputs)}
	if err := store(entry); err != nil {
		return nil, err
	}
	return p.marshal(outputs)
}

func (p *awsProvider) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	c, err := p.begin(req.GetUrn(), req.GetType(), req.GetName(), req.GetProperties())
	if err != nil {
		return nil, err
	}
	token, inputs := c.token, c.inputs
	if req.GetPreview() {
		out, err := p.preview(c, nil)
		return &pulumirpc.CreateResponse{Properties: out}, err
	}

	if inputs.ContainsUnknowns() {
		return nil, fmt.Errorf("creating %s: inputs contain unknown values outside of a preview", req.GetUrn())
	}
	plainIn := plain(inputs)
	env := p.env(plainIn)
	ph := materialize(token, plainIn, nil, "", env)
	out, err := p.commit(c, req.GetUrn(), ph.id, ph.computed, env, func(entry *WorldEntry) error {
		return p.world.Create(ph.key, entry, ph.conflict)
	})
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: ph.id, Properties: out}, nil
}

func (p *awsProvider) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	c, err := p.begin(req.GetUrn(), req.GetType(), req.GetName(), req.GetNews())
	if err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	token, spec, news := c.token, c.spec, c.inputs
	if req.GetPreview() {
		out, err := p.preview(c, olds)
		return &pulumirpc.UpdateResponse{Properties: out}, err
	}

	plainIn := plain(news)
	env := p.env(plainIn)
	ph := materialize(token, plainIn, plain(olds), req.GetId(), env)
	// Computed outputs not recomputed here are carried over from the old state.
	computed := resource.PropertyMap{}
	for k, v := range olds {
		if _, isInput := spec.InputProperties[string(k)]; !isInput {
			computed[k] = v
		}
	}
	for k, v := range ph.computed {
		computed[k] = v
	}
	out, err := p.commit(c, req.GetUrn(), req.GetId(), computed, env, func(entry *WorldEntry) error {
		return p.world.Replace(token, req.GetId(), env.account, ph.key, entry, ph.conflict)
	})
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: out}, nil
}

func (p *awsProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	token, _ := urnParts(req.GetUrn(), req.GetType(), req.GetName())
	if _, err := p.resourceSpec(token); err != nil {
		return nil, err
	}
	if !p.world.Persistent() {
		// Nothing to compare with: report the resource as it is recorded.
		return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
	}
	_, entry, err := p.world.Find(token, req.GetId(), p.env(nil).account)
	if err != nil {
		return nil, err
	}
	if entry == nil {
		return &pulumirpc.ReadResponse{}, nil // gone: `pulumi refresh` drops it from the state
	}
	props := req.GetProperties()
	if props == nil || len(props.GetFields()) == 0 {
		stored, err := decodeOutputs(entry.Outputs)
		if err != nil {
			return nil, err
		}
		if props, err = p.marshal(stored); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: props, Inputs: req.GetInputs()}, nil
}

func (p *awsProvider) Delete(_ context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	token, _ := urnParts(req.GetUrn(), req.GetType(), req.GetName())
	var refuse func(*WorldEntry) error
	if bucketTypes[token] {
		state, err := unmarshal(req.GetProperties())
		if err != nil {
			return nil, err
		}
		refuse = bucketNotEmpty(req.GetId(), boolean(plain(state), "forceDestroy"))
	}
	if token == tableType {
		refuse = tableProtected(req.GetId())
	}
	if err := p.world.Delete(token, req.GetId(), p.env(nil).account, refuse); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// bucketNotEmpty is S3's DeleteBucket as terraform-provider-aws calls it (internal/service/s3/
// bucket.go, resourceBucketDelete): S3 refuses to delete a bucket that holds objects
// (409 BucketNotEmpty); only with force_destroy does the provider empty it and delete it again.
// force_destroy is read from the resource's state (d.Get), not from the program's new inputs, so
// it takes effect only after an `up` has recorded it: that is why forceDestroy comes from the
// state the engine sends with Delete.
func bucketNotEmpty(bucket string, forceDestroy bool) func(*WorldEntry) error {
	return func(e *WorldEntry) error {
		if len(e.Objects) == 0 || forceDestroy {
			return nil
		}
		return awsErr("deleting S3 Bucket (%s): operation error S3: DeleteBucket, https response error "+
			"StatusCode: 409, api error BucketNotEmpty: The bucket you tried to delete is not empty", bucket)
	}
}

// tableType is the DynamoDB table's token.
const tableType = "aws:dynamodb/table:Table"

// tableProtected is DynamoDB's DeleteTable as terraform-provider-aws calls it (internal/service/
// dynamodb/table.go, resourceTableDelete): DynamoDB refuses to delete a table whose deletion
// protection is on (400 ValidationException). Unlike force_destroy, the flag is the table's own,
// set by CreateTable/UpdateTable: it is read from the world (what the last create or update
// recorded), so it takes effect for a delete only once an `up` has turned it off.
func tableProtected(table string) func(*WorldEntry) error {
	return func(e *WorldEntry) error {
		outputs, err := decodeOutputs(e.Outputs)
		if err != nil {
			return err
		}
		if !boolean(outputs, "deletionProtectionEnabled") {
			return nil
		}
		return awsErr("deleting DynamoDB Table (%s): operation error DynamoDB: DeleteTable, https response error "+
			"StatusCode: 400, api error ValidationException: Resource cannot be deleted as it is currently "+
			"protected against deletion. Disable deletion protection first.", table)
	}
}

// Invoke implements the few data sources a program commonly calls; anything else fails loudly.
func (p *awsProvider) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	args, err := unmarshal(req.GetArgs())
	if err != nil {
		return nil, err
	}
	env := p.env(plain(args))
	ret := map[string]any{}
	switch req.GetTok() {
	case "aws:index/getCallerIdentity:getCallerIdentity":
		ret = map[string]any{
			"accountId": env.account,
			"arn":       fmt.Sprintf("arn:%s:iam::%s:user/pulumi-standin", partition, env.account),
			"id":        env.account,
			"userId":    "AIDA" + strings.Repeat("X", 17),
		}
	case "aws:index/getRegion:getRegion":
		ret = map[string]any{
			"id": env.region, "name": env.region, "region": env.region,
			"description": env.region, "endpoint": fmt.Sprintf("ec2.%s.amazonaws.com", env.region),
		}
	case "aws:index/getPartition:getPartition":
		ret = map[string]any{
			"id": partition, "partition": partition, "dnsSuffix": "amazonaws.com",
			"reverseDnsPrefix": "com.amazonaws",
		}
	default:
		return nil, status.Errorf(codes.Unimplemented,
			"the pulumi-aws stand-in does not implement the function %q (only getCallerIdentity, "+
				"getRegion and getPartition)", req.GetTok())
	}
	out, err := p.marshal(resource.NewPropertyMapFromMap(ret))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: out}, nil
}
