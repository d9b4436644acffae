//! The measurement window of the traffic step being held, and its record in
//! the rollout's row (`step_window`). The data plane's host counts a
//! step's traffic whether or not a provisioner runs, so a provisioner that
//! restarts mid-step resumes the window it finds recorded, extensions and
//! the look in flight included, rather than holding the step again.

use paved_local::Traffic;
use paved_proto::canary_analyzer::v1::JudgeLookRequest;
use prost::Message;
use serde::{Deserialize, Serialize};

/// The measurement window of the traffic step being held.
pub(super) struct Window {
    pub(super) step: u32,
    pub(super) step_start_ms: i64,
    /// The canary's and the baseline's counters at the last look judged.
    pub(super) canary: Traffic,
    pub(super) baseline: Traffic,
    pub(super) last_look_ms: i64,
    /// Intervals added for want of evidence.
    pub(super) extensions: u32,
    /// A look sent but not answered, with the counters it ends at: sent
    /// again as it was (same number, same counts), so that a look the
    /// analyzer stored before its answer was lost is not counted twice.
    pub(super) pending: Option<(JudgeLookRequest, (Traffic, Traffic))>,
}

/// A window as the rollout's row keeps it (JSON).
#[derive(Serialize, Deserialize)]
struct Record {
    step: u32,
    step_start_ms: i64,
    canary: Counts,
    baseline: Counts,
    last_look_ms: i64,
    extensions: u32,
    pending: Option<Pending>,
}

#[derive(Serialize, Deserialize)]
struct Counts {
    classes: [u64; 5],
    latency: Vec<u64>,
}

/// A look in flight: the request as sent (protobuf, hex) and its counters.
#[derive(Serialize, Deserialize)]
struct Pending {
    request: String,
    canary: Counts,
    baseline: Counts,
}

impl From<&Traffic> for Counts {
    fn from(t: &Traffic) -> Self {
        Self { classes: t.classes, latency: t.latency.clone() }
    }
}

impl From<Counts> for Traffic {
    fn from(c: Counts) -> Self {
        Traffic { classes: c.classes, latency: c.latency }
    }
}

/// Whether `now` can be a later reading of the counters `then`: no count
/// went down. A host that restarted counts from zero again, which this
/// tells in all but the rarest cases.
fn continues(then: &Traffic, now: &Traffic) -> bool {
    then.classes.iter().zip(&now.classes).all(|(a, b)| a <= b)
        && then.latency.len() == now.latency.len()
        && then.latency.iter().zip(&now.latency).all(|(a, b)| a <= b)
}

impl Window {
    pub(super) fn open(step: u32, step_start_ms: i64, (canary, baseline): (Traffic, Traffic)) -> Self {
        Self { step, step_start_ms, canary, baseline, last_look_ms: step_start_ms, extensions: 0, pending: None }
    }

    /// The window as the rollout's row keeps it.
    pub(super) fn record(&self) -> String {
        let record = Record {
            step: self.step,
            step_start_ms: self.step_start_ms,
            canary: (&self.canary).into(),
            baseline: (&self.baseline).into(),
            last_look_ms: self.last_look_ms,
            extensions: self.extensions,
            pending: self.pending.as_ref().map(|(request, (canary, baseline))| Pending {
                request: hex::encode(request.encode_to_vec()),
                canary: canary.into(),
                baseline: baseline.into(),
            }),
        };
        // Plain numbers and strings: serializing cannot fail.
        serde_json::to_string(&record).unwrap_or_default()
    }

    /// The window recorded for step `step` begun at `step_start_ms`, when
    /// that is the one recorded and the counters read `now` go on from it.
    pub(super) fn resume(recorded: &str, step: u32, step_start_ms: i64, now: &(Traffic, Traffic)) -> Option<Self> {
        let record: Record = serde_json::from_str(recorded).ok()?;
        if record.step != step || record.step_start_ms != step_start_ms {
            return None;
        }
        let pending = match record.pending {
            Some(p) => {
                let request = JudgeLookRequest::decode(hex::decode(&p.request).ok()?.as_slice()).ok()?;
                Some((request, (Traffic::from(p.canary), Traffic::from(p.baseline))))
            }
            None => None,
        };
        let window = Self {
            step,
            step_start_ms,
            canary: record.canary.into(),
            baseline: record.baseline.into(),
            last_look_ms: record.last_look_ms,
            extensions: record.extensions,
            pending,
        };
        let latest = window.pending.as_ref().map_or((&window.canary, &window.baseline), |(_, (c, b))| (c, b));
        (continues(latest.0, &now.0) && continues(latest.1, &now.1)).then_some(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(ok: u64) -> Traffic {
        let mut t = Traffic::default();
        t.classes[1] = ok;
        t.latency[10] = ok;
        t
    }

    #[test]
    fn a_recorded_window_resumes_only_for_its_step_and_while_counts_go_on() {
        let mut w = Window::open(1, 5_000, (traffic(10), traffic(20)));
        w.extensions = 2;
        w.last_look_ms = 6_000;
        let request = JudgeLookRequest { rollout_id: "r".into(), look: 42, ..Default::default() };
        w.pending = Some((request.clone(), (traffic(15), traffic(25))));
        let recorded = w.record();

        let resumed = Window::resume(&recorded, 1, 5_000, &(traffic(16), traffic(30))).expect("resumed");
        assert_eq!((resumed.extensions, resumed.last_look_ms, resumed.canary.total()), (2, 6_000, 10));
        let (pending, ends) = resumed.pending.expect("the look in flight");
        assert_eq!((pending, ends.0.total(), ends.1.total()), (request, 15, 25));

        assert!(Window::resume(&recorded, 2, 5_000, &(traffic(16), traffic(30))).is_none(), "another step");
        assert!(Window::resume(&recorded, 1, 7_000, &(traffic(16), traffic(30))).is_none(), "the step begun again");
        assert!(Window::resume(&recorded, 1, 5_000, &(traffic(3), traffic(30))).is_none(), "the counts began again");
        assert!(Window::resume("not json", 1, 5_000, &(traffic(16), traffic(30))).is_none());
    }
}
