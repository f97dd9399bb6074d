//! Fault injection for the sandbox, reproducible: with a seed, the fault a
//! given request ID meets on its n-th attempt is the same in every run, so
//! a failing soak can be replayed. Each fault has its own probability.

use std::time::Duration;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    None,
    /// Answer U before looking at the request: nothing is recorded.
    UnknownBefore,
    /// Record the declaration, then answer U anyway.
    UnknownAfter,
    /// Answer HTTP 500 without processing.
    Http500,
    /// Process, then cut the connection before the answer is complete.
    Drop,
}

/// Probabilities (0..=1) of each fault, and the added latency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    pub seed: u64,
    pub unknown_before: f64,
    pub unknown_after: f64,
    pub http_500: f64,
    pub drop: f64,
    /// Share of requests delayed by `latency` before they are processed.
    pub slow: f64,
    pub latency: Duration,
}

impl FaultPlan {
    /// A uniform draw in [0, 1) for (request ID, attempt, purpose).
    fn draw(&self, request_id: &str, attempt: u32, purpose: u8) -> f64 {
        let mut input = Vec::with_capacity(request_id.len() + 5);
        input.extend_from_slice(request_id.as_bytes());
        input.extend_from_slice(&attempt.to_le_bytes());
        input.push(purpose);
        (xxh3_64_with_seed(&input, self.seed) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The fault for the `attempt`-th request (0-based) with this ID.
    pub fn fault(&self, request_id: &str, attempt: u32) -> Fault {
        let mut point = self.draw(request_id, attempt, 0);
        for (probability, fault) in [
            (self.unknown_before, Fault::UnknownBefore),
            (self.unknown_after, Fault::UnknownAfter),
            (self.http_500, Fault::Http500),
            (self.drop, Fault::Drop),
        ] {
            if point < probability {
                return fault;
            }
            point -= probability;
        }
        Fault::None
    }

    /// Latency to add to this attempt, if any.
    pub fn delay(&self, request_id: &str, attempt: u32) -> Option<Duration> {
        (self.slow > 0.0 && self.draw(request_id, attempt, 1) < self.slow).then_some(self.latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_reproducible_and_near_their_rates() {
        let plan = FaultPlan {
            seed: 7,
            unknown_before: 0.1,
            unknown_after: 0.05,
            http_500: 0.05,
            drop: 0.02,
            slow: 0.1,
            latency: Duration::from_millis(5),
        };
        let mut counts = std::collections::HashMap::new();
        for n in 0..20_000 {
            let id = format!("D{n}");
            assert_eq!(
                plan.fault(&id, 1),
                plan.fault(&id, 1),
                "same id and attempt, same fault"
            );
            *counts.entry(plan.fault(&id, 0)).or_insert(0) += 1;
        }
        let share = |fault| f64::from(counts[&fault]) / 20_000.0;
        assert!((share(Fault::UnknownBefore) - 0.10).abs() < 0.01);
        assert!((share(Fault::UnknownAfter) - 0.05).abs() < 0.01);
        assert!((share(Fault::Http500) - 0.05).abs() < 0.01);
        assert!((share(Fault::Drop) - 0.02).abs() < 0.01);
        let other_seed = FaultPlan {
            seed: 8,
            ..plan.clone()
        };
        let differs = (0..100).any(|n| {
            let id = format!("D{n}");
            plan.fault(&id, 0) != other_seed.fault(&id, 0)
        });
        assert!(differs, "the seed matters");
        assert_eq!(FaultPlan::default().fault("D1", 0), Fault::None);
        assert_eq!(FaultPlan::default().delay("D1", 0), None);
    }
}
