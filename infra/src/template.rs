//! The Pulumi YAML template as typed values: what the YAML runtime reads from the compiler.
//!
//! Property values stay `serde_json::Value`s because a template value may be a literal, an
//! interpolation (`${stream.arn}`) or a built-in function (`fn::toJSON`, `fn::secret`,
//! `fn::fileArchive`); the helpers below build the last two kinds so no caller writes
//! the `fn::` spelling by hand.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

/// The provider package and version every `aws` resource names. The conformance check reads
/// this same value (`infra --pulumi-aws-version`) to download the matching SDK wheel.
pub const PULUMI_AWS_VERSION: &str = "7.51.1";

/// The Pulumi project name (fixed: the stack files and the local harness use it).
pub const PROJECT: &str = "cross-account-relay";

/// A whole template: resources plus stack outputs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Template {
    pub name: String,
    pub description: String,
    pub resources: BTreeMap<String, Resource>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Value>,
}

impl Template {
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            name: PROJECT.to_string(),
            description: description.into(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
        }
    }

    /// Adds a resource under its logical name; a second resource with the same name is a bug
    /// in the program, caught by the tests.
    pub fn add(&mut self, logical_name: &str, resource: Resource) {
        let previous = self.resources.insert(logical_name.to_string(), resource);
        debug_assert!(previous.is_none(), "duplicate logical name {logical_name}");
    }

    pub fn output(&mut self, name: &str, value: impl Into<Value>) {
        self.outputs.insert(name.to_string(), value.into());
    }
}

/// One resource: its type token, inputs and options.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Resource {
    #[serde(rename = "type")]
    pub type_token: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "ResourceOptions::is_empty")]
    pub options: ResourceOptions,
}

/// The resource options this program uses.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceOptions {
    /// `${<provider>}`: every AWS resource goes through its stack's explicit provider, which
    /// carries `allowedAccountIds`, so nothing can land in the wrong account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The pinned `aws` package version; set on every `aws` resource so the package-discovery
    /// call sees the pin whichever resource it meets first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Replace by deleting the old resource first. Needed where AWS refuses a second copy
    /// that has no name of its own to tell them apart (an event source mapping for the same
    /// stream and function): the engine's default creates the replacement first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub delete_before_replace: bool,
}

impl ResourceOptions {
    fn is_empty(&self) -> bool {
        self.provider.is_none()
            && self.version.is_none()
            && self.depends_on.is_empty()
            && !self.delete_before_replace
    }
}

impl Resource {
    /// An `aws` resource through the given provider (logical name of a `pulumi:providers:aws`).
    pub fn aws(type_token: &str, provider: &str) -> Self {
        Self {
            type_token: type_token.to_string(),
            properties: BTreeMap::new(),
            options: ResourceOptions {
                provider: Some(interpolate(provider)),
                version: Some(PULUMI_AWS_VERSION.to_string()),
                ..ResourceOptions::default()
            },
        }
    }

    /// The explicit `aws` provider itself.
    pub fn aws_provider() -> Self {
        Self {
            type_token: "pulumi:providers:aws".to_string(),
            properties: BTreeMap::new(),
            options: ResourceOptions {
                version: Some(PULUMI_AWS_VERSION.to_string()),
                ..ResourceOptions::default()
            },
        }
    }

    /// A resource of the built-in `pulumi` package (no provider, no version).
    pub fn builtin(type_token: &str) -> Self {
        Self {
            type_token: type_token.to_string(),
            properties: BTreeMap::new(),
            options: ResourceOptions::default(),
        }
    }

    pub fn prop(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_string(), value.into());
        self
    }

    pub fn delete_before_replace(mut self) -> Self {
        self.options.delete_before_replace = true;
        self
    }

    pub fn depends_on(mut self, logical_names: &[&str]) -> Self {
        self.options
            .depends_on
            .extend(logical_names.iter().map(|n| interpolate(n)));
        self
    }
}

/// `${name}`: a reference to a whole resource (for `provider` and `dependsOn`).
pub fn interpolate(logical_name: &str) -> String {
    format!("${{{logical_name}}}")
}

/// `${name.attribute}`: an output of another resource.
pub fn output_of(logical_name: &str, attribute: &str) -> String {
    format!("${{{logical_name}.{attribute}}}")
}

/// `fn::toJSON`: a policy document with interpolations inside, serialised by the runtime.
pub fn to_json(document: Value) -> Value {
    json!({ "fn::toJSON": document })
}

/// `fn::secret`: keeps the value encrypted in the stack's state.
pub fn secret(value: &str) -> Value {
    json!({ "fn::secret": value })
}

/// `fn::fileArchive`: a zip file relative to the project root.
pub fn file_archive(path: &str) -> Value {
    json!({ "fn::fileArchive": path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_resources_name_their_provider_and_the_pin() {
        let r = Resource::aws("aws:sqs/queue:Queue", "sourceProvider").prop("name", "q");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["options"]["provider"], "${sourceProvider}");
        assert_eq!(v["options"]["version"], PULUMI_AWS_VERSION);
        assert_eq!(v["type"], "aws:sqs/queue:Queue");
        assert!(v["options"].get("dependsOn").is_none());
        assert!(v["options"].get("deleteBeforeReplace").is_none());
        let v = serde_json::to_value(r.delete_before_replace()).unwrap();
        assert_eq!(v["options"]["deleteBeforeReplace"], true);
    }

    #[test]
    fn builtin_resources_have_no_options() {
        let v = serde_json::to_value(Resource::builtin("pulumi:pulumi:StackReference")).unwrap();
        assert!(v.get("options").is_none());
    }

    #[test]
    fn helpers_spell_the_yaml_functions() {
        assert_eq!(output_of("stream", "arn"), "${stream.arn}");
        assert_eq!(secret("x"), json!({"fn::secret": "x"}));
        assert_eq!(file_archive("a.zip"), json!({"fn::fileArchive": "a.zip"}));
        assert_eq!(to_json(json!({})), json!({"fn::toJSON": {}}));
    }
}
