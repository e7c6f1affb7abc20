package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// PropertySpec is the subset of a Pulumi package schema property (or type reference) that the
// stand-in needs to type-check values: https://www.pulumi.com/docs/iac/extending-pulumi/schema/
type PropertySpec struct {
	Type                 string         `json:"type,omitempty"`
	Ref                  string         `json:"$ref,omitempty"`
	Items                *PropertySpec  `json:"items,omitempty"`
	AdditionalProperties *PropertySpec  `json:"additionalProperties,omitempty"`
	OneOf                []PropertySpec `json:"oneOf,omitempty"`
	Secret               bool           `json:"secret,omitempty"`
}

// ResourceSpec is the subset of a resource (or of `provider`) in a package schema.
type ResourceSpec struct {
	InputProperties map[string]PropertySpec `json:"inputProperties,omitempty"`
	RequiredInputs  []string                `json:"requiredInputs,omitempty"`
	Properties      map[string]PropertySpec `json:"properties,omitempty"`
	Required        []string                `json:"required,omitempty"`
}

// ObjectTypeSpec is an entry of `types`: an object type or an enum.
type ObjectTypeSpec struct {
	Type       string                  `json:"type,omitempty"`
	Properties map[string]PropertySpec `json:"properties,omitempty"`
	Required   []string                `json:"required,omitempty"`
	Enum       []json.RawMessage       `json:"enum,omitempty"`
}

// Schema holds the package schema served by the stand-in. Resources and types are decoded lazily:
// the full pulumi-aws schema is tens of megabytes and one provider process touches a few tokens.
type Schema struct {
	Raw      []byte
	Name     string
	Version  string
	Provider ResourceSpec

	resources map[string]json.RawMessage
	types     map[string]json.RawMessage

	mu        sync.Mutex
	resCache  map[string]*ResourceSpec
	typeCache map[string]*ObjectTypeSpec
}

type rawSchema struct {
	Name      string                     `json:"name"`
	Version   string                     `json:"version"`
	Provider  ResourceSpec               `json:"provider"`
	Resources map[string]json.RawMessage `json:"resources"`
	Types     map[string]json.RawMessage `json:"types"`
}

const (
	envSchema = "PULUMI_AWS_STANDIN_SCHEMA"
	lfsHeader = "version https://git-lfs.github.com/spec/v1"
)

// schemaPath returns where the schema is read from: $PULUMI_AWS_STANDIN_SCHEMA, else schema.json
// beside the (symlink-resolved) executable, which is how `pulumi plugin install --file <tarball>`
// lays the plugin out.
func schemaPath() (string, error) {
	if p := os.Getenv(envSchema); p != "" {
		return p, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot locate the executable to find schema.json beside it: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Join(filepath.Dir(exe), "schema.json"), nil
}

// LoadSchemaFile reads and parses a schema file, refusing missing files, Git LFS pointers and
// anything that is not a JSON package schema.
func LoadSchemaFile(path string) (*Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pulumi-aws stand-in: schema file %s does not exist "+
				"(put schema.json beside the binary or set %s)", path, envSchema)
		}
		return nil, fmt.Errorf("pulumi-aws stand-in: reading schema %s: %w", path, err)
	}
	return ParseSchema(data, path)
}

// ParseSchema parses schema bytes; origin is only used in error messages.
func ParseSchema(data []byte, origin string) (*Schema, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte(lfsHeader)) {
		return nil, fmt.Errorf("pulumi-aws stand-in: schema %s is a Git LFS pointer, not the schema "+
			"(fetch the real file, e.g. `git lfs pull`, or regenerate it)", origin)
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("pulumi-aws stand-in: schema %s is not a JSON object", origin)
	}
	var rs rawSchema
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("pulumi-aws stand-in: schema %s is not valid JSON: %w", origin, err)
	}
	if rs.Name == "" || rs.Resources == nil {
		return nil, fmt.Errorf("pulumi-aws stand-in: %s does not look like a Pulumi package schema "+
			"(missing \"name\" or \"resources\")", origin)
	}
	return &Schema{
		Raw:       data,
		Name:      rs.Name,
		Version:   rs.Version,
		Provider:  rs.Provider,
		resources: rs.Resources,
		types:     rs.Types,
		resCache:  map[string]*ResourceSpec{},
		typeCache: map[string]*ObjectTypeSpec{},
	}, nil
}

// Resource returns the spec of a resource token, or nil if the schema does not define it.
func (s *Schema) Resource(token string) (*ResourceSpec, error) {
	return decodeOnce(s, s.resCache, s.resources, "resource", token)
}

// Type returns the spec of a type token (already unescaped), or nil if it is not defined.
func (s *Schema) Type(token string) (*ObjectTypeSpec, error) {
	return decodeOnce(s, s.typeCache, s.types, "type", token)
}

// decodeOnce decodes raw[token] into a T on first use and keeps it in cache; nil if undefined.
func decodeOnce[T any](s *Schema, cache map[string]*T, raw map[string]json.RawMessage, kind, token string) (*T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := cache[token]; ok {
		return v, nil
	}
	b, ok := raw[token]
	if !ok {
		return nil, nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("schema %s %s: %w", kind, token, err)
	}
	cache[token] = &v
	return &v, nil
}

// refKind classifies a `$ref`.
type refKind int

const (
	refUnknown refKind = iota
	refArchive
	refAsset
	refAny // pulumi.json#/Any and pulumi.json#/Json
	refType
	refResource
	refProvider
)

// parseRef mirrors pkg/codegen/schema parseTypeSpecRef: built-ins first, then the fragment
// `#/types/<token>` or `#/resources/<token>` (token URL-escaped, e.g. `aws:lambda%2F...`), with an
// optional path naming another package version before the fragment.
func parseRef(ref string) (refKind, string) {
	switch ref {
	case "pulumi.json#/Archive":
		return refArchive, ""
	case "pulumi.json#/Asset":
		return refAsset, ""
	case "pulumi.json#/Any", "pulumi.json#/Json":
		return refAny, ""
	}
	i := strings.Index(ref, "#")
	if i < 0 {
		return refUnknown, ""
	}
	frag := strings.TrimPrefix(ref[i+1:], "/")
	kind, token, _ := strings.Cut(frag, "/")
	if unescaped, err := url.PathUnescape(token); err == nil {
		token = unescaped
	}
	switch kind {
	case "types":
		return refType, token
	case "resources":
		return refResource, token
	case "provider":
		return refProvider, ""
	}
	return refUnknown, ""
}

var versionDirRe = regexp.MustCompile(`resource-aws-v([0-9][0-9A-Za-z.+-]*)$`)

// pluginVersion is the schema's `version`; when the schema has none (the published pulumi-aws
// schema.json has no top-level version) the plugin directory name chosen by `pulumi plugin install`
// (resource-aws-v<version>) is used.
func (s *Schema) pluginVersion() string {
	if s.Version != "" {
		return s.Version
	}
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		if m := versionDirRe.FindStringSubmatch(filepath.Dir(exe)); m != nil {
			return m[1]
		}
	}
	return ""
}
