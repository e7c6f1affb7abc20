package main

// Which input changes force a new resource. pulumi-aws is bridged from terraform-provider-aws, and a
// Pulumi property forces replacement exactly when its Terraform attribute is `ForceNew: true` (or,
// for a resource written with the plugin framework, has the `RequiresReplace()` plan modifier). The
// Pulumi schema does not carry that bit, so this table restates it for the types this project uses.
// Property names are the Pulumi (camelCase) names; comments give the Terraform attribute and the file
// in hashicorp/terraform-provider-aws it was read from (revisions as stored by the source index used
// while writing this; ForceNew of these attributes has been stable across them).
//
// Every resource type the Pulumi program declares has an entry, empty if nothing of it forces
// replacement (TestForceNewCoversEveryTypeTheProgramDeclares renders both stacks and fails on a
// type without one). Types that are not listed here never replace, except for `region` (see
// regionForcesNew). That is a known gap of the stand-in, documented in README.md.
var forceNew = map[string][]string{
	// internal/service/lambda/event_source_mapping.go (rev 6c6ae512, and rev 0603f3b6 for the two
	//   Kafka blocks): event_source_arn, starting_position, starting_position_timestamp, queues,
	//   self_managed_event_source, topics, amazon_managed_kafka_event_source_config,
	//   self_managed_kafka_event_source_config: ForceNew. function_name is updatable (not ForceNew).
	//   metrics_config is newer than both revisions; the API updates it in place
	//   (UpdateEventSourceMapping takes MetricsConfig; CloudFormation: "Update requires: No
	//   interruption"), so it is not listed.
	"aws:lambda/eventSourceMapping:EventSourceMapping": {
		"eventSourceArn", "startingPosition", "startingPositionTimestamp",
		"queues", "selfManagedEventSource", "topics",
		"amazonManagedKafkaEventSourceConfig", "selfManagedKafkaEventSourceConfig",
	},
	// internal/service/lambda/function.go (rev 0156d84e): function_name (Pulumi `name`),
	// package_type, tenancy_config.
	"aws:lambda/function:Function": {"name", "packageType", "tenancyConfig"},
	// internal/service/iam/role.go (rev 0040ea69): name, name_prefix, path.
	"aws:iam/role:Role": {"name", "namePrefix", "path"},
	// internal/service/iam/role_policy.go (rev 02f97af8): role, name, name_prefix.
	"aws:iam/rolePolicy:RolePolicy": {"role", "name", "namePrefix"},
	// internal/service/kinesis/stream.go (rev 03aadd43): name (Required+ForceNew in TF, autonamed
	// in Pulumi).
	"aws:kinesis/stream:Stream": {"name"},
	// internal/service/sqs/queue.go (rev 00a35305, queueSchema): name, name_prefix, fifo_queue.
	"aws:sqs/queue:Queue": {"name", "namePrefix", "fifoQueue"},
	// internal/service/logs/group.go (rev 0073593e): name, name_prefix, log_group_class.
	"aws:cloudwatch/logGroup:LogGroup": {"name", "namePrefix", "logGroupClass"},
	// internal/service/scheduler/schedule.go (rev 02f524b9): name, name_prefix, group_name.
	"aws:scheduler/schedule:Schedule": {"name", "namePrefix", "groupName"},
	// internal/service/lambda/function_event_invoke_config.go (rev 01606926): function_name, qualifier.
	"aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": {"functionName", "qualifier"},
	// internal/service/kms/key.go (rev 00a35305): custom_key_store_id, customer_master_key_spec,
	// key_usage, multi_region, xks_key_id.
	"aws:kms/key:Key": {"customKeyStoreId", "customerMasterKeySpec", "keyUsage", "multiRegion", "xksKeyId"},
	// internal/service/s3/bucket.go (rev 0070bcd1 and a later aws-sdk-go v1 revision): bucket,
	// bucket_prefix, object_lock_enabled. pulumi-aws 7 maps aws_s3_bucket to both tokens below.
	"aws:s3/bucket:Bucket":     {"bucket", "bucketPrefix", "objectLockEnabled"},
	"aws:s3/bucketV2:BucketV2": {"bucket", "bucketPrefix", "objectLockEnabled"},
	// internal/service/s3/bucket_policy.go (rev 0073593e): bucket (Required, ForceNew); policy is
	// updatable (PutBucketPolicy).
	"aws:s3/bucketPolicy:BucketPolicy": {"bucket"},
	// internal/service/s3/bucket_public_access_block.go (rev 01606926): bucket (ForceNew); the four
	// flags and skip_destroy are updatable (PutPublicAccessBlock).
	"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {"bucket"},
	// internal/service/s3/bucket_server_side_encryption_configuration.go (rev 01606926): bucket,
	// expected_bucket_owner (ForceNew); rule is updatable.
	"aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": {
		"bucket", "expectedBucketOwner",
	},
	// internal/service/s3/bucket_lifecycle_configuration.go (rev 01606926, a plugin-framework
	// resource): bucket and expected_bucket_owner have stringplanmodifier.RequiresReplace(); rule and
	// transition_default_minimum_object_size are updatable.
	"aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": {"bucket", "expectedBucketOwner"},
	// internal/service/sns/topic_policy.go (rev 00a35305): arn (Required, ForceNew); policy is
	// updatable.
	"aws:sns/topicPolicy:TopicPolicy": {"arn"},
	// internal/service/sns/topic_subscription.go (rev 04a2e6e5, subscriptionSchema): endpoint,
	// protocol, topic_arn (Pulumi `topic`) are ForceNew; the other attributes are subscription
	// attributes, updated with SetSubscriptionAttributes. A new e-mail subscription is a new,
	// unconfirmed one: SNS mails a confirmation link again.
	"aws:sns/topicSubscription:TopicSubscription": {"endpoint", "protocol", "topic"},
	// internal/service/sns/topic.go (rev 00a35305, topicSchema): name, name_prefix, fifo_topic.
	"aws:sns/topic:Topic": {"name", "namePrefix", "fifoTopic"},
	// internal/service/cloudwatch/metric_alarm.go (rev 055611a6): alarm_name (Pulumi `name`) is the
	// only ForceNew attribute.
	"aws:cloudwatch/metricAlarm:MetricAlarm": {"name"},
	// internal/service/dynamodb/table.go (rev f583d818, and the SDK v2 revision headed "Copyright
	//   IBM Corp. 2014, 2026"): name, hash_key, range_key, local_secondary_index (pulumi-aws
	//   `localSecondaryIndexes`), restore_date_time, restore_to_latest_time: ForceNew. The newer
	//   revision makes restore_source_name and restore_source_table_arn replace only when set to a
	//   new non-empty value (customdiff.ForceNewIfChange), which this table cannot express; the
	//   program never sets them, so they are left out. deletion_protection_enabled, billing_mode,
	//   ttl, server_side_encryption, attribute are updated in place (UpdateTable, UpdateTimeToLive).
	"aws:dynamodb/table:Table": {
		"name", "hashKey", "rangeKey", "localSecondaryIndexes", "restoreDateTime", "restoreToLatestTime",
	},
	// internal/service/lambda/permission.go (rev 04592f03): the resource has no Update; every
	// argument is ForceNew. pulumi-aws names TF's function_name `function`.
	"aws:lambda/permission:Permission": {
		"action", "eventSourceToken", "function", "functionUrlAuthType", "invokedViaFunctionUrl",
		"principal", "principalOrgId", "qualifier", "sourceAccount", "sourceArn",
		"statementId", "statementIdPrefix",
	},
}

// regionForcesNew: terraform-provider-aws 6 added a top-level `region` argument to every
// Region-aware resource, and "Changing the value of `region` will force resource replacement"
// (website/docs/guides/enhanced-region-support.html.markdown). pulumi-aws 7 exposes it as the
// `region` input, so any type whose schema has a `region` input replaces when it changes.
const regionProperty = "region"

// replacesOnChange reports whether a change of the top-level input `key` of `token` forces a new
// resource.
func replacesOnChange(token string, spec *ResourceSpec, key string) bool {
	for _, k := range forceNew[token] {
		if k == key {
			return true
		}
	}
	if key == regionProperty && spec != nil {
		if _, ok := spec.InputProperties[regionProperty]; ok {
			return true
		}
	}
	return false
}

// nameRule describes the physical-name property that pulumi-aws auto-names when the program
// leaves it unset (tfbridge.AutoName: "<logical name>-<7 random hex>").
type nameRule struct {
	prop     string // the Pulumi property holding the physical name
	prefix   string // the ConflictsWith prefix property; when set, no auto-name is generated
	maxLen   int
	lower    bool   // S3 bucket names are lower-cased
	fifoProp string // when this boolean input is true, ".fifo" is appended (SQS/SNS FIFO)
}

// autonameRule returns the auto-naming rule for a resource type, or nil if it has none.
// pulumi-aws (provider/autonaming.go) auto-names every resource whose Terraform schema has an input
// `name`, with max length 255 and separator "-"; resources.go overrides a few (function_name ->
// name, alarm_name -> name, bucket, and the maximum lengths below).
func autonameRule(token string, spec *ResourceSpec) *nameRule {
	has := func(p string) bool { _, ok := spec.InputProperties[p]; return ok }
	required := func(p string) bool {
		for _, r := range spec.RequiredInputs {
			if r == p {
				return true
			}
		}
		return false
	}
	switch token {
	case "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2":
		return &nameRule{prop: "bucket", prefix: "bucketPrefix", maxLen: 63, lower: true}
	case "aws:iam/role:Role":
		return &nameRule{prop: "name", prefix: "namePrefix", maxLen: 64}
	case "aws:lambda/function:Function":
		return &nameRule{prop: "name", maxLen: 64}
	case "aws:sqs/queue:Queue":
		return &nameRule{prop: "name", prefix: "namePrefix", maxLen: 80, fifoProp: "fifoQueue"}
	case "aws:sns/topic:Topic":
		return &nameRule{prop: "name", prefix: "namePrefix", maxLen: 256, fifoProp: "fifoTopic"}
	case "aws:scheduler/schedule:Schedule":
		return &nameRule{prop: "name", prefix: "namePrefix", maxLen: 64}
	}
	if spec == nil || !has("name") || required("name") {
		return nil
	}
	if t := spec.InputProperties["name"]; t.Type != "string" {
		return nil
	}
	r := &nameRule{prop: "name", maxLen: 255}
	if has("namePrefix") {
		r.prefix = "namePrefix"
	}
	return r
}
