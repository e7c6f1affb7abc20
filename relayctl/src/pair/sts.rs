//! Which account a stack's credentials belong to: STS GetCallerIdentity, asked with exactly
//! the credentials that stack's Pulumi runs get.

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::{BehaviorVersion, Region};
use aws_runtime::env_config::file::EnvConfigFiles as ProfileFiles;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::error::display::DisplayErrorContext;

/// The credentials one stack's runs get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A named profile, and nothing else (the runs get no credential variables).
    Profile(String),
    /// Whatever the environment provides (variables, `AWS_PROFILE`, ...).
    Environment,
}

/// STS could not say whose credentials they are.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("STS GetCallerIdentity failed: {0}")]
    Call(String),
    #[error("STS GetCallerIdentity answered without an account")]
    NoAccount,
}

/// The account behind a set of credentials.
pub trait Accounts {
    /// The account `credentials` belong to, asked in `region`.
    fn caller_account(
        &self,
        credentials: &Credentials,
        region: &str,
    ) -> Result<String, IdentityError>;
}

/// STS, through the AWS SDK (its endpoint from the environment, `AWS_ENDPOINT_URL_STS` too).
pub struct StsAccounts {
    runtime: tokio::runtime::Runtime,
    http_client: Option<SharedHttpClient>,
    profile_files: Option<ProfileFiles>,
}

impl StsAccounts {
    /// Asks the real STS (or the endpoint the environment names).
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            http_client: None,
            profile_files: None,
        })
    }

    /// Asks through `http_client` and reads profiles from `profile_files` (tests).
    pub fn with(
        http_client: SharedHttpClient,
        profile_files: ProfileFiles,
    ) -> std::io::Result<Self> {
        Ok(Self {
            http_client: Some(http_client),
            profile_files: Some(profile_files),
            ..Self::new()?
        })
    }

    async fn ask(&self, credentials: &Credentials, region: &str) -> Result<String, IdentityError> {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
        if let Some(http_client) = &self.http_client {
            loader = loader.http_client(http_client.clone());
        }
        if let Credentials::Profile(name) = credentials {
            // The profile's own credentials only: the environment's keys would win over a
            // profile in the default chain, and the stack's runs never see them.
            let mut provider = ProfileFileCredentialsProvider::builder().profile_name(name);
            if let Some(files) = &self.profile_files {
                provider = provider.profile_files(files.clone());
            }
            loader = loader.credentials_provider(provider.build());
        }
        let sdk = loader.load().await;
        let answer = aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| IdentityError::Call(DisplayErrorContext(e).to_string()))?;
        answer
            .account()
            .map(str::to_string)
            .ok_or(IdentityError::NoAccount)
    }
}

impl Accounts for StsAccounts {
    fn caller_account(
        &self,
        credentials: &Credentials,
        region: &str,
    ) -> Result<String, IdentityError> {
        self.runtime.block_on(self.ask(credentials, region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_runtime::env_config::file::EnvConfigFileKind as ProfileFileKind;
    use aws_smithy_http_client::test_util::infallible_client_fn;
    use aws_smithy_types::body::SdkBody;
    use std::sync::{Arc, Mutex};

    const PROFILES: &str = "\
[target]
aws_access_key_id = AKIATARGETKEY
aws_secret_access_key = target-secret

[source]
aws_access_key_id = AKIASOURCEKEY
aws_secret_access_key = source-secret
";

    /// What the fake STS saw of each request: its host, its Authorization header, its body.
    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

    /// An STS that answers the account of the key that signed the request (or 403 for an
    /// unknown key), as STS does.
    fn sts(seen: Seen) -> SharedHttpClient {
        infallible_client_fn(move |request| {
            let auth = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body =
                String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
            let host = request.uri().to_string();
            seen.lock().unwrap().push((host, auth.clone(), body));
            let account = if auth.contains("Credential=AKIATARGETKEY/") {
                "222222222222"
            } else if auth.contains("Credential=AKIASOURCEKEY/") {
                "111111111111"
            } else {
                return http::Response::builder()
                    .status(403)
                    .body(SdkBody::from(
                        "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>\
                         <Message>The security token included in the request is invalid.</Message>\
                         </Error><RequestId>r</RequestId></ErrorResponse>",
                    ))
                    .unwrap();
            };
            http::Response::builder()
                .status(200)
                .body(SdkBody::from(format!(
                    "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                     <GetCallerIdentityResult><Arn>arn:aws:iam::{account}:user/admin</Arn>\
                     <UserId>AIDAEXAMPLE</UserId><Account>{account}</Account></GetCallerIdentityResult>\
                     <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
                )))
                .unwrap()
        })
    }

    fn accounts(seen: &Seen, profiles: &str) -> StsAccounts {
        let files = ProfileFiles::builder()
            .with_contents(ProfileFileKind::Credentials, profiles)
            .build();
        StsAccounts::with(sts(seen.clone()), files).unwrap()
    }

    #[test]
    fn each_profile_is_asked_with_its_own_keys_in_the_stacks_region() {
        let seen = Seen::default();
        let sts = accounts(&seen, PROFILES);
        let target = Credentials::Profile("target".into());
        let source = Credentials::Profile("source".into());
        assert_eq!(
            sts.caller_account(&target, "eu-west-2").unwrap(),
            "222222222222"
        );
        assert_eq!(
            sts.caller_account(&source, "us-east-1").unwrap(),
            "111111111111"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(
            seen[0].0.contains("sts.eu-west-2.amazonaws.com"),
            "{}",
            seen[0].0
        );
        assert!(
            seen[0].1.contains("/eu-west-2/sts/aws4_request"),
            "{}",
            seen[0].1
        );
        assert!(
            seen[0].2.contains("Action=GetCallerIdentity"),
            "{}",
            seen[0].2
        );
        assert!(
            seen[1].0.contains("sts.us-east-1.amazonaws.com"),
            "{}",
            seen[1].0
        );
    }

    #[test]
    fn refusals_and_unknown_profiles_are_errors_that_say_why() {
        let seen = Seen::default();
        let sts = accounts(
            &seen,
            &format!("{PROFILES}\n[stranger]\naws_access_key_id = AKIAUNKNOWN\naws_secret_access_key = x\n"),
        );
        let err = sts
            .caller_account(&Credentials::Profile("stranger".into()), "eu-west-1")
            .unwrap_err();
        assert!(
            matches!(&err, IdentityError::Call(m) if m.contains("InvalidClientTokenId")),
            "{err}"
        );
        let err = sts
            .caller_account(&Credentials::Profile("missing".into()), "eu-west-1")
            .unwrap_err();
        assert!(
            matches!(&err, IdentityError::Call(m) if m.contains("missing")),
            "{err}"
        );
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "an unknown profile sends nothing"
        );
    }

    #[test]
    fn an_answer_without_an_account_is_an_error() {
        let files = ProfileFiles::builder()
            .with_contents(ProfileFileKind::Credentials, PROFILES)
            .build();
        let empty = infallible_client_fn(|_| {
            http::Response::builder()
                .status(200)
                .body(SdkBody::from(
                    "<GetCallerIdentityResponse><GetCallerIdentityResult></GetCallerIdentityResult>\
                     </GetCallerIdentityResponse>",
                ))
                .unwrap()
        });
        let sts = StsAccounts::with(empty, files).unwrap();
        assert_eq!(
            sts.caller_account(&Credentials::Profile("target".into()), "eu-west-1"),
            Err(IdentityError::NoAccount)
        );
    }
}
