// IAM checks of the rendered templates: extract every policy document, then evaluate the
// trust and permission policies with @cloud-copilot/iam-simulate (Strict mode, offline).
//
//   node infra/checks/iam.mjs extract <outdir> source.json target.json   # documents for parliament
//   node infra/checks/iam.mjs simulate source.json target.json           # expectations below
//
// Interpolations (`${stream.arn}`) are resolved to the ARNs the resources will have, from
// their explicit names and the provider's account and region.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runSimulation } from '@cloud-copilot/iam-simulate'

const EXAMPLE_KEY_ID = '0a1b2c3d-4e5f-6789-abcd-ef0123456789'
// The service that publishes a CloudWatch alarm's state changes.
const CLOUDWATCH = 'cloudwatch.amazonaws.com'

function load(path) {
  return JSON.parse(readFileSync(path, 'utf8'))
}

/** The stack's account and region, from its explicit provider. */
function placement(template) {
  const provider = Object.values(template.resources).find((r) => r.type === 'pulumi:providers:aws')
  return { account: provider.properties.allowedAccountIds[0], region: provider.properties.region }
}

/** What `${logical.attribute}` becomes once deployed. */
function attribute(template, logical, attr) {
  const res = template.resources[logical]
  if (!res) throw new Error(`unknown resource in interpolation: ${logical}`)
  const { account, region } = placement(template)
  const name = res.properties?.name ?? res.properties?.bucket ?? logical
  const table = {
    'aws:kinesis:Stream': { arn: `arn:aws:kinesis:${region}:${account}:stream/${name}`, name },
    'aws:kms:Key': { arn: `arn:aws:kms:${region}:${account}:key/${EXAMPLE_KEY_ID}`, id: EXAMPLE_KEY_ID },
    'aws:sqs:Queue': { arn: `arn:aws:sqs:${region}:${account}:${name}`, url: `https://sqs.${region}.amazonaws.com/${account}/${name}`, name },
    'aws:lambda:Function': { arn: `arn:aws:lambda:${region}:${account}:function:${name}`, name },
    'aws:iam:Role': { arn: `arn:aws:iam::${account}:role/${name}`, id: name, name },
    'aws:cloudwatch:LogGroup': { arn: `arn:aws:logs:${region}:${account}:log-group:${name}`, name },
    'aws:s3:Bucket': { arn: `arn:aws:s3:::${name}`, id: name, bucket: name },
    'aws:sns:Topic': { arn: `arn:aws:sns:${region}:${account}:${name}`, name },
    'aws:dynamodb:Table': { arn: `arn:aws:dynamodb:${region}:${account}:table/${name}`, name },
  }
  const value = table[res.type]?.[attr]
  if (value === undefined) throw new Error(`no example value for \${${logical}.${attr}} (${res.type})`)
  return value
}

/** Resolves fn::toJSON, fn::secret and interpolations into plain JSON. */
function resolve(template, value) {
  if (typeof value === 'string') {
    return value.replace(/\$\{(\w+)\.(\w+)\}/g, (_, logical, attr) => attribute(template, logical, attr))
  }
  if (Array.isArray(value)) return value.map((v) => resolve(template, v))
  if (value && typeof value === 'object') {
    if ('fn::toJSON' in value) return resolve(template, value['fn::toJSON'])
    if ('fn::secret' in value) return resolve(template, value['fn::secret'])
    const fn = Object.keys(value).find((k) => k.startsWith('fn::'))
    if (fn) throw new Error(`cannot resolve ${fn}`)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(template, v)]))
  }
  return value
}

/** Every policy document of a template: trust, identity (by role) and key policies. */
function documents(label, template) {
  const docs = []
  for (const [logical, res] of Object.entries(template.resources)) {
    if (res.type === 'aws:iam:Role') {
      docs.push({ kind: 'trust', name: `${label}-${logical}-trust`, role: logical, document: resolve(template, res.properties.assumeRolePolicy) })
    } else if (res.type === 'aws:iam:RolePolicy') {
      const role = res.properties.role.match(/^\$\{(\w+)\.id\}$/)[1]
      docs.push({ kind: 'identity', name: `${label}-${logical}`, role, document: resolve(template, res.properties.policy) })
    } else if (res.type === 'aws:kms:Key') {
      docs.push({ kind: 'key', name: `${label}-${logical}-policy`, key: logical, document: resolve(template, res.properties.policy) })
    } else if (res.type === 'aws:s3:BucketPolicy') {
      docs.push({ kind: 'bucket', name: `${label}-${logical}`, document: resolve(template, res.properties.policy) })
    } else if (res.type === 'aws:sns:TopicPolicy') {
      docs.push({ kind: 'topic', name: `${label}-${logical}`, document: resolve(template, res.properties.policy) })
    }
  }
  return docs
}

function extract(outdir, paths) {
  mkdirSync(outdir, { recursive: true })
  let count = 0
  for (const path of paths) {
    const label = path.split('/').pop().replace(/\.json$/, '')
    for (const d of documents(label, load(path))) {
      mkdirSync(join(outdir, d.kind), { recursive: true })
      writeFileSync(join(outdir, d.kind, `${d.name}.json`), JSON.stringify(d.document, null, 2))
      count += 1
    }
  }
  console.log(`iam: extracted ${count} policy documents into ${outdir}`)
}

// ---------------------------------------------------------------- simulation

// iam-simulate resolves variable condition keys only in the `prefix/name` form
// (aws:PrincipalTag/x) and drops `kms:EncryptionContext:<name>` as not applicable. Those
// conditions are evaluated here instead, before the simulation: StringEquals only (any other
// operator on such a key is an error), a statement whose condition does not hold is removed,
// and one whose condition holds keeps its other conditions for the simulator.
const ENCRYPTION_CONTEXT = /^kms:encryptioncontext:/i

function applyEncryptionContext(policy, context) {
  if (!policy) return { policy, context }
  const rest = Object.fromEntries(Object.entries(context).filter(([k]) => !ENCRYPTION_CONTEXT.test(k)))
  const statements = []
  for (const statement of policy.Statement) {
    let holds = true
    const condition = {}
    for (const [operator, keys] of Object.entries(statement.Condition ?? {})) {
      for (const [key, expected] of Object.entries(keys)) {
        if (!ENCRYPTION_CONTEXT.test(key)) {
          condition[operator] = { ...condition[operator], [key]: expected }
          continue
        }
        if (operator !== 'StringEquals') throw new Error(`cannot evaluate ${operator} on ${key}`)
        const actual = Object.entries(context).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1]
        holds &&= [expected].flat().includes(actual)
      }
    }
    if (holds) statements.push({ ...statement, Condition: condition })
  }
  return { policy: { ...policy, Statement: statements }, context: rest }
}

async function simulate(templates, quiet = false) {
  const log = quiet ? () => {} : console.log
  const source = templates.find((t) => 'relayFunction' in t.resources)
  const target = templates.find((t) => 'crossAccountRole' in t.resources)
  if (!source || !target) throw new Error('need the source and the target template')
  const src = placement(source)
  const tgt = placement(target)
  const docsOf = (template, label) => documents(label, template)
  const srcDocs = docsOf(source, 'source')
  const tgtDocs = docsOf(target, 'target')
  const identity = (docs, role) => docs.filter((d) => d.kind === 'identity' && d.role === role).map((d) => ({ name: d.name, policy: d.document }))
  const trustOf = (docs, role) => docs.find((d) => d.kind === 'trust' && d.role === role).document
  const keyPolicyOf = (docs, key) => docs.find((d) => d.kind === 'key' && d.key === key).document
  const keyPolicy = keyPolicyOf(srcDocs, 'streamKey')
  const bucketPolicy = srcDocs.find((d) => d.kind === 'bucket').document

  const roleArn = (t, logical) => attribute(t, logical, 'arn')
  const session = (arn, sessionName) => arn.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/') + `/${sessionName}`

  const relayRole = roleArn(source, 'relayRole')
  const producerRole = roleArn(source, 'producerRole')
  const crossRole = roleArn(target, 'crossAccountRole')
  const targetFn = attribute(target, 'targetFunction', 'arn')
  const stream = attribute(source, 'stream', 'arn')
  const key = attribute(source, 'streamKey', 'arn')
  const bucket = attribute(source, 'deadLetterBucket', 'arn')
  const producerName = attribute(source, 'producerFunction', 'name')
  // Objects as their writers name them (shared::dead_letter's layout; Lambda's documented keys).
  const relayObject = `${bucket}/relay/rejected_by_target/shardId-000000000000/4959.json`
  const mappingObject = `${bucket}/aws/lambda/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/shardId-000000000000/2026/11/25/2026-11-25T16.00.00-6d5c4b3a`
  const asyncObject = (fn) => `${bucket}/aws/lambda/async/${fn}/2026/11/25/2026-11-25T16.00.00-6d5c4b3a`
  const tls = { 'aws:SecureTransport': 'true' }
  const scheduleDlq = attribute(source, 'scheduleDeadLetterQueue', 'arn')
  const producerFn = attribute(source, 'producerFunction', 'arn')
  // The value the relay sends (its TARGET_EXTERNAL_ID), not the one the trust policy expects.
  const externalId = resolve(source, source.resources.relayFunction.properties.environment.variables.TARGET_EXTERNAL_ID)
  // A role of the source account allowed everything on the bucket by its own policy.
  const operatorRole = `arn:aws:iam::${src.account}:role/operator`
  const operatorPolicy = [{ name: 'operator', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:PutObject', 's3:GetObject'], Resource: `${bucket}/*` }] } }]
  const operator = (action, resource) => ({ principal: session(operatorRole, 'operator'), principalArn: operatorRole, action, resource, resourceAccount: src.account, identityPolicies: operatorPolicy, resourcePolicy: bucketPolicy, context: tls })
  // A principal that would be allowed by its own account: only the target's trust policy
  // stands between it and the role.
  const allowAssume = [{ name: 'allow-assume', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: crossRole }] } }]

  // Each case: the request, the policies in force, the expected decision.
  const assume = (principalRole, identityPolicies, context) => ({
    principal: session(principalRole, 'relay'),
    principalArn: principalRole,
    action: 'sts:AssumeRole',
    resource: crossRole,
    resourceAccount: tgt.account,
    identityPolicies,
    resourcePolicy: trustOf(tgtDocs, 'crossAccountRole'),
    context,
  })
  const asRole = (template, docs, logical, action, resource, resourcePolicy, context = {}) => ({
    principal: session(roleArn(template, logical), logical),
    principalArn: roleArn(template, logical),
    action,
    resource,
    resourceAccount: resource.split(':')[4] || placement(template).account,
    identityPolicies: identity(docs, logical),
    resourcePolicy,
    context,
  })
  // What Kinesis sends to KMS for a record of `streamArn`, called by a role of the account.
  const viaKinesis = (streamArn) => ({ 'kms:ViaService': `kinesis.${src.region}.amazonaws.com`, 'kms:CallerAccount': src.account, 'kms:EncryptionContext:aws:kinesis:arn': streamArn })
  const cases = [
    ['relay role assumes the cross-account role with the external id', 'Allowed', assume(relayRole, identity(srcDocs, 'relayRole'), { 'sts:ExternalId': externalId })],
    ['relay role without an external id is refused', 'Denied', assume(relayRole, identity(srcDocs, 'relayRole'), {})],
    ['relay role with a wrong external id is refused', 'Denied', assume(relayRole, identity(srcDocs, 'relayRole'), { 'sts:ExternalId': 'guess' })],
    ['another role of the source account (allowed by its own policy) is refused', 'Denied', assume(producerRole, allowAssume, { 'sts:ExternalId': externalId })],
    ['a same-named role in another account is refused', 'Denied', assume(relayRole.replace(src.account, '333333333333'), allowAssume, { 'sts:ExternalId': externalId })],
    ['relay role may not assume any other role of the target account', 'Denied', { ...assume(relayRole, identity(srcDocs, 'relayRole'), { 'sts:ExternalId': externalId }), resource: `arn:aws:iam::${tgt.account}:role/other`, resourcePolicy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${src.account}:root` }, Action: 'sts:AssumeRole' }] } }],
    ['cross-account role invokes the target function', 'Allowed', asRole(target, tgtDocs, 'crossAccountRole', 'lambda:InvokeFunction', targetFn)],
    ['cross-account role may not invoke another function', 'Denied', asRole(target, tgtDocs, 'crossAccountRole', 'lambda:InvokeFunction', targetFn.replace(/function:.*/, 'function:other'))],
    ['cross-account role may not read the target function', 'Denied', asRole(target, tgtDocs, 'crossAccountRole', 'lambda:GetFunction', targetFn)],
    ['cross-account role may not change the target function', 'Denied', asRole(target, tgtDocs, 'crossAccountRole', 'lambda:UpdateFunctionCode', targetFn)],
    ['relay reads the stream', 'Allowed', asRole(source, srcDocs, 'relayRole', 'kinesis:GetRecords', stream)],
    ['relay may not write the stream', 'Denied', asRole(source, srcDocs, 'relayRole', 'kinesis:PutRecords', stream)],
    ['relay writes a dead letter under relay/', 'Allowed', asRole(source, srcDocs, 'relayRole', 's3:PutObject', relayObject, bucketPolicy, tls)],
    ['relay writes the mapping on-failure record under aws/lambda/<uuid>/', 'Allowed', asRole(source, srcDocs, 'relayRole', 's3:PutObject', mappingObject, bucketPolicy, tls)],
    ['relay lists the dead-letter bucket', 'Allowed', asRole(source, srcDocs, 'relayRole', 's3:ListBucket', bucket, bucketPolicy, tls)],
    ['relay may not write the producer async prefix', 'Denied', asRole(source, srcDocs, 'relayRole', 's3:PutObject', asyncObject(producerName), bucketPolicy, tls)],
    ['relay may not write outside its prefixes', 'Denied', asRole(source, srcDocs, 'relayRole', 's3:PutObject', `${bucket}/redriven/x.json`, bucketPolicy, tls)],
    ['relay may not read a dead letter', 'Denied', asRole(source, srcDocs, 'relayRole', 's3:GetObject', relayObject, bucketPolicy, tls)],
    ['relay may not delete a dead letter', 'Denied', asRole(source, srcDocs, 'relayRole', 's3:DeleteObject', relayObject, bucketPolicy, tls)],
    ['relay may not write without TLS', 'Denied', asRole(source, srcDocs, 'relayRole', 's3:PutObject', relayObject, bucketPolicy, { 'aws:SecureTransport': 'false' })],
    ['producer records a failed tick under its async prefix', 'Allowed', asRole(source, srcDocs, 'producerRole', 's3:PutObject', asyncObject(producerName), bucketPolicy, tls)],
    ['producer lists the dead-letter bucket', 'Allowed', asRole(source, srcDocs, 'producerRole', 's3:ListBucket', bucket, bucketPolicy, tls)],
    ['producer may not write another function async prefix', 'Denied', asRole(source, srcDocs, 'producerRole', 's3:PutObject', asyncObject('other'), bucketPolicy, tls)],
    ['producer may not write the relay prefix', 'Denied', asRole(source, srcDocs, 'producerRole', 's3:PutObject', relayObject, bucketPolicy, tls)],
    ['producer may not read a dead letter', 'Denied', asRole(source, srcDocs, 'producerRole', 's3:GetObject', asyncObject(producerName), bucketPolicy, tls)],
    ['producer may not write a mapping on-failure record', 'Denied', asRole(source, srcDocs, 'producerRole', 's3:PutObject', mappingObject, bucketPolicy, tls)],
    ['producer may not write outside its prefix', 'Denied', asRole(source, srcDocs, 'producerRole', 's3:PutObject', `${bucket}/redriven/x.json`, bucketPolicy, tls)],
    // What AWS documents for an S3 on-failure destination, on the execution roles alone (no
    // bucket policy): s3:PutObject and s3:ListBucket on this bucket; where they may write is
    // the bucket policy's (the cases above).
    ['relay role alone may put a mapping on-failure record, as AWS documents', 'Allowed', asRole(source, srcDocs, 'relayRole', 's3:PutObject', mappingObject)],
    ['relay role alone may list the bucket, as AWS documents', 'Allowed', asRole(source, srcDocs, 'relayRole', 's3:ListBucket', bucket)],
    ['producer role alone may put a failed tick, as AWS documents', 'Allowed', asRole(source, srcDocs, 'producerRole', 's3:PutObject', asyncObject(producerName))],
    ['relay role alone may not write another bucket', 'Denied', asRole(source, srcDocs, 'relayRole', 's3:PutObject', 'arn:aws:s3:::another-bucket/aws/lambda/x')],
    // Another principal of the source account whose own policy lets it write anywhere in the
    // bucket (an operator, another function): the bucket policy keeps it out of the writers'
    // prefixes, and leaves it what relayctl needs (moving objects under redriven/).
    ['an operator allowed by its own policy may not forge a relay dead letter', 'Denied', operator('s3:PutObject', relayObject)],
    ['an operator allowed by its own policy may not forge a mapping on-failure record', 'Denied', operator('s3:PutObject', mappingObject)],
    ['an operator allowed by its own policy may not forge a failed tick', 'Denied', operator('s3:PutObject', asyncObject(producerName))],
    ['an operator allowed by its own policy may move a redriven object', 'Allowed', operator('s3:PutObject', `${bucket}/redriven/relay/rejected_by_target/shardId-000000000000/4959.json`)],
    ['an operator allowed by its own policy may read a dead letter', 'Allowed', operator('s3:GetObject', relayObject)],
    ['relay decrypts through Kinesis with the stream key', 'Allowed', asRole(source, srcDocs, 'relayRole', 'kms:Decrypt', key, keyPolicy, viaKinesis(stream))],
    ['relay may not use the stream key outside Kinesis', 'Denied', asRole(source, srcDocs, 'relayRole', 'kms:Decrypt', key, keyPolicy, { 'kms:CallerAccount': src.account, 'kms:EncryptionContext:aws:kinesis:arn': stream })],
    ['relay may not use the stream key for another stream', 'Denied', asRole(source, srcDocs, 'relayRole', 'kms:Decrypt', key, keyPolicy, viaKinesis(stream.replace(/stream\/.*/, 'stream/other')))],
    ['producer writes the stream', 'Allowed', asRole(source, srcDocs, 'producerRole', 'kinesis:PutRecords', stream)],
    ['producer encrypts through Kinesis with the stream key', 'Allowed', asRole(source, srcDocs, 'producerRole', 'kms:GenerateDataKey', key, keyPolicy, viaKinesis(stream))],
    ['producer may not read the stream', 'Denied', asRole(source, srcDocs, 'producerRole', 'kinesis:GetRecords', stream)],
    ['producer may not assume the cross-account role', 'Denied', asRole(source, srcDocs, 'producerRole', 'sts:AssumeRole', crossRole, trustOf(tgtDocs, 'crossAccountRole'), { 'sts:ExternalId': externalId })],
    ['scheduler invokes the producer', 'Allowed', asRole(source, srcDocs, 'schedulerRole', 'lambda:InvokeFunction', producerFn)],
    ['scheduler may not invoke the relay', 'Denied', asRole(source, srcDocs, 'schedulerRole', 'lambda:InvokeFunction', attribute(source, 'relayFunction', 'arn'))],
    ['scheduler keeps an undelivered tick in the schedule dead-letter queue', 'Allowed', asRole(source, srcDocs, 'schedulerRole', 'sqs:SendMessage', scheduleDlq)],
    ['scheduler may not write the dead-letter bucket', 'Denied', asRole(source, srcDocs, 'schedulerRole', 's3:PutObject', asyncObject(producerName), bucketPolicy, tls)],
    ['scheduler may not read its dead-letter queue', 'Denied', asRole(source, srcDocs, 'schedulerRole', 'sqs:ReceiveMessage', scheduleDlq)],
    ...alarmCases(source, srcDocs, 'source', 'relayRole', keyPolicy),
    ...alarmCases(target, tgtDocs, 'target', 'targetRole'),
    ...idempotencyCases(target, tgtDocs),
    ...sampleEffectsCases(target, tgtDocs),
  ]

  // The sample's effects table (sampleEffectsTable, a test device the committed example leaves
  // off; check-infra renders the target with it on): the target role may count an effect there
  // (UpdateItem) and do nothing else with it, and the statement grants nothing on the
  // idempotency table or any other. Its absence is an error, as for the idempotency table.
  function sampleEffectsCases(template, docs) {
    if (!('effectsTable' in template.resources)) throw new Error('the target template has no effectsTable: check-infra must render the target with sampleEffectsTable=true')
    const table = attribute(template, 'effectsTable', 'arn')
    const idempotency = attribute(template, 'idempotencyTable', 'arn')
    const other = table.replace(/table\/.*/, 'table/another-table')
    const cases = [
      ['target role may UpdateItem on the sample effects table', 'Allowed', asRole(template, docs, 'targetRole', 'dynamodb:UpdateItem', table)],
      ['target role may not UpdateItem on another table', 'Denied', asRole(template, docs, 'targetRole', 'dynamodb:UpdateItem', other)],
      ['cross-account role may not UpdateItem on the sample effects table', 'Denied', asRole(template, docs, 'crossAccountRole', 'dynamodb:UpdateItem', table)],
    ]
    for (const action of ['dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Scan', 'dynamodb:Query', 'dynamodb:DeleteTable']) {
      cases.push([`target role may not ${action} on the sample effects table`, 'Denied', asRole(template, docs, 'targetRole', action, table)])
    }
    // What the idempotency table's own statement does not allow stays denied with this one.
    for (const action of ['dynamodb:Scan', 'dynamodb:GetItem']) {
      cases.push([`target role may not ${action} on its idempotency table with the effects table on`, 'Denied', asRole(template, docs, 'targetRole', action, idempotency)])
    }
    return cases
  }

  // The idempotency table (idempotencyStore): the target role does what the store needs on its
  // own table and nothing else; the relay's cross-account role gets nothing of it. Every
  // template check-infra renders has the table (the example stack turns it on): without it
  // these cases would check nothing, so its absence is an error.
  function idempotencyCases(template, docs) {
    if (!('idempotencyTable' in template.resources)) throw new Error('the target template has no idempotencyTable: the example stack must set idempotencyStore')
    const table = attribute(template, 'idempotencyTable', 'arn')
    const other = table.replace(/table\/.*/, 'table/another-table')
    const cases = []
    for (const action of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchGetItem']) {
      cases.push([`target role may ${action} on its idempotency table`, 'Allowed', asRole(template, docs, 'targetRole', action, table)])
      cases.push([`target role may not ${action} on another table`, 'Denied', asRole(template, docs, 'targetRole', action, other)])
      cases.push([`cross-account role may not ${action} on the idempotency table`, 'Denied', asRole(template, docs, 'crossAccountRole', action, table)])
    }
    for (const action of ['dynamodb:Scan', 'dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:DeleteTable', 'dynamodb:UpdateTable', 'dynamodb:UpdateTimeToLive']) {
      cases.push([`target role may not ${action} on its idempotency table`, 'Denied', asRole(template, docs, 'targetRole', action, table)])
    }
    cases.push(['cross-account role may not Scan the idempotency table', 'Denied', asRole(template, docs, 'crossAccountRole', 'dynamodb:Scan', table)])
    return cases
  }

  // Each stack's alarm topic and key: CloudWatch, acting for one of this stack's alarms, and
  // nobody else. `otherKey` is another key of the stack that CloudWatch must not get to use.
  function alarmCases(template, docs, label, functionRole, otherKey) {
    const { account, region } = placement(template)
    const alarmArns = Object.values(template.resources)
      .filter((r) => r.type === 'aws:cloudwatch:MetricAlarm')
      .map((r) => `arn:aws:cloudwatch:${region}:${account}:alarm:${r.properties.name}`)
    const topic = attribute(template, 'alarmTopic', 'arn')
    const key = attribute(template, 'alarmKey', 'arn')
    const topicPolicy = docs.find((d) => d.kind === 'topic').document
    const alarmKey = keyPolicyOf(docs, 'alarmKey')
    const forAlarm = (arn, sourceAccount = account) => ({ 'aws:SourceAccount': sourceAccount, 'aws:SourceArn': arn })
    const asService = (service, action, resource, resourcePolicy, context) => ({ principal: service, action, resource, resourceAccount: account, identityPolicies: [], resourcePolicy, context })
    const elsewhere = alarmArns[0].replace(account, '333333333333')
    const otherAlarm = alarmArns[0].replace(/alarm:.*/, 'alarm:someone-elses-alarm')
    const outsider = 'arn:aws:iam::333333333333:role/publisher'
    const allowPublish = [{ name: 'allow-publish', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sns:Publish', Resource: topic }] } }]
    const cases = []
    for (const arn of alarmArns) {
      cases.push([`${label}: CloudWatch publishes for its alarm ${arn.split(':alarm:')[1]}`, 'Allowed', asService(CLOUDWATCH, 'sns:Publish', topic, topicPolicy, forAlarm(arn))])
      cases.push([`${label}: CloudWatch encrypts with the alarm key for ${arn.split(':alarm:')[1]}`, 'Allowed', asService(CLOUDWATCH, 'kms:GenerateDataKey', key, alarmKey, forAlarm(arn))])
    }
    cases.push(
      [`${label}: CloudWatch may not publish for an alarm of another account`, 'Denied', asService(CLOUDWATCH, 'sns:Publish', topic, topicPolicy, forAlarm(elsewhere, '333333333333'))],
      [`${label}: CloudWatch may not publish for another alarm of this account`, 'Denied', asService(CLOUDWATCH, 'sns:Publish', topic, topicPolicy, forAlarm(otherAlarm))],
      [`${label}: another service may not publish`, 'Denied', asService('events.amazonaws.com', 'sns:Publish', topic, topicPolicy, forAlarm(alarmArns[0]))],
      [`${label}: CloudWatch may not subscribe to the topic`, 'Denied', asService(CLOUDWATCH, 'sns:Subscribe', topic, topicPolicy, forAlarm(alarmArns[0]))],
      [`${label}: a role of another account (allowed by its own policy) may not publish`, 'Denied', { principal: session(outsider, 'p'), principalArn: outsider, action: 'sns:Publish', resource: topic, resourceAccount: account, identityPolicies: allowPublish, resourcePolicy: topicPolicy, context: {} }],
      [`${label}: the ${functionRole} may not publish`, 'Denied', asRole(template, docs, functionRole, 'sns:Publish', topic, topicPolicy)],
      [`${label}: CloudWatch may not use the alarm key for another alarm`, 'Denied', asService(CLOUDWATCH, 'kms:GenerateDataKey', key, alarmKey, forAlarm(otherAlarm))],
      [`${label}: the ${functionRole} may not use the alarm key`, 'Denied', asRole(template, docs, functionRole, 'kms:Decrypt', key, alarmKey)],
    )
    if (otherKey) cases.push([`${label}: CloudWatch may not use the stream key`, 'Denied', asService(CLOUDWATCH, 'kms:GenerateDataKey', attribute(template, 'streamKey', 'arn'), otherKey, forAlarm(alarmArns[0]))])
    return cases
  }

  let passed = 0
  let failed = 0
  for (const [title, expected, original] of cases) {
    const { policy: resourcePolicy, context } = applyEncryptionContext(original.resourcePolicy, original.context)
    const c = { ...original, resourcePolicy, context }
    const simulation = {
      request: {
        principal: c.principal,
        action: c.action,
        resource: { resource: c.resource, accountId: c.resourceAccount },
        // iam-simulate does not derive aws:PrincipalArn from the principal: pass it.
        // A service principal has neither.
        contextVariables: { ...(c.principalArn && { 'aws:PrincipalArn': c.principalArn, 'aws:PrincipalAccount': c.principalArn.split(':')[4] }), ...c.context },
      },
      identityPolicies: c.identityPolicies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: c.resourcePolicy,
    }
    const result = await runSimulation(simulation, { simulationMode: 'Strict' })
    let problem
    let decision
    if (result.resultType === 'error') {
      problem = `simulation error: ${JSON.stringify(result.errors)}`
    } else {
      decision = result.overallResult
      const ignored = result.resultType === 'single' ? result.result.ignoredContextKeys ?? [] : result.results.flatMap((r) => r.ignoredContextKeys ?? [])
      // A silently dropped key would make a Denied case pass for the wrong reason.
      if (ignored.length) problem = `context keys ignored by the simulator: ${ignored.join(', ')}`
      else if ((expected === 'Allowed') !== (decision === 'Allowed')) problem = `expected ${expected}, got ${decision}`
    }
    if (problem) {
      failed += 1
      log(`iam: FAIL ${title}: ${problem}`)
    } else {
      passed += 1
      log(`iam: ok   ${title} -> ${decision}`)
    }
  }
  log(`iam: ${passed} passed, ${failed} failed`)
  return { passed, failed }
}

/** Breaks copies of the templates; the simulation must catch every break. */
async function selfTest(templates) {
  const trustStatement = (ts) => ts.find((t) => 'crossAccountRole' in t.resources).resources.crossAccountRole.properties.assumeRolePolicy['fn::toJSON'].Statement[0]
  const breaks = [
    ['trust without the aws:PrincipalArn condition', (ts) => delete trustStatement(ts).Condition.ArnEquals],
    ['trust without the sts:ExternalId condition', (ts) => delete trustStatement(ts).Condition.StringEquals],
    ['cross-account policy on every function', (ts) => {
      const p = ts.find((t) => 'crossAccountRole' in t.resources).resources.crossAccountRolePolicy.properties.policy['fn::toJSON']
      p.Statement[0].Resource = ['*']
    }],
    ['stream key usable for any stream', (ts) => {
      const p = ts.find((t) => 'streamKey' in t.resources).resources.streamKey.properties.policy['fn::toJSON']
      delete p.Statement[1].Condition.StringEquals['kms:EncryptionContext:aws:kinesis:arn']
    }],
    ...['RelayWritesOnlyItsPrefixes', 'RelayNeverWritesFailedTicks', 'ProducerWritesOnlyItsFailedTicks', 'OnlyTheWritersWriteDeadLetters'].map((sid) => [`bucket policy without ${sid}`, (ts) => {
      const p = ts.find((t) => 'deadLetterBucketPolicy' in t.resources).resources.deadLetterBucketPolicy.properties.policy['fn::toJSON']
      p.Statement = p.Statement.filter((st) => st.Sid !== sid)
    }]),
    ['relay role without s3:ListBucket', (ts) => {
      const p = ts.find((t) => 'relayRole' in t.resources).resources.relayRolePolicy.properties.policy['fn::toJSON']
      p.Statement = p.Statement.filter((s) => s.Sid !== 'ListDeadLetterBucket')
    }],
    ['bucket policy without the TLS condition on objects', (ts) => {
      const p = ts.find((t) => 'deadLetterBucketPolicy' in t.resources).resources.deadLetterBucketPolicy.properties.policy['fn::toJSON']
      p.Statement[0].Resource = [p.Statement[0].Resource[0]]
    }],
    ['alarm topic policy without the aws:SourceArn condition', (ts) => {
      delete ts.find((t) => 'crossAccountRole' in t.resources).resources.alarmTopicPolicy.properties.policy['fn::toJSON'].Statement[0].Condition.ArnEquals
    }],
    ['alarm key usable by any alarm', (ts) => {
      delete ts.find((t) => 'relayFunction' in t.resources).resources.alarmKey.properties.policy['fn::toJSON'].Statement[1].Condition.ArnEquals
    }],
    ['target policy on every table', (ts) => {
      const p = ts.find((t) => 'crossAccountRole' in t.resources).resources.targetRolePolicy.properties.policy['fn::toJSON']
      p.Statement.find((s) => s.Sid === 'UseOwnIdempotencyTable').Resource = ['*']
    }],
    ['target policy with every DynamoDB action', (ts) => {
      const p = ts.find((t) => 'crossAccountRole' in t.resources).resources.targetRolePolicy.properties.policy['fn::toJSON']
      p.Statement.find((s) => s.Sid === 'UseOwnIdempotencyTable').Action = ['dynamodb:*']
    }],
    ['target policy without the idempotency table statement', (ts) => {
      const p = ts.find((t) => 'crossAccountRole' in t.resources).resources.targetRolePolicy.properties.policy['fn::toJSON']
      p.Statement = p.Statement.filter((s) => s.Sid !== 'UseOwnIdempotencyTable')
    }],
    ['target effects statement on every table', (ts) => {
      const p = ts.find((t) => 'crossAccountRole' in t.resources).resources.targetRolePolicy.properties.policy['fn::toJSON']
      p.Statement.find((s) => s.Sid === 'CountSampleEffects').Resource = ['*']
    }],
    ['target effects statement with every DynamoDB action', (ts) => {
      const p = ts.find((t) => 'crossAccountRole' in t.resources).resources.targetRolePolicy.properties.policy['fn::toJSON']
      p.Statement.find((s) => s.Sid === 'CountSampleEffects').Action = ['dynamodb:*']
    }],
    ['target policy without the effects table statement', (ts) => {
      const p = ts.find((t) => 'crossAccountRole' in t.resources).resources.targetRolePolicy.properties.policy['fn::toJSON']
      p.Statement = p.Statement.filter((s) => s.Sid !== 'CountSampleEffects')
    }],
    ['relay policy without the Kinesis read statement', (ts) => {
      const p = ts.find((t) => 'relayRole' in t.resources).resources.relayRolePolicy.properties.policy['fn::toJSON']
      p.Statement = p.Statement.filter((s) => s.Sid !== 'ReadThisStream')
    }],
  ]
  let missed = 0
  for (const [title, mutate] of breaks) {
    const copy = structuredClone(templates)
    mutate(copy)
    const { failed } = await simulate(copy, true)
    if (failed === 0) {
      missed += 1
      console.log(`iam: self-test FAIL: break not detected: ${title}`)
    }
  }
  console.log(`iam: self-test: ${breaks.length - missed} of ${breaks.length} breaks detected`)
  return missed === 0
}

const [command, ...args] = process.argv.slice(2)
if (command === 'extract') {
  extract(args[0], args.slice(1))
} else if (command === 'simulate') {
  const templates = args.map(load)
  const { failed } = await simulate(templates)
  const selfTestOk = await selfTest(templates)
  process.exit(failed === 0 && selfTestOk ? 0 : 1)
} else {
  console.error('usage: iam.mjs extract <outdir> <templates...> | simulate <templates...>')
  process.exit(2)
}
