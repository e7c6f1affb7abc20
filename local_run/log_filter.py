"""Lambda's log-level filtering, applied by the runtime emulator to each line a function prints
(stdout and stderr) before anything reads it: the ledger, the metrics check, `.demo/logs/`.

What it models, from the Lambda developer guide, "Log-level filtering"
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html):

- "To use log-level filtering, your function must be configured to use the JSON log format."
  With the Text format (`AWS_LAMBDA_LOG_FORMAT` other than JSON) every line is kept.
- "your function code must output log events to `stdout` or `stderr` as JSON formatted objects
  that contain a key value pair with the key "level"". The guide's example,
  `{"level": "debug", ...}`, is read as DEBUG: the level's case does not matter.
- "If the "level" value field is invalid or missing, Lambda will assign the log output the
  level INFO."
- "For Lambda to use the timestamp field, you must specify the time in valid RFC 3339 timestamp
  format. If you don't supply a valid timestamp, Lambda will assign the log the level INFO and
  add a timestamp for you."
- The levels, TRACE (most detail), DEBUG, INFO, WARN, ERROR, FATAL (least): "Lambda only sends
  application logs at the selected level of detail and lower, where TRACE is the highest level
  and FATAL is the lowest" (Lambda API reference, `LoggingConfig.ApplicationLogLevel`); the
  guide's example: an application log level of WARN drops INFO and DEBUG output, and the
  default application log level is INFO.
- A line that is not a JSON object (plain text) has no level: the page says (in its zh-CN
  edition, translated here) that when Lambda filters a function's application logs, a log
  message without a level is assigned INFO. So plain text is dropped at WARN and above.

What it does not model: the page lets the timestamp key follow "the conventions of the runtime
you are using"; only `timestamp` is read here (the key the functions write). Lambda's own
platform lines (START, END, REPORT, governed by `systemLogLevel`) are not produced locally. Each
line the process prints is one log event, as the emulator always read them.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

# Lambda's application log levels, most detail first.
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
DEFAULT_LEVEL = "INFO"

# RFC 3339 section 5.6 `date-time`: full-date "T" full-time, fraction optional, offset Z or
# +hh:mm / -hh:mm ("T" and "Z" may be lower case, section 5.6's note).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def is_rfc3339(value: object) -> bool:
    """Whether `value` is an RFC 3339 date-time string: the shape, and a real date and time
    (a leap second, :60, is allowed)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return False
    text = value[:17] + "59" + value[19:] if value[17:19] == "60" else value
    try:
        datetime.datetime.fromisoformat(text.upper())
    except ValueError:
        return False
    offset = text[-6:]
    return offset[0] not in "+-" or (int(offset[1:3]) < 24 and int(offset[4:6]) < 60)


def level_of(line: str) -> str:
    """The level Lambda reads `line` at: its `level` when it is a JSON object with a known level
    and an RFC 3339 `timestamp`, else INFO."""
    try:
        document = json.loads(line)
    except ValueError:
        return DEFAULT_LEVEL
    if not isinstance(document, dict) or not is_rfc3339(document.get("timestamp")):
        return DEFAULT_LEVEL
    level = document.get("level")
    if isinstance(level, str) and level.upper() in LEVELS:
        return level.upper()
    return DEFAULT_LEVEL


@dataclass(frozen=True)
class LogLevelFilter:
    """One function's filter, from the log format and application log level Lambda gives it."""

    json_format: bool
    application_level: str = DEFAULT_LEVEL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LogLevelFilter:
        """From the `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL` Lambda sets from the
        function's `loggingConfig` (`local_run.template.Template.lambda_logging_environment`). A
        level Lambda does not know cannot be configured; it is refused here too."""
        json_format = env.get("AWS_LAMBDA_LOG_FORMAT", "Text").upper() == "JSON"
        level = env.get("AWS_LAMBDA_LOG_LEVEL", DEFAULT_LEVEL).upper()
        if level not in LEVELS:
            raise ValueError(f"AWS_LAMBDA_LOG_LEVEL={level!r} is not one of Lambda's levels {', '.join(LEVELS)}")
        return cls(json_format, level)

    def keeps(self, line: str) -> bool:
        """Whether Lambda sends `line` on to CloudWatch Logs."""
        if not self.json_format:
            return True
        return LEVELS.index(level_of(line)) >= LEVELS.index(self.application_level)
