package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// checker validates property values against the schema and collects CheckFailures. Every reason
// names the resource type and the property path, e.g.
//
//	aws:lambda/function:Function: property "memorySize": expected integer, got string "abc"
type checker struct {
	schema   *Schema
	owner    string // resource token, or pulumi:providers:aws
	failures []*pulumirpc.CheckFailure
	// lenientStrings: a string that parses as JSON of the expected non-string type is accepted.
	// Only used for provider configuration, whose values arrive from stack config as strings
	// (e.g. aws:allowedAccountIds = '["123456789012"]'); the bridge decodes those the same way.
	lenientStrings bool
}

func (c *checker) fail(path, format string, args ...any) {
	c.failures = append(c.failures, &pulumirpc.CheckFailure{
		Property: path,
		Reason:   fmt.Sprintf("%s: %s", c.owner, fmt.Sprintf(format, args...)),
	})
}

// isReservedKey reports keys that are not user properties: the bridge's `__defaults` bookkeeping
// and anything else the engine or SDKs prefix with "__".
func isReservedKey(k string) bool { return strings.HasPrefix(k, "__") }

func childPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func mapPath(parent, key string) string { return fmt.Sprintf("%s[%s]", parent, strconv.Quote(key)) }

func indexPath(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }

// checkObject validates an object value against a property table and its required list.
// skipKeys are accepted without validation (e.g. the engine's `version` on provider inputs).
func (c *checker) checkObject(path string, obj resource.PropertyMap, props map[string]PropertySpec,
	required []string, skipKeys map[string]bool,
) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		if isReservedKey(k) || skipKeys[k] {
			continue
		}
		spec, ok := props[k]
		p := childPath(path, k)
		if !ok {
			if hint := closest(k, props); hint != "" {
				c.fail(p, "unknown property %q (did you mean %q?)", p, hint)
			} else {
				c.fail(p, "unknown property %q", p)
			}
			continue
		}
		c.checkValue(p, obj[resource.PropertyKey(k)], spec)
	}
	for _, r := range required {
		v, ok := obj[resource.PropertyKey(r)]
		if !ok || v.IsNull() {
			p := childPath(path, r)
			c.fail(p, "missing required property %q", p)
		}
	}
}

// checkValue validates one value. Unknowns (computed values, unknown outputs) are accepted;
// secrets and known outputs are checked by their element.
func (c *checker) checkValue(path string, v resource.PropertyValue, spec PropertySpec) {
	switch {
	case v.IsComputed():
		return
	case v.IsOutput():
		o := v.OutputValue()
		if !o.Known {
			return
		}
		c.checkValue(path, o.Element, spec)
		return
	case v.IsSecret():
		c.checkValue(path, v.SecretValue().Element, spec)
		return
	case v.IsNull():
		return // null is "not set"; required-ness is checked by the parent
	}

	if len(spec.OneOf) > 0 {
		for _, alt := range spec.OneOf {
			sub := &checker{schema: c.schema, owner: c.owner, lenientStrings: c.lenientStrings}
			sub.checkValue(path, v, alt)
			if len(sub.failures) == 0 {
				return
			}
		}
		c.fail(path, "property %q: %s matches none of the allowed types", path, describe(v))
		return
	}

	if spec.Ref != "" {
		c.checkRef(path, v, spec.Ref)
		return
	}
	c.checkPrimitiveOrContainer(path, v, spec.Type, spec.Items, spec.AdditionalProperties)
}

func (c *checker) checkRef(path string, v resource.PropertyValue, ref string) {
	kind, token := parseRef(ref)
	switch kind {
	case refAny, refProvider:
		return
	case refArchive:
		if !v.IsArchive() {
			c.fail(path, "property %q: expected archive, got %s", path, describe(v))
		}
		return
	case refAsset:
		// pulumi.json#/Asset is "asset or archive" in every SDK.
		if !v.IsAsset() && !v.IsArchive() {
			c.fail(path, "property %q: expected asset or archive, got %s", path, describe(v))
		}
		return
	case refResource:
		if !v.IsString() && !v.IsResourceReference() {
			c.fail(path, "property %q: expected a reference to %s, got %s", path, token, describe(v))
		}
		return
	case refType:
		t, err := c.schema.Type(token)
		if err != nil {
			c.fail(path, "property %q: %v", path, err)
			return
		}
		if t == nil {
			c.fail(path, "property %q: the stand-in's schema has no type %q (broken schema?)", path, token)
			return
		}
		if len(t.Enum) > 0 || (t.Type != "" && t.Type != "object") {
			// Enum: the value must have the enum's underlying type. (Membership is left to the
			// provider, as the bridge does: pulumi-aws enums are TF validations.)
			c.checkPrimitiveOrContainer(path, v, t.Type, nil, nil)
			return
		}
		obj, ok := c.objectOf(path, v, "object")
		if !ok {
			return
		}
		c.checkObject(path, obj, t.Properties, t.Required, nil)
		return
	}
	c.fail(path, "property %q: unsupported schema reference %q", path, ref)
}

// objectOf returns the value as an object, or records a type failure.
func (c *checker) objectOf(path string, v resource.PropertyValue, what string) (resource.PropertyMap, bool) {
	if v.IsObject() {
		return v.ObjectValue(), true
	}
	if c.lenientStrings && v.IsString() {
		if pv, ok := parseJSONString(v.StringValue()); ok && pv.IsObject() {
			return pv.ObjectValue(), true
		}
	}
	c.fail(path, "property %q: expected %s, got %s", path, what, describe(v))
	return nil, false
}

func (c *checker) checkPrimitiveOrContainer(path string, v resource.PropertyValue, typ string,
	items, additional *PropertySpec,
) {
	if c.lenientStrings && v.IsString() && typ != "string" && typ != "" {
		if pv, ok := parseJSONString(v.StringValue()); ok {
			v = pv
		}
	}
	if has, ok := primitiveKinds[typ]; ok {
		if !has(v) || typ == "integer" && !isWhole(v.NumberValue()) {
			c.fail(path, "property %q: expected %s, got %s", path, typ, describe(v))
		}
		return
	}
	switch typ {
	case "array":
		if !v.IsArray() {
			c.fail(path, "property %q: expected array, got %s", path, describe(v))
			return
		}
		if items == nil {
			return
		}
		for i, e := range v.ArrayValue() {
			c.checkValue(indexPath(path, i), e, *items)
		}
	case "object":
		// A map; the element type defaults to string (pkg/codegen/schema bindTypeSpec).
		obj, ok := c.objectOf(path, v, "object (map)")
		if !ok {
			return
		}
		elem := PropertySpec{Type: "string"}
		if additional != nil {
			elem = *additional
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		for _, k := range keys {
			c.checkValue(mapPath(path, k), obj[resource.PropertyKey(k)], elem)
		}
	case "":
		// No type: nothing to check (should not happen in a well-formed schema).
	default:
		c.fail(path, "property %q: unsupported schema type %q", path, typ)
	}
}

// containerKinds: how describe names the values that have no printable content.
var containerKinds = []struct {
	is   func(resource.PropertyValue) bool
	name string
}{
	{resource.PropertyValue.IsArray, "array"},
	{resource.PropertyValue.IsObject, "object"},
	{resource.PropertyValue.IsAsset, "asset"},
	{resource.PropertyValue.IsArchive, "archive"},
	{resource.PropertyValue.IsResourceReference, "resource reference"},
	{resource.PropertyValue.IsNull, "null"},
}

func isWhole(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) && f == math.Trunc(f) }

// primitiveKinds: the schema's primitive types and the property values of each kind (an integer
// is a number, then checked to be whole).
var primitiveKinds = map[string]func(resource.PropertyValue) bool{
	"string":  resource.PropertyValue.IsString,
	"boolean": resource.PropertyValue.IsBool,
	"number":  resource.PropertyValue.IsNumber,
	"integer": resource.PropertyValue.IsNumber,
}

func parseJSONString(s string) (resource.PropertyValue, bool) {
	var x any
	if err := json.Unmarshal([]byte(s), &x); err != nil {
		return resource.PropertyValue{}, false
	}
	return resource.NewPropertyValue(x), true
}

// describe renders a value's kind for failure messages: `string "abc"`, `number 1.5`, ...
func describe(v resource.PropertyValue) string {
	switch {
	case v.IsString():
		s := v.StringValue()
		if len(s) > 60 {
			s = s[:57] + "..."
		}
		return "string " + strconv.Quote(s)
	case v.IsNumber():
		return "number " + strconv.FormatFloat(v.NumberValue(), 'g', -1, 64)
	case v.IsBool():
		return "boolean " + strconv.FormatBool(v.BoolValue())
	}
	for _, k := range containerKinds {
		if k.is(v) {
			return k.name
		}
	}
	return v.TypeString()
}

// closest suggests a property name at edit distance <= 2 (case-insensitive), for typo hints.
func closest(k string, props map[string]PropertySpec) string {
	best, bestD := "", 3
	lk := strings.ToLower(k)
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if d := levenshtein(lk, strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
