//! A metric: its name, its CloudWatch unit and what it means (a module of its own so the
//! per-function name modules beside it can use it without reaching up into `metrics`).

/// A metric's CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things (records, calls).
    Count,
    /// A duration.
    Milliseconds,
}

impl Unit {
    /// The unit's name as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// A metric's name and unit, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The metric's name in CloudWatch.
    pub name: &'static str,
    /// Its CloudWatch unit.
    pub unit: Unit,
    /// What one invocation's value is (a count's what is counted, a sample's what is timed):
    /// the reference's `docs/reference/metrics.md` prints it (`make generate`).
    pub meaning: &'static str,
}

/// A metric counted per invocation.
pub(crate) const fn count(name: &'static str, meaning: &'static str) -> Metric {
    Metric {
        name,
        unit: Unit::Count,
        meaning,
    }
}

/// A metric timed in milliseconds, one sample per event.
pub(crate) const fn milliseconds(name: &'static str, meaning: &'static str) -> Metric {
    Metric {
        name,
        unit: Unit::Milliseconds,
        meaning,
    }
}
