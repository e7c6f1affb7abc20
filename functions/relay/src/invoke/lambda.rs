//! The real adapter of the target: the target account's Lambda client (assumed-role
//! credentials).

use async_trait::async_trait;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_lambda::types::InvocationType;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::invoke::port::{InvokeFailure, InvokeFailureKind, InvokeReply, TargetInvoker};
use crate::settings::RelaySettings;

/// A Lambda client for the target account. Built once per container: its credentials come from
/// `AssumeRoleProvider` behind the client's identity cache, so AssumeRole runs again only when
/// the cached credentials near expiry, never once per invocation.
pub async fn target_lambda_client(
    sdk: &SdkConfig,
    settings: &RelaySettings,
) -> aws_sdk_lambda::Client {
    let mut assume = AssumeRoleProvider::builder(settings.target_role_arn.clone())
        .external_id(settings.external_id.expose())
        .session_name(settings.session_name())
        .session_length(settings.session_length)
        .configure(sdk);
    let mut lambda = aws_sdk_lambda::config::Builder::from(sdk);
    if let Some(region) = &settings.target_region {
        assume = assume.region(Region::new(region.clone()));
        lambda = lambda.region(Region::new(region.clone()));
    }
    let provider = assume.build().await;
    aws_sdk_lambda::Client::from_conf(lambda.credentials_provider(provider).build())
}

/// Invokes the target function synchronously.
pub struct LambdaTarget {
    client: aws_sdk_lambda::Client,
    function: String,
    role_arn: String,
}

impl LambdaTarget {
    /// The target named in `settings`, invoked with `client` (see [`target_lambda_client`]).
    pub fn new(client: aws_sdk_lambda::Client, settings: &RelaySettings) -> Self {
        Self {
            client,
            function: settings.target_function.clone(),
            role_arn: settings.target_role_arn.clone(),
        }
    }
}

/// Which step failed: a credentials failure anywhere in the error's chain means the relay
/// could not assume the target role; anything else is the Invoke call itself.
fn failure_kind(error: &(dyn std::error::Error + 'static)) -> InvokeFailureKind {
    let mut chain = std::iter::successors(Some(error), |e| e.source());
    if chain.any(|e| e.downcast_ref::<CredentialsError>().is_some()) {
        InvokeFailureKind::AssumeRole
    } else {
        InvokeFailureKind::Invoke
    }
}

#[async_trait]
impl TargetInvoker for LambdaTarget {
    async fn invoke(&self, payload: Vec<u8>) -> Result<InvokeReply, InvokeFailure> {
        let result = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(payload.into())
            .send()
            .await;
        match result {
            Ok(output) => Ok(InvokeReply {
                function_error: output.function_error,
                payload: output.payload.map(|b| b.into_inner()).unwrap_or_default(),
            }),
            Err(error) => {
                let kind = failure_kind(&error);
                let message = match kind {
                    InvokeFailureKind::AssumeRole => format!(
                        "AssumeRole of {} failed: {}",
                        self.role_arn,
                        DisplayErrorContext(&error)
                    ),
                    InvokeFailureKind::Invoke => format!(
                        "Invoke of {} failed: {}",
                        self.function,
                        DisplayErrorContext(&error)
                    ),
                };
                Err(InvokeFailure { kind, message })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the chain of an SDK error looks like: the SDK's error, its cause, and so on.
    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Dispatch(#[source] Box<dyn std::error::Error + Send + Sync>);

    #[test]
    fn a_credentials_error_anywhere_in_the_chain_is_an_assume_role_failure() {
        let denied = || CredentialsError::provider_error("AccessDenied: not authorized");
        assert_eq!(failure_kind(&denied()), InvokeFailureKind::AssumeRole);
        let wrapped = Dispatch(Box::new(Dispatch(Box::new(denied()))));
        assert_eq!(failure_kind(&wrapped), InvokeFailureKind::AssumeRole);
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            failure_kind(&Dispatch(Box::new(refused))),
            InvokeFailureKind::Invoke
        );
    }
}
