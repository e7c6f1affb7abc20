//! What is checked before anything runs: each stack is the side it was given as, its
//! credentials belong to the account it is pinned to, and the two stacks agree.

use infra::config::{Key, StackSide};

use super::call::{Call, StackEnv};
use super::settings::{Secret, StackSettings};
use super::sts::{Accounts, Credentials};

/// One stack of the pair, as read before anything runs.
#[derive(Debug, Clone)]
pub struct Member {
    /// The side it was given as (`--target-stack` / `--source-stack`).
    pub given_as: StackSide,
    pub stack: String,
    /// Its credentials and backend, resolved.
    pub env: StackEnv,
    pub settings: StackSettings,
    /// `pulumi config get externalId`, when read (`None`: not set).
    pub external_id: Option<Secret>,
}

impl Member {
    /// The credentials its runs get.
    pub fn credentials(&self) -> Credentials {
        match &self.env.profile {
            Some(profile) => Credentials::Profile(profile.clone()),
            None => Credentials::Environment,
        }
    }

    /// `call` as the operator would run it for this stack.
    pub fn line(&self, call: &Call, present: &dyn Fn(&str) -> bool) -> String {
        call.operator_line(&self.env.changes(), present)
    }

    fn set_line(&self, key: &str, value: &str, present: &dyn Fn(&str) -> bool) -> String {
        self.line(
            &Call::config_set(self.given_as, &self.stack, key, value, None),
            present,
        )
    }
}

/// Why the pair was refused before anything ran; each says what fixes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{given} stack `{stack}`: {error}")]
    Unreadable {
        given: &'static str,
        stack: String,
        error: String,
    },
    #[error("stack `{stack}` was given as the {given} stack but deploys the {side} side (its `side` is {side}): pass it as --{side}-stack, or\n  fix: {fix}")]
    WrongSide {
        given: &'static str,
        stack: String,
        side: &'static str,
        fix: String,
    },
    #[error("{given} stack `{stack}` has no aws:region, the region its credentials are checked in\n  fix: {fix}")]
    NoRegion {
        given: &'static str,
        stack: String,
        fix: String,
    },
    #[error("{given} stack `{stack}` is pinned to account {pinned} ({key}, its provider's allowedAccountIds), but {credentials} belong to account {actual}\n  fix: give it credentials of account {pinned}: --{given}-profile <profile>, or {fix}")]
    WrongAccount {
        given: &'static str,
        stack: String,
        pinned: String,
        key: &'static str,
        credentials: String,
        actual: String,
        fix: String,
    },
    #[error("{given} stack `{stack}`: which account {credentials} belong to is unknown: {error}\n  fix: give it credentials of account {pinned}: --{given}-profile <profile>, or {fix}")]
    NoIdentity {
        given: &'static str,
        stack: String,
        pinned: String,
        credentials: String,
        error: String,
        fix: String,
    },
    #[error("{given} stack `{stack}` has no externalId\n  fix: {fix}")]
    ExternalIdMissing {
        given: &'static str,
        stack: String,
        fix: String,
    },
    #[error("{given} stack `{stack}` keeps externalId in plaintext in its stack file; it is a secret\n  fix: {fix}")]
    ExternalIdPlaintext {
        given: &'static str,
        stack: String,
        fix: String,
    },
    #[error("the two stacks have different externalId values (not shown): the cross-account role would refuse every AssumeRole of the relay\n  fix: {fix}")]
    ExternalIdDiffers { fix: String },
    #[error("the two stacks disagree on {key}: target `{target_stack}` has {target_value}, source `{source_stack}` has {source_value} ({why})\n  fix: {fix}")]
    Disagree {
        key: &'static str,
        target_stack: String,
        target_value: String,
        source_stack: String,
        source_value: String,
        why: &'static str,
        fix: String,
    },
}

/// Each stack deploys the side it was given as.
pub fn check_sides(members: [&Member; 2], present: &dyn Fn(&str) -> bool) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    for member in members {
        let given = member.given_as.name();
        match member.settings.pinned_account() {
            Err(error) => refusals.push(Refusal::Unreadable {
                given,
                stack: member.stack.clone(),
                error: error.to_string(),
            }),
            Ok((side, _)) if side != member.given_as => refusals.push(Refusal::WrongSide {
                given,
                stack: member.stack.clone(),
                side: side.name(),
                fix: member.set_line(Key::Side.name(), given, present),
            }),
            Ok(_) => {}
        }
    }
    refusals
}

/// Each stack's credentials belong to the account it is pinned to, as STS says. Only for
/// stacks [`check_sides`] passed.
pub fn check_accounts(
    members: [&Member; 2],
    accounts: &dyn Accounts,
    present: &dyn Fn(&str) -> bool,
) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    for member in members {
        let given = member.given_as.name();
        let stack = member.stack.clone();
        let Ok((side, pinned)) = member.settings.pinned_account() else {
            continue;
        };
        let Some(region) = member.settings.region() else {
            refusals.push(Refusal::NoRegion {
                given,
                stack,
                fix: member.set_line("aws:region", "<region>", present),
            });
            continue;
        };
        let profile_fix = member.set_line("aws:profile", "<profile>", present);
        match accounts.caller_account(&member.credentials(), region) {
            Ok(actual) if actual == pinned => {}
            Ok(actual) => refusals.push(Refusal::WrongAccount {
                given,
                stack,
                pinned,
                key: side.account_key().name(),
                credentials: member.env.credentials(),
                actual,
                fix: profile_fix,
            }),
            Err(error) => refusals.push(Refusal::NoIdentity {
                given,
                stack,
                pinned,
                credentials: member.env.credentials(),
                error: error.to_string(),
                fix: profile_fix,
            }),
        }
    }
    refusals
}

/// The two stacks agree on what they share. The account ids that disagree are fixed from the
/// stack STS vouched for (the source for sourceAccountId, the target for targetAccountId); the
/// name prefix and the external id from the target, which is deployed first.
pub fn check_agreement(
    target: &Member,
    source: &Member,
    present: &dyn Fn(&str) -> bool,
) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    let external_id = Key::ExternalId.name();
    for member in [target, source] {
        let given = member.given_as.name();
        let stack = member.stack.clone();
        let set_secret = Call::config_set_secret(member.given_as, &member.stack, external_id);
        let fix = format!(
            "{} \"$(openssl rand -hex 24)\"",
            member.line(&set_secret, present)
        );
        if member.external_id.is_none() {
            refusals.push(Refusal::ExternalIdMissing { given, stack, fix });
        } else if !member.settings.is_secret(Key::ExternalId) {
            refusals.push(Refusal::ExternalIdPlaintext { given, stack, fix });
        }
    }
    if let (Some(t), Some(s)) = (&target.external_id, &source.external_id) {
        if t != s {
            let set = Call::config_set_secret(source.given_as, &source.stack, external_id);
            let get = Call::config_get(target.given_as, &target.stack, external_id);
            refusals.push(Refusal::ExternalIdDiffers {
                fix: format!(
                    "{} \"$({})\"",
                    source.line(&set, present),
                    target.line(&get, present)
                ),
            });
        }
    }
    let shared: [(Key, &Member, &Member, &str); 3] = [
        (
            Key::NamePrefix,
            target,
            source,
            "the target's trust policy names the source's relay role by it",
        ),
        (
            Key::SourceAccountId,
            source,
            target,
            "the target trusts the relay role of that account",
        ),
        (
            Key::TargetAccountId,
            target,
            source,
            "the relay assumes the role of that account",
        ),
    ];
    for (key, right, wrong, why) in shared {
        let value = |m: &Member| m.settings.get(key).unwrap_or("(unset)").to_string();
        if value(right) != value(wrong) {
            refusals.push(Refusal::Disagree {
                key: key.name(),
                target_stack: target.stack.clone(),
                target_value: value(target),
                source_stack: source.stack.clone(),
                source_value: value(source),
                why,
                fix: wrong.set_line(key.name(), &value(right), present),
            });
        }
    }
    refusals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair::sts::IdentityError;
    use std::collections::BTreeMap;

    fn nothing(_: &str) -> bool {
        false
    }

    fn member(side: StackSide, stack: &str, pairs: &[(&str, &str)]) -> Member {
        let mut all = vec![
            ("aws:region", "eu-west-1"),
            ("cross-account-relay:side", side.name()),
            ("cross-account-relay:sourceAccountId", "111111111111"),
            ("cross-account-relay:targetAccountId", "222222222222"),
            ("cross-account-relay:namePrefix", "cross-account-relay"),
        ];
        for (k, v) in pairs {
            all.retain(|(key, _)| key != k);
            all.push((k, v));
        }
        let json: BTreeMap<&str, serde_json::Value> = all
            .iter()
            .map(|(k, v)| (*k, serde_json::json!({ "value": v, "secret": false })))
            .collect();
        let mut json = json;
        json.entry("cross-account-relay:externalId")
            .or_insert(serde_json::json!({ "secret": true }));
        Member {
            given_as: side,
            stack: stack.to_string(),
            env: StackEnv {
                profile: Some(side.name().to_string()),
                backend: None,
            },
            settings: StackSettings::parse(stack, &serde_json::to_string(&json).unwrap()).unwrap(),
            external_id: Some(Secret::from_output("shared-external-id")),
        }
    }

    fn target(pairs: &[(&str, &str)]) -> Member {
        member(StackSide::Target, "prod-target", pairs)
    }

    fn source(pairs: &[(&str, &str)]) -> Member {
        member(StackSide::Source, "prod-source", pairs)
    }

    /// Answers each profile's account from a table.
    struct Table(Vec<(&'static str, Result<&'static str, IdentityError>)>);

    impl Accounts for Table {
        fn caller_account(
            &self,
            credentials: &Credentials,
            region: &str,
        ) -> Result<String, IdentityError> {
            assert_eq!(region, "eu-west-1");
            let Credentials::Profile(profile) = credentials else {
                panic!("profiles only here");
            };
            let (_, answer) = self.0.iter().find(|(p, _)| p == profile).unwrap();
            answer.clone().map(str::to_string)
        }
    }

    fn right_accounts() -> Table {
        Table(vec![
            ("target", Ok("222222222222")),
            ("source", Ok("111111111111")),
        ])
    }

    #[test]
    fn a_consistent_pair_passes_every_check() {
        let (t, s) = (target(&[]), source(&[]));
        assert_eq!(check_sides([&t, &s], &nothing), vec![]);
        assert_eq!(
            check_accounts([&t, &s], &right_accounts(), &nothing),
            vec![]
        );
        assert_eq!(check_agreement(&t, &s, &nothing), vec![]);
    }

    #[test]
    fn a_stack_given_as_the_other_side_is_refused_with_both_ways_out() {
        let (t, s) = (target(&[]), source(&[]));
        // The two stacks swapped: each is refused.
        let swapped_t = Member {
            given_as: StackSide::Source,
            ..t.clone()
        };
        let swapped_s = Member {
            given_as: StackSide::Target,
            ..s.clone()
        };
        let refusals = check_sides([&swapped_s, &swapped_t], &nothing);
        assert_eq!(refusals.len(), 2);
        let text = refusals[0].to_string();
        assert_eq!(
            text,
            "stack `prod-source` was given as the target stack but deploys the source side (its `side` is source): \
             pass it as --source-stack, or\n  fix: AWS_PROFILE=source pulumi config set --stack prod-source side target"
        );
        // A side the program does not know: its own message and fix.
        let odd = target(&[("cross-account-relay:side", "both")]);
        let refusals = check_sides([&odd, &s], &nothing);
        assert_eq!(refusals.len(), 1);
        let text = refusals[0].to_string();
        assert!(
            text.starts_with(
                "target stack `prod-target`: invalid config `cross-account-relay:side`"
            ),
            "{text}"
        );
        assert!(text.contains("must be one of source, target"), "{text}");
    }

    #[test]
    fn credentials_of_another_account_are_refused_naming_both_accounts() {
        let (t, s) = (target(&[]), source(&[]));
        let wrong = Table(vec![
            ("target", Ok("111111111111")),
            ("source", Ok("111111111111")),
        ]);
        let refusals = check_accounts([&t, &s], &wrong, &nothing);
        assert_eq!(
            refusals,
            vec![Refusal::WrongAccount {
                given: "target",
                stack: "prod-target".into(),
                pinned: "222222222222".into(),
                key: "targetAccountId",
                credentials: "profile target".into(),
                actual: "111111111111".into(),
                fix: "AWS_PROFILE=target pulumi config set --stack prod-target aws:profile '<profile>'".into(),
            }]
        );
        let text = refusals[0].to_string();
        assert!(
            text.contains("is pinned to account 222222222222 (targetAccountId"),
            "{text}"
        );
        assert!(
            text.contains("but profile target belong to account 111111111111"),
            "{text}"
        );
        assert!(text.contains("--target-profile <profile>"), "{text}");
    }

    #[test]
    fn an_unanswered_identity_or_a_missing_region_is_refused() {
        let (t, s) = (target(&[]), source(&[("aws:region", "")]));
        let failing = Table(vec![
            (
                "target",
                Err(IdentityError::Call("InvalidClientTokenId".into())),
            ),
            ("source", Ok("111111111111")),
        ]);
        let refusals = check_accounts([&t, &s], &failing, &nothing);
        assert_eq!(refusals.len(), 2, "{refusals:?}");
        let text = refusals[0].to_string();
        assert!(text.starts_with("target stack `prod-target`: which account profile target belong to is unknown: STS GetCallerIdentity failed: InvalidClientTokenId"), "{text}");
        assert!(
            text.contains("credentials of account 222222222222"),
            "{text}"
        );
        assert_eq!(
            refusals[1],
            Refusal::NoRegion {
                given: "source",
                stack: "prod-source".into(),
                fix:
                    "AWS_PROFILE=source pulumi config set --stack prod-source aws:region '<region>'"
                        .into()
            }
        );
        // A stack whose side is unreadable is left to check_sides.
        let odd = target(&[("cross-account-relay:side", "")]);
        assert_eq!(
            check_accounts([&odd, &target(&[])], &right_accounts(), &nothing),
            vec![]
        );
    }

    #[test]
    fn the_external_id_must_be_set_secret_and_the_same_without_being_shown() {
        let (t, mut s) = (target(&[]), source(&[]));
        s.external_id = Some(Secret::from_output("another-external-id"));
        let refusals = check_agreement(&t, &s, &nothing);
        assert_eq!(refusals.len(), 1);
        let text = refusals[0].to_string();
        assert_eq!(
            text,
            "the two stacks have different externalId values (not shown): the cross-account role would refuse every AssumeRole of the relay\n  \
             fix: AWS_PROFILE=source pulumi config set --secret --stack prod-source externalId \
             \"$(AWS_PROFILE=target pulumi config get externalId --stack prod-target)\""
        );
        assert!(!text.contains("another-external-id") && !text.contains("shared-external-id"));

        let mut missing = target(&[]);
        missing.external_id = None;
        let refusals = check_agreement(&missing, &source(&[]), &nothing);
        assert_eq!(
            refusals,
            vec![Refusal::ExternalIdMissing {
                given: "target",
                stack: "prod-target".into(),
                fix: "AWS_PROFILE=target pulumi config set --secret --stack prod-target externalId \"$(openssl rand -hex 24)\"".into()
            }]
        );

        let mut plain = source(&[("cross-account-relay:externalId", "shared-external-id")]);
        plain.external_id = Some(Secret::from_output("shared-external-id"));
        let refusals = check_agreement(&target(&[]), &plain, &nothing);
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(matches!(
            &refusals[0],
            Refusal::ExternalIdPlaintext {
                given: "source",
                ..
            }
        ));
        assert!(!refusals[0].to_string().contains("shared-external-id"));
    }

    #[test]
    fn shared_keys_that_differ_are_fixed_from_the_stack_that_is_right() {
        let t = target(&[
            ("cross-account-relay:namePrefix", "relay-a"),
            ("cross-account-relay:sourceAccountId", "333333333333"),
        ]);
        let s = source(&[("cross-account-relay:targetAccountId", "444444444444")]);
        let refusals = check_agreement(&t, &s, &nothing);
        let fixes: Vec<String> = refusals
            .iter()
            .map(|r| match r {
                Refusal::Disagree { fix, .. } => fix.clone(),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(
            fixes,
            [
                "AWS_PROFILE=source pulumi config set --stack prod-source namePrefix relay-a",
                "AWS_PROFILE=target pulumi config set --stack prod-target sourceAccountId 111111111111",
                "AWS_PROFILE=source pulumi config set --stack prod-source targetAccountId 222222222222",
            ]
        );
        assert_eq!(
            refusals[0].to_string(),
            "the two stacks disagree on namePrefix: target `prod-target` has relay-a, source `prod-source` has \
             cross-account-relay (the target's trust policy names the source's relay role by it)\n  \
             fix: AWS_PROFILE=source pulumi config set --stack prod-source namePrefix relay-a"
        );
        // An unset key on one side is a disagreement too.
        let unset = source(&[("cross-account-relay:namePrefix", "")]);
        let refusals = check_agreement(&target(&[]), &unset, &nothing);
        assert!(
            refusals[0]
                .to_string()
                .contains("source `prod-source` has (unset)"),
            "{refusals:?}"
        );
    }

    #[test]
    fn fix_lines_carry_the_stacks_backend_and_unset_what_the_environment_holds() {
        let mut s = source(&[("cross-account-relay:namePrefix", "other")]);
        s.env.backend = Some("file:///state b".into());
        let present = |name: &str| name == "AWS_ACCESS_KEY_ID";
        let refusals = check_agreement(&target(&[]), &s, &present);
        let Refusal::Disagree { fix, .. } = &refusals[0] else {
            panic!("{refusals:?}")
        };
        assert_eq!(
            fix,
            "env -u AWS_ACCESS_KEY_ID AWS_PROFILE=source PULUMI_BACKEND_URL='file:///state b' \
             pulumi config set --stack prod-source namePrefix cross-account-relay"
        );
        let ambient = Member {
            env: StackEnv::default(),
            ..target(&[])
        };
        assert_eq!(ambient.credentials(), Credentials::Environment);
        assert_eq!(s.credentials(), Credentials::Profile("source".into()));
    }
}
