package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// awsEnv is where a resource lives: the "credentials'" account and the effective region.
type awsEnv struct {
	account string
	region  string
	// defaultTags are the provider's defaultTags.tags, merged into tagsAll.
	defaultTags map[string]string
}

const partition = "aws"

// physical is what a create/update of a resource amounts to in the fake cloud.
type physical struct {
	id       string
	computed resource.PropertyMap // outputs computed by "AWS"; only schema outputs are kept
	key      string               // uniqueness scope in the world
	// conflict decides what happens when key is already taken: the AWS error, or nil to adopt
	// (upserts such as PutRolePolicy, idempotent creates such as SQS CreateQueue).
	conflict func(existing *WorldEntry) error
}

func str(m resource.PropertyMap, k string) string {
	v, ok := m[resource.PropertyKey(k)]
	if !ok {
		return ""
	}
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	if v.IsString() {
		return v.StringValue()
	}
	return ""
}

func boolean(m resource.PropertyMap, k string) bool {
	v, ok := m[resource.PropertyKey(k)]
	if !ok {
		return false
	}
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v.IsBool() && v.BoolValue()
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomUpper(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var sb strings.Builder
	for i := 0; i < n; i++ {
		x, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		sb.WriteByte(alphabet[x.Int64()])
	}
	return sb.String()
}

var uniqueCounter atomic.Uint64

// uniqueID imitates terraform-plugin-sdk id.UniqueId(): a 26-character, time-ordered suffix.
func uniqueID() string {
	ts := time.Now().UTC().Format("20060102150405")
	return fmt.Sprintf("%s%04d%08d", ts, time.Now().Nanosecond()/100000%10000, uniqueCounter.Add(1)%100000000)
}

// physicalName is the name TF would create: the configured name, else prefix+unique id, else
// "terraform-"+unique id (terraform-provider-aws internal/create.Name). Normally Check has already
// filled the Pulumi auto-name in.
func physicalName(in, old resource.PropertyMap, prop, prefixProp string) string {
	if n := str(in, prop); n != "" {
		return n
	}
	if n := str(old, prop); n != "" {
		return n
	}
	if prefixProp != "" {
		if p := str(in, prefixProp); p != "" {
			return p + uniqueID()
		}
	}
	return "terraform-" + uniqueID()
}

// keep returns the old output k if there is one (random or time-based values must not change on
// update), else gen().
func keep(old resource.PropertyMap, k string, gen func() string) string {
	if s := str(old, k); s != "" {
		return s
	}
	return gen()
}

// functionName normalises a Lambda function reference (name, partial ARN, ARN, optionally with a
// qualifier) to "name" or "name:qualifier", the way Lambda identifies the function.
func functionName(ref string) string {
	s := ref
	if strings.HasPrefix(s, "arn:") {
		parts := strings.SplitN(s, ":", 7) // arn:aws:lambda:region:acct:function:name[:qualifier]
		if len(parts) == 7 {
			s = parts[6]
		}
	} else if i := strings.Index(s, ":function:"); i >= 0 {
		s = s[i+len(":function:"):]
	}
	return s
}

func functionARN(env awsEnv, ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", partition, env.region, env.account, functionName(ref))
}

func nowRFC3339() string { return time.Now().UTC().Format(time.RFC3339) }

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// tokenParts splits "aws:lambda/function:Function" into ("lambda", "Function").
func tokenParts(token string) (module, name string) {
	parts := strings.Split(token, ":")
	if len(parts) != 3 {
		return "", token
	}
	module, _, _ = strings.Cut(parts[1], "/")
	return module, parts[2]
}

func awsErr(format string, args ...any) error {
	return &ConflictError{Message: fmt.Sprintf(format, args...)}
}

// materialize computes the physical identity and the computed outputs of a resource of type token
// with (plain) inputs `in`; old are the previous outputs and oldID the id on update (nil, "" on
// create).
func materialize(token string, in, old resource.PropertyMap, oldID string, env awsEnv) *physical {
	c := resource.PropertyMap{}
	set := func(k, v string) { c[resource.PropertyKey(k)] = resource.NewStringProperty(v) }
	acct, region := env.account, env.region
	scope := acct + "|" + region + "|" + token + "|"
	ph := &physical{computed: c}

	switch token {
	case "aws:iam/role:Role":
		name := physicalName(in, old, "name", "namePrefix")
		path := str(in, "path")
		if path == "" {
			path = "/"
		}
		set("name", name)
		set("path", path)
		set("arn", fmt.Sprintf("arn:%s:iam::%s:role%s%s", partition, acct, path, name))
		set("uniqueId", keep(old, "uniqueId", func() string { return "AROA" + randomUpper(17) }))
		set("createDate", keep(old, "createDate", nowRFC3339))
		ph.id = name
		// IAM names are unique per account across regions, and case-insensitively.
		ph.key = acct + "||" + token + "|" + strings.ToLower(name)
		ph.conflict = func(*WorldEntry) error {
			return awsErr("creating IAM Role (%s): operation error IAM: CreateRole, https response error "+
				"StatusCode: 409, EntityAlreadyExists: Role with name %s already exists.", name, name)
		}

	case "aws:iam/rolePolicy:RolePolicy":
		name := physicalName(in, old, "name", "namePrefix")
		role := str(in, "role")
		set("name", name)
		ph.id = role + ":" + name
		ph.key = acct + "||" + token + "|" + strings.ToLower(role) + "|" + name
		ph.conflict = func(*WorldEntry) error { return nil } // PutRolePolicy is an upsert

	case "aws:lambda/function:Function":
		name := physicalName(in, old, "name", "")
		arn := fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", partition, region, acct, name)
		version := "$LATEST"
		if boolean(in, "publish") {
			version = keep(old, "version", func() string { return "1" })
			if version == "$LATEST" {
				version = "1"
			}
		}
		invoke := func(a string) string {
			return fmt.Sprintf("arn:%s:apigateway:%s:lambda:path/2015-03-31/functions/%s/invocations",
				partition, region, a)
		}
		set("name", name)
		set("arn", arn)
		set("invokeArn", invoke(arn))
		set("qualifiedArn", arn+":"+version)
		set("qualifiedInvokeArn", invoke(arn+":"+version))
		set("responseStreamingInvokeArn", fmt.Sprintf(
			"arn:%s:apigateway:%s:lambda:path/2021-11-15/functions/%s/response-streaming-invocations",
			partition, region, arn))
		set("version", version)
		set("lastModified", time.Now().UTC().Format("2006-01-02T15:04:05.000+0000"))
		if v, ok := in["code"]; ok && v.IsArchive() && v.ArchiveValue().Hash != "" {
			if raw, err := hex.DecodeString(v.ArchiveValue().Hash); err == nil {
				sum := base64.StdEncoding.EncodeToString(raw)
				set("codeSha256", sum)
				if str(in, "sourceCodeHash") == "" {
					set("sourceCodeHash", sum)
				}
			}
		}
		ph.id = name
		ph.key = scope + name
		ph.conflict = func(*WorldEntry) error {
			return awsErr("creating Lambda Function (%s): operation error Lambda: CreateFunction, https response "+
				"error StatusCode: 409, ResourceConflictException: Function already exist: %s", name, name)
		}

	case "aws:kinesis/stream:Stream":
		name := physicalName(in, old, "name", "")
		arn := fmt.Sprintf("arn:%s:kinesis:%s:%s:stream/%s", partition, region, acct, name)
		set("name", name)
		set("arn", arn)
		ph.id = arn
		ph.key = scope + name
		ph.conflict = func(*WorldEntry) error {
			return awsErr("creating Kinesis Stream (%s): operation error Kinesis: CreateStream, https response "+
				"error StatusCode: 400, ResourceInUseException: Stream %s under account %s already exists.",
				name, name, acct)
		}

	case "aws:sqs/queue:Queue":
		name := physicalName(in, old, "name", "namePrefix")
		url := fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", region, acct, name)
		set("name", name)
		set("url", url)
		set("arn", fmt.Sprintf("arn:%s:sqs:%s:%s:%s", partition, region, acct, name))
		ph.id = url
		ph.key = scope + name
		ph.conflict = func(existing *WorldEntry) error {
			// CreateQueue is idempotent when every attribute matches; otherwise it fails.
			if sameQueueAttributes(existing, in) {
				return nil
			}
			return awsErr("creating SQS Queue (%s): operation error SQS: CreateQueue, https response error "+
				"StatusCode: 400, QueueAlreadyExists: A queue already exists with the same name and a "+
				"different value for one or more attributes", name)
		}

	case "aws:cloudwatch/logGroup:LogGroup":
		name := physicalName(in, old, "name", "namePrefix")
		set("name", name)
		// pulumi-aws/TF return the ARN without the ":*" suffix the API adds
		// (internal/service/logs/group.go trimLogGroupARNWildcardSuffix).
		set("arn", fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s", partition, region, acct, name))
		ph.id = name
		ph.key = scope + name
		ph.conflict = func(*WorldEntry) error {
			return awsErr("creating CloudWatch Logs Log Group (%s): operation error CloudWatch Logs: "+
				"CreateLogGroup, https response error StatusCode: 400, ResourceAlreadyExistsException: "+
				"The specified log group already exists", name)
		}

	case "aws:kms/key:Key":
		keyID := keep(old, "keyId", randomUUID)
		set("keyId", keyID)
		set("arn", fmt.Sprintf("arn:%s:kms:%s:%s:key/%s", partition, region, acct, keyID))
		ph.id = keyID
		ph.key = scope + keyID

	case "aws:scheduler/schedule:Schedule":
		name := physicalName(in, old, "name", "namePrefix")
		group := str(in, "groupName")
		if group == "" {
			group = "default"
		}
		set("name", name)
		set("groupName", group)
		set("arn", fmt.Sprintf("arn:%s:scheduler:%s:%s:schedule/%s/%s", partition, region, acct, group, name))
		ph.id = group + "/" + name
		ph.key = scope + group + "/" + name
		ph.conflict = func(*WorldEntry) error {
			return awsErr("creating EventBridge Scheduler Schedule (%s): operation error Scheduler: "+
				"CreateSchedule, https response error StatusCode: 409, ConflictException: Schedule %s "+
				"already exists.", group+"/"+name, name)
		}

	case "aws:lambda/eventSourceMapping:EventSourceMapping":
		uuid := keep(old, "uuid", randomUUID)
		fn := str(in, "functionName")
		source := str(in, "eventSourceArn")
		set("uuid", uuid)
		set("arn", fmt.Sprintf("arn:%s:lambda:%s:%s:event-source-mapping:%s", partition, region, acct, uuid))
		set("functionArn", functionARN(env, fn))
		set("state", "Enabled")
		set("stateTransitionReason", "USER_INITIATED")
		set("lastProcessingResult", "No records processed")
		set("lastModified", nowRFC3339())
		ph.id = uuid
		if source != "" {
			// One mapping per (event source, function): CreateEventSourceMapping refuses a second.
			ph.key = scope + source + "|" + functionName(fn)
			ph.conflict = func(existing *WorldEntry) error {
				return awsErr("creating Lambda Event Source Mapping (%s): operation error Lambda: "+
					"CreateEventSourceMapping, https response error StatusCode: 409, "+
					"ResourceConflictException: The event source arn (%s) and function (%s) provided mapping "+
					"already exists. Please update or delete the existing mapping with UUID %s",
					source, source, functionName(fn), existing.ID)
			}
		} else {
			ph.key = scope + uuid
		}

	case "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig":
		fn := str(in, "functionName")
		q := str(in, "qualifier")
		ph.id = fn
		if q != "" {
			ph.id = fn + ":" + q
		}
		ph.key = scope + functionName(fn) + "|" + q
		ph.conflict = func(*WorldEntry) error { return nil } // PutFunctionEventInvokeConfig is an upsert

	case "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2":
		name := physicalName(in, old, "bucket", "bucketPrefix")
		set("bucket", name)
		set("arn", fmt.Sprintf("arn:%s:s3:::%s", partition, name))
		set("bucketDomainName", name+".s3.amazonaws.com")
		set("bucketRegionalDomainName", fmt.Sprintf("%s.s3.%s.amazonaws.com", name, region))
		ph.id = name
		ph.key = "|" + "|s3-bucket|" + name // one namespace for all accounts and regions
		ph.conflict = func(existing *WorldEntry) error {
			if existing.Account == acct {
				return awsErr("creating S3 Bucket (%s): operation error S3: CreateBucket, https response error "+
					"StatusCode: 409, BucketAlreadyOwnedByYou: Your previous request to create the named "+
					"bucket succeeded and you already own it.", name)
			}
			return awsErr("creating S3 Bucket (%s): operation error S3: CreateBucket, https response error "+
				"StatusCode: 409, BucketAlreadyExists: The requested bucket name is not available. The "+
				"bucket namespace is shared by all users of the system. Please select a different name and "+
				"try again.", name)
		}

	case "aws:sns/topic:Topic":
		name := physicalName(in, old, "name", "namePrefix")
		arn := fmt.Sprintf("arn:%s:sns:%s:%s:%s", partition, region, acct, name)
		set("name", name)
		set("arn", arn)
		set("owner", acct)
		ph.id = arn
		ph.key = scope + name
		ph.conflict = func(*WorldEntry) error { return nil } // CreateTopic is idempotent

	case "aws:cloudwatch/metricAlarm:MetricAlarm":
		name := physicalName(in, old, "name", "")
		set("name", name)
		set("arn", fmt.Sprintf("arn:%s:cloudwatch:%s:%s:alarm:%s", partition, region, acct, name))
		ph.id = name
		ph.key = scope + name
		ph.conflict = func(*WorldEntry) error {
			// internal/service/cloudwatch/metric_alarm.go checks before PutMetricAlarm.
			return awsErr("CloudWatch metric alarm %q already exists", name)
		}

	case "aws:lambda/permission:Permission":
		sid := physicalName(in, old, "statementId", "statementIdPrefix")
		fn := str(in, "function") // pulumi-aws's name for TF's function_name
		q := str(in, "qualifier")
		set("statementId", sid)
		ph.id = sid
		ph.key = scope + functionName(fn) + "|" + q + "|" + sid
		ph.conflict = func(*WorldEntry) error {
			return awsErr("adding Lambda Permission (%s/%s): operation error Lambda: AddPermission, https "+
				"response error StatusCode: 409, ResourceConflictException: The statement id (%s) provided "+
				"already exists. Please provide a new statement id, or remove the existing statement.",
				fn, sid, sid)
		}

	default:
		module, typeName := tokenParts(token)
		name := str(in, "name")
		if name == "" {
			name = str(old, "name")
		}
		ident := name
		if ident == "" {
			ident = oldID
		}
		if ident == "" {
			ident = lowerFirst(typeName) + "-" + randomHex(16)
		}
		arnRegion := region
		if module == "iam" {
			arnRegion = ""
		}
		set("arn", fmt.Sprintf("arn:%s:%s:%s:%s:%s/%s", partition, module, arnRegion, acct,
			lowerFirst(typeName), ident))
		ph.id = ident
		if name != "" {
			ph.key = acct + "|" + arnRegion + "|" + token + "|" + name
			ph.conflict = func(*WorldEntry) error {
				return awsErr("creating %s (%s): ResourceAlreadyExistsException: %s with name %s already exists",
					typeName, name, typeName, name)
			}
		} else {
			ph.key = scope + ident
		}
	}

	set("region", region)
	c["tagsAll"] = resource.NewObjectProperty(mergeTags(env.defaultTags, in["tags"]))
	return ph
}

// mergeTags computes tagsAll = provider defaultTags + resource tags (resource wins).
func mergeTags(defaults map[string]string, tags resource.PropertyValue) resource.PropertyMap {
	if tags.IsSecret() {
		tags = tags.SecretValue().Element
	}
	out := resource.PropertyMap{}
	for k, v := range defaults {
		out[resource.PropertyKey(k)] = resource.NewStringProperty(v)
	}
	if tags.IsObject() {
		for k, v := range tags.ObjectValue() {
			out[k] = v
		}
	}
	return out
}

// queueAttributes are the SQS queue inputs that are queue attributes (CreateQueue compares them).
var queueAttributes = []string{
	"contentBasedDeduplication", "deduplicationScope", "delaySeconds", "fifoQueue", "fifoThroughputLimit",
	"kmsDataKeyReusePeriodSeconds", "kmsMasterKeyId", "maxMessageSize", "messageRetentionSeconds", "policy",
	"receiveWaitTimeSeconds", "redriveAllowPolicy", "redrivePolicy", "sqsManagedSseEnabled",
	"visibilityTimeoutSeconds",
}

func sameQueueAttributes(existing *WorldEntry, in resource.PropertyMap) bool {
	old, err := decodeOutputs(existing.Outputs)
	if err != nil {
		return false
	}
	for _, k := range queueAttributes {
		a, b := old[resource.PropertyKey(k)], in[resource.PropertyKey(k)]
		if a.IsNull() && b.IsNull() {
			continue
		}
		if !a.DeepEquals(b) {
			return false
		}
	}
	return true
}

func sortedKeys(m resource.PropertyMap) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	return keys
}
