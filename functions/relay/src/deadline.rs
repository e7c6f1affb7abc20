//! The time an invocation has left, and how the relay spends it.
//!
//! Lambda gives every invocation a deadline (`Lambda-Runtime-Deadline-Ms`, lambda_runtime's
//! `Context::deadline`) and stops a function still running then (`Sandbox.Timedout`); for an
//! event source mapping the whole batch then counts as failed and is retried, records already
//! delivered included, and after `maximumRetryAttempts` it ends in the on-failure destination. A
//! batch of large records (many Invokes, a few at a time) or a slow target can outrun the
//! relay's timeout, so the relay keeps the end of its time for what must follow delivery:
//!
//! - delivery (every Invoke) ends [`Stages::letters`] + [`Stages::answer`] before the deadline;
//! - dead-letter writes end [`Stages::answer`] before it;
//! - the rest is for answering (the summary and metrics lines, the response to Lambda).
//!
//! A call (an Invoke, a dead-letter write) is started only with at least [`MIN_CALL`] left in its
//! stage, and is abandoned at the stage's end. The records it carried are handed back in
//! `batchItemFailures` with the reason, for the event source mapping to retry: at least once,
//! since an abandoned Invoke may still have been processed by the target.
//!
//! The clock is tokio's (`tokio::time::Instant`, `timeout`): the unit tests pause it, so a target
//! that takes ten seconds takes no time at all and each test sees exactly the times it sets up.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The shortest time an Invoke or a dead-letter write (one round trip to a regional endpoint,
/// plus the target's work) can be expected to take: with less left, the call is not started.
pub const MIN_CALL: Duration = Duration::from_millis(100);

/// How the time left at the start of an invocation is divided: what is kept back at the end
/// for writing dead letters and for answering. Each is a share of the invocation's time within
/// bounds, so a 3 s relay still delivers for 2.55 s and a 60 s one for 54 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    /// Kept back for writing dead letters, before [`Self::answer`].
    pub letters: Duration,
    /// Kept back for answering, at the very end.
    pub answer: Duration,
}

impl Stages {
    /// The stages of an invocation with `left` to run: `letters` a tenth of it (200 ms to 5 s),
    /// `answer` a twentieth (100 ms to 1 s).
    pub fn of(left: Duration) -> Self {
        let share = |divisor: u32, low: u64, high: u64| {
            (left / divisor).clamp(Duration::from_millis(low), Duration::from_millis(high))
        };
        Self {
            letters: share(10, 200, 5_000),
            answer: share(20, 100, 1_000),
        }
    }
}

/// A part of the invocation that must end before the deadline ([`Stages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Invokes of the target.
    Delivery,
    /// Writes to the dead-letter bucket.
    DeadLetters,
}

/// Why a call did not give its result in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OutOfTime {
    /// Too little time was left in its stage to start it.
    #[error("not started: {left_ms} ms were left before the relay must answer, under the {min_ms} ms a call needs")]
    NotStarted { left_ms: u64, min_ms: u64 },
    /// Started, but its stage ended before it answered; it was abandoned.
    #[error(
        "abandoned after {waited_ms} ms without an answer, to answer before the relay's timeout"
    )]
    Abandoned { waited_ms: u64 },
}

/// When the invocation must have answered, and its [`Stages`]. `None`: no deadline.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    bounds: Option<(Instant, Stages)>,
}

impl Deadline {
    /// No deadline: every call starts and runs to its end.
    pub fn none() -> Self {
        Self { bounds: None }
    }

    /// A deadline `left` from now, with the [`Stages`] of that much time.
    pub fn after(left: Duration) -> Self {
        let bounds = Some((Instant::now() + left, Stages::of(left)));
        Self { bounds }
    }

    /// Lambda's deadline (`deadline_ms`, milliseconds since the Unix epoch) as seen at `now_ms`
    /// (the same clock): a deadline already past leaves no time.
    pub fn from_epoch_ms(deadline_ms: u64, now_ms: i64) -> Self {
        let now_ms = u64::try_from(now_ms).unwrap_or(0);
        Self::after(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }

    /// The time left until `stage` must end (`None`: no deadline).
    pub fn left(&self, stage: Stage) -> Option<Duration> {
        let (at, stages) = self.bounds?;
        let kept = match stage {
            Stage::Delivery => stages.letters + stages.answer,
            Stage::DeadLetters => stages.answer,
        };
        Some(
            at.saturating_duration_since(Instant::now())
                .saturating_sub(kept),
        )
    }

    /// Whether a call of `stage` may start now: at least [`MIN_CALL`] is left in it.
    pub fn can_start(&self, stage: Stage) -> Result<(), OutOfTime> {
        match self.left(stage) {
            Some(left) if left < MIN_CALL => Err(OutOfTime::NotStarted {
                left_ms: millis(left),
                min_ms: millis(MIN_CALL),
            }),
            _ => Ok(()),
        }
    }

    /// Runs `call` in `stage`: not at all if too little time is left ([`Self::can_start`]), and
    /// abandoned (dropped) when the stage ends.
    pub async fn run<F: Future>(&self, stage: Stage, call: F) -> Result<F::Output, OutOfTime> {
        self.can_start(stage)?;
        let Some(left) = self.left(stage) else {
            return Ok(call.await);
        };
        let started = Instant::now();
        tokio::time::timeout(left, call)
            .await
            .map_err(|_| OutOfTime::Abandoned {
                waited_ms: millis(started.elapsed()),
            })
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_stages_are_shares_of_the_invocations_time_within_bounds() {
        let stages = |left_ms: u64| {
            let s = Stages::of(ms(left_ms));
            (millis(s.letters), millis(s.answer))
        };
        assert_eq!(stages(3_000), (300, 150));
        assert_eq!(stages(60_000), (5_000, 1_000));
        assert_eq!(stages(900_000), (5_000, 1_000));
        assert_eq!(stages(1_000), (200, 100));
        assert_eq!(stages(0), (200, 100));
        // Just inside the bounds.
        assert_eq!(stages(2_010), (201, 100));
        assert_eq!(stages(2_040), (204, 102));
        assert_eq!(stages(19_990), (1_999, 999));
        assert_eq!(stages(49_990), (4_999, 1_000));
    }

    #[tokio::test(start_paused = true)]
    async fn each_stage_ends_its_share_before_the_deadline() {
        let deadline = Deadline::after(ms(3_000));
        assert_eq!(deadline.left(Stage::Delivery), Some(ms(2_550)));
        assert_eq!(deadline.left(Stage::DeadLetters), Some(ms(2_850)));
        tokio::time::advance(ms(2_600)).await;
        assert_eq!(deadline.left(Stage::Delivery), Some(Duration::ZERO));
        assert_eq!(deadline.left(Stage::DeadLetters), Some(ms(250)));
        tokio::time::advance(ms(10_000)).await;
        assert_eq!(deadline.left(Stage::DeadLetters), Some(Duration::ZERO));
        assert_eq!(Deadline::none().left(Stage::Delivery), None);
    }

    #[tokio::test(start_paused = true)]
    async fn lambdas_deadline_is_read_against_the_wall_clock_it_is_written_in() {
        let deadline = Deadline::from_epoch_ms(1_764_045_100_000, 1_764_045_097_000);
        assert_eq!(deadline.left(Stage::Delivery), Some(ms(2_550)));
        // Past, or a clock before the epoch: no time (and no panic).
        let past = Deadline::from_epoch_ms(1_764_045_000_000, 1_764_045_097_000);
        assert_eq!(past.left(Stage::DeadLetters), Some(Duration::ZERO));
        let before_epoch = Deadline::from_epoch_ms(3_000, -5);
        assert_eq!(before_epoch.left(Stage::Delivery), Some(ms(2_550)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_starts_only_with_enough_time_left_in_its_stage() {
        let deadline = Deadline::after(ms(3_000));
        // Delivery ends at 2,550 ms: with 100 ms left a call starts, with 99 ms it does not.
        tokio::time::advance(ms(2_450)).await;
        assert_eq!(deadline.can_start(Stage::Delivery), Ok(()));
        tokio::time::advance(ms(1)).await;
        assert_eq!(
            deadline.can_start(Stage::Delivery),
            Err(OutOfTime::NotStarted {
                left_ms: 99,
                min_ms: 100
            })
        );
        assert_eq!(deadline.can_start(Stage::DeadLetters), Ok(()));
        let ran = deadline.run(Stage::Delivery, async { 1 }).await;
        assert_eq!(ran.unwrap_err().to_string(), "not started: 99 ms were left before the relay must answer, under the 100 ms a call needs");
        assert_eq!(Deadline::none().can_start(Stage::Delivery), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_is_abandoned_when_its_stage_ends() {
        let deadline = Deadline::after(ms(3_000));
        let started = Instant::now();
        let slow = deadline.run(Stage::Delivery, tokio::time::sleep(ms(10_000)));
        assert_eq!(slow.await, Err(OutOfTime::Abandoned { waited_ms: 2_550 }));
        assert_eq!(started.elapsed(), ms(2_550));
        assert_eq!(
            OutOfTime::Abandoned { waited_ms: 2_550 }.to_string(),
            "abandoned after 2550 ms without an answer, to answer before the relay's timeout"
        );
        // A call that answers in time gives its answer; without a deadline, whenever it answers.
        let quick = async {
            tokio::time::sleep(ms(100)).await;
            7
        };
        assert_eq!(deadline.run(Stage::DeadLetters, quick).await, Ok(7));
        let slow = async {
            tokio::time::sleep(ms(60_000)).await;
            8
        };
        assert_eq!(Deadline::none().run(Stage::Delivery, slow).await, Ok(8));
    }
}
