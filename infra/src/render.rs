//! A stack's template from its typed configuration: the source's or the target's resources.

use crate::config::StackConfig;
use crate::template::Template;
use crate::{source, target};

/// The template of a stack from its typed configuration.
pub fn render(config: &StackConfig) -> Template {
    match config {
        StackConfig::Source(c) => source::template(c),
        StackConfig::Target(c) => target::template(c),
    }
}
