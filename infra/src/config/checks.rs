//! The rules for values that are more than a range or a list: regions, e-mail addresses,
//! function references and schedule expressions. Each returns the reason a value is refused;
//! the parser names the key.

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-4`: lower-case words and a number, by hyphens.
pub fn looks_like_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && parts
            .last()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// One e-mail address, as SNS's `email` protocol takes it: `local@domain`, the local part of
/// letters, digits and the symbols RFC 5322 allows without quoting, dot-separated; the domain
/// of at least two labels of letters, digits and inner hyphens, ending in a letters-only
/// top-level label. Quoted local parts and address literals (`user@[192.0.2.1]`) are refused:
/// an alarm address does not need them.
pub fn check_email(address: &str) -> Result<(), String> {
    let dot_separated = |part: &str, ok: &dyn Fn(&str) -> bool| part.split('.').all(ok);
    let local_ok = |local: &str| {
        local.len() <= 64
            && dot_separated(local, &|atom: &str| {
                !atom.is_empty()
                    && atom
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b))
            })
    };
    let domain_ok = |domain: &str| {
        let labels: Vec<&str> = domain.split('.').collect();
        let top = labels.last().copied().unwrap_or("");
        labels.len() >= 2
            && top.len() >= 2
            && top.bytes().all(|b| b.is_ascii_alphabetic())
            && dot_separated(domain, &|label: &str| {
                (1..=63).contains(&label.len())
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    let ok = address.len() <= 254
        && address
            .split_once('@')
            .is_some_and(|(local, domain)| local_ok(local) && domain_ok(domain));
    if ok {
        Ok(())
    } else {
        Err("must be one e-mail address like ops@example.com (at most 254 characters; to notify several people, use a list address); leave it unset for no subscription".into())
    }
}

/// The parts of an unqualified Lambda function ARN that must match the target's placement.
pub struct FunctionArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
}

impl<'a> FunctionArn<'a> {
    /// `arn:<partition>:lambda:<region>:<account>:function:<name>`; `None` for anything else.
    pub fn parse(value: &'a str) -> Option<Self> {
        let parts: Vec<&str> = value.split(':').collect();
        match parts.as_slice() {
            ["arn", _partition, "lambda", region, account, "function", _name] => {
                Some(Self { region, account })
            }
            _ => None,
        }
    }
}

/// A function name or unqualified function ARN. The cross-account role may invoke only the
/// unqualified function (its policy names `${targetFunction.arn}`), so an alias or version
/// would be refused by IAM at run time: it is refused here instead.
pub fn check_function_reference(value: &str) -> Result<(), String> {
    let name_ok = |n: &str| {
        (1..=64).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = value.split(':').collect();
    let ok = match parts.as_slice() {
        [name] => name_ok(name),
        ["arn", partition, "lambda", region, account, "function", name] => {
            partition.starts_with("aws")
                && looks_like_region(region)
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && name_ok(name)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("must be a function name or an unqualified ARN (arn:aws:lambda:<region>:<account>:function:<name>); an alias or version (…:<qualifier>) is not supported because the cross-account role may invoke only the unqualified function".into())
    }
}

/// An EventBridge Scheduler expression: `rate(…)`, `cron(…)` or `at(…)`, as Scheduler
/// documents them ("Schedule types on EventBridge Scheduler").
pub fn check_schedule_expression(expression: &str) -> Result<(), String> {
    let inner = |prefix: &str| {
        expression
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(')'))
    };
    if let Some(rate) = inner("rate(") {
        let (value, unit) = rate
            .split_once(' ')
            .ok_or("rate(<value> <unit>) needs a value and a unit, like rate(5 minutes)")?;
        let value: u32 = value
            .parse()
            .ok()
            .filter(|v| *v > 0)
            .ok_or("the rate's value must be a positive whole number")?;
        let singular = ["minute", "hour", "day"];
        let plural = ["minutes", "hours", "days"];
        let units = if value == 1 { &singular } else { &plural };
        if !units.contains(&unit) {
            return Err(format!(
                "the rate's unit must be one of {} for the value {value}",
                units.join(", ")
            ));
        }
        return Ok(());
    }
    if let Some(cron) = inner("cron(") {
        let fields: Vec<&str> = cron.split(' ').collect();
        if fields.len() != 6 {
            return Err(
                "cron(…) has six fields: minutes hours day-of-month month day-of-week year".into(),
            );
        }
        let allowed = |f: &str| {
            f.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"*?,/-#".contains(&b))
        };
        if !fields.iter().all(|f| !f.is_empty() && allowed(f)) {
            return Err("a cron field has a character Scheduler does not accept".into());
        }
        if (fields[2] == "?") == (fields[4] == "?") {
            return Err("exactly one of day-of-month and day-of-week must be ? in cron(…)".into());
        }
        return Ok(());
    }
    if let Some(at) = inner("at(") {
        let shape = "dddd-dd-ddTdd:dd:dd";
        let fits = at.len() == shape.len()
            && at.bytes().zip(shape.bytes()).all(|(c, s)| match s {
                b'd' => c.is_ascii_digit(),
                _ => c == s,
            });
        return if fits {
            Ok(())
        } else {
            Err("at(…) takes a date and time like at(2027-01-31T08:00:00)".into())
        };
    }
    Err("must be rate(…), cron(…) or at(…), like rate(5 minutes)".into())
}
